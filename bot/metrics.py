"""Prometheus metrics. Labels never carry personal data."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

MESSAGES_IN = Counter(
    "concorder_messages_in_total", "Inbound messages by channel and outcome",
    ["channel", "outcome"], registry=REGISTRY,
)
MESSAGES_OUT = Counter(
    "concorder_messages_out_total", "Outbound messages by channel and status",
    ["channel", "status"], registry=REGISTRY,
)
DISPATCH_LATENCY = Histogram(
    "concorder_dispatch_latency_seconds", "Time from queueing to hand-over to the channel",
    ["channel"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
QUEUE_DEPTH = Gauge(
    "concorder_outbox_queue_depth", "Messages waiting in the outbox", ["channel"],
    registry=REGISTRY,
)
WEBHOOKS_REJECTED = Counter(
    "concorder_webhooks_rejected_total", "Webhook calls refused (bad signature or secret)",
    ["source"], registry=REGISTRY,
)
