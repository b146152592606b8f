from django.db import migrations


class Migration(migrations.Migration):
    """The inbox model is renamed apart from the domain's LearningEvent; its table stays."""

    dependencies = [
        ("ingest", "0002_initial"),
    ]

    operations = [
        migrations.AlterModelTable(name="learningevent", table="ingest_learningevent"),
        migrations.RenameModel(old_name="LearningEvent", new_name="InboxEvent"),
        migrations.AlterModelOptions(
            name="inboxevent", options={"verbose_name": "learning event"}
        ),
    ]
