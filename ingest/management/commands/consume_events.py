import gc
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import start_http_server

from ingest.consumer import ConsumerSettings, EventConsumer

MAX_BATCH_SIZE = 100_000  # librdkafka's consume() limit is 1,000,000; memory says less


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
            help="Prometheus port of this process (0: none); make run picks a free one",
        )

    def handle(self, *args, max_messages, idle_exit, batch_size, metrics_port, **options) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise CommandError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE}")
        if max_messages is not None and max_messages < 1:
            raise CommandError("--max-messages must be at least 1")
        if idle_exit is not None and idle_exit <= 0:
            raise CommandError("--idle-exit must be positive")
        if not 0 <= metrics_port <= 65535:
            raise CommandError("--metrics-port must be a TCP port (0: none)")
        if metrics_port:
            addr = settings.KAFKA_CONSUMER_METRICS_ADDR
            try:
                start_http_server(metrics_port, addr=addr)
            except OSError as exc:
                raise CommandError(
                    f"metrics port {metrics_port}: {exc.strerror}"
                    " (set KAFKA_CONSUMER_METRICS_PORT or --metrics-port; 0 turns it off)"
                ) from exc
            self.stdout.write(f"metrics on http://{addr}:{metrics_port}/metrics")
        consumer = EventConsumer(
            ConsumerSettings(
                bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
                group_id=settings.KAFKA_GROUP_ID,
                topic=settings.KAFKA_EVENTS_TOPIC,
                dlq_topic=settings.KAFKA_DLQ_TOPIC,
                session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
                batch_size=batch_size,
                max_event_bytes=settings.KAFKA_MAX_EVENT_BYTES,
                dlq_message_max_bytes=settings.KAFKA_DLQ_MESSAGE_MAX_BYTES,
            )
        )
        signal.signal(signal.SIGTERM, consumer.stop)
        signal.signal(signal.SIGINT, consumer.stop)
        # Django's and the apps' start-up objects live as long as the process: frozen, the
        # collector stops walking them each time a batch's garbage triggers it (about a
        # tenth of the consumer's time, measured).
        gc.collect()
        gc.freeze()
        processed = consumer.run(max_messages=max_messages, idle_exit=idle_exit)
        self.stdout.write(f"consumed {processed} messages")
