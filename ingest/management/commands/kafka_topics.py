from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the learning-events and dead-letter topics if they are missing."

    def handle(self, *args, **options) -> None:
        admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
        try:
            existing = admin.list_topics(timeout=10).topics
        except Exception as exc:
            raise CommandError(f"Kafka is unreachable: {exc}") from exc
        wanted = {
            settings.KAFKA_EVENTS_TOPIC: settings.KAFKA_EVENTS_PARTITIONS,
            settings.KAFKA_DLQ_TOPIC: 1,
        }
        missing = [
            NewTopic(name, num_partitions=n, replication_factor=-1)
            for name, n in wanted.items()
            if name not in existing
        ]
        for name in wanted:
            if name in existing:
                self.stdout.write(f"topic {name} exists")
        if not missing:
            return
        for name, future in admin.create_topics(missing, operation_timeout=10).items():
            try:
                future.result(timeout=15)
            except Exception as exc:
                raise CommandError(f"could not create topic {name}: {exc}") from exc
            self.stdout.write(f"topic {name} created")
