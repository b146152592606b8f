import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import start_http_server

from ingest.consumer import ConsumerSettings, EventConsumer


class Command(BaseCommand):
    help = "Consume learning events from Kafka until SIGTERM/SIGINT (or the given limits)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-messages", type=int, help="stop after this many messages")
        parser.add_argument(
            "--idle-exit", type=float, metavar="SECONDS", help="stop after this long without one"
        )
        parser.add_argument("--batch-size", type=int, default=settings.KAFKA_CONSUMER_BATCH_SIZE)
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.KAFKA_CONSUMER_METRICS_PORT,
            help="Prometheus port of this process (0: none)",
        )

    def handle(self, *args, max_messages, idle_exit, batch_size, metrics_port, **options) -> None:
        if metrics_port:
            start_http_server(metrics_port, addr=settings.KAFKA_CONSUMER_METRICS_ADDR)
        consumer = EventConsumer(
            ConsumerSettings(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                group_id=settings.KAFKA_GROUP_ID,
                topic=settings.KAFKA_EVENTS_TOPIC,
                dlq_topic=settings.KAFKA_DLQ_TOPIC,
                session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
                batch_size=batch_size,
            )
        )
        signal.signal(signal.SIGTERM, consumer.stop)
        signal.signal(signal.SIGINT, consumer.stop)
        processed = consumer.run(max_messages=max_messages, idle_exit=idle_exit)
        self.stdout.write(f"consumed {processed} messages")
