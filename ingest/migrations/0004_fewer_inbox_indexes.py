"""Fewer indexes written per accepted event (each is a random-key B-tree insert, and its WAL,
on the ingestion hot path):

- `student_id` alone: `event_pair_time` (student, topic, occurred_at) leads with it and
  serves every lookup and cascade by student;
- `event_id`'s `varchar_pattern_ops` twin, which Django adds to an indexed varchar for
  `LIKE 'prefix%'`: nothing searches event ids by prefix (the admin's search is exact).
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "ingest_learningevent"


def like_index(schema_editor) -> str:
    return schema_editor.quote_name(
        schema_editor._create_index_name(TABLE, ["event_id"], suffix="_like")
    )


def drop_like_index(apps, schema_editor) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {like_index(schema_editor)}")


def create_like_index(apps, schema_editor) -> None:
    schema_editor.execute(
        f"CREATE INDEX {like_index(schema_editor)} ON {TABLE} (event_id varchar_pattern_ops)"
    )


class Migration(migrations.Migration):
    dependencies = [("ingest", "0003_rename_inbox_event")]

    operations = [
        migrations.AlterField(
            model_name="inboxevent",
            name="student",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="mastery.student",
            ),
        ),
        migrations.RunPython(drop_like_index, create_like_index),
    ]
