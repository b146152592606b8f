from django.db import migrations


class Migration(migrations.Migration):
    """Leave free space in the pages of the rows every batch rewrites, so that PostgreSQL
    can update them in place (HOT updates: no index writes, less bloat)."""

    dependencies = [("mastery", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE mastery_masteryrecord SET (fillfactor = 80);"
            "ALTER TABLE mastery_student SET (fillfactor = 85);",
            "ALTER TABLE mastery_masteryrecord RESET (fillfactor);"
            "ALTER TABLE mastery_student RESET (fillfactor);",
        )
    ]
