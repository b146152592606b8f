"""Records and snapshots lose their index on `student_id` alone: their unique constraints
(student, topic) and (student, topic, day) lead with it and serve every lookup and cascade
by student, and the pipeline writes one index fewer per new row."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("mastery", "0003_snapshot_facts")]

    operations = [
        migrations.AlterField(
            model_name="masteryrecord",
            name="student",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="records",
                to="mastery.student",
            ),
        ),
        migrations.AlterField(
            model_name="snapshot",
            name="student",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="snapshots",
                to="mastery.student",
            ),
        ),
    ]
