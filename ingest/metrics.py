"""Prometheus metrics of ingestion, shared by the HTTP path (web) and the Kafka consumer."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ACCEPTED = Counter(
    "mastery_events_accepted_total", "Learning events accepted and applied.", ["source"]
)
EVENTS_DUPLICATE = Counter(
    "mastery_events_duplicate_total", "Learning events already accepted (not applied).", ["source"]
)
EVENTS_REJECTED = Counter(
    "mastery_events_rejected_total", "Learning events rejected, by code.", ["source", "code"]
)
DLQ_SENT = Counter("mastery_dlq_sent_total", "Messages sent to the dead-letter topic.", ["code"])
BATCH_SIZE = Histogram(
    "mastery_ingest_batch_size",
    "Events per ingested batch.",
    ["source"],
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
APPLY_SECONDS = Histogram(
    "mastery_ingest_apply_seconds",
    "Time to validate and apply one batch (one transaction).",
    ["source"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONSUMER_LAG = Gauge(
    "mastery_consumer_lag", "Messages behind the partition's end.", ["topic", "partition"]
)
CONSUMER_RETRIES = Counter(
    "mastery_consumer_retries_total", "Batches retried after a transient failure.", ["reason"]
)
CONSUMER_BATCH_RETRYING = Gauge(
    "mastery_consumer_batch_retrying_seconds",
    "How long the batch in hand has been held up by failures (0: none is failing).",
)
CONSUMER_BATCH_IN_HAND = Gauge(
    "mastery_consumer_batch_in_hand_seconds",
    "How long the batch in hand has been held (applied, dead-lettered, committed or retried),"
    " read when scraped: it grows while a batch hangs, e.g. on a lock; 0 between batches.",
)
CONSUMER_LAST_COMMIT = Gauge(
    "mastery_consumer_last_commit_timestamp_seconds",
    "Unix time of the consumer's last offset commit: it stands still while a batch is stuck.",
)
DLQ_TRUNCATED = Counter(
    "mastery_dlq_truncated_total",
    "Dead letters cut down to their first bytes to fit a size limit, by code.",
    ["code"],
)
