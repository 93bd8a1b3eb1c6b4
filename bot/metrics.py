"""Prometheus metrics. Labels never carry personal data."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily

REGISTRY = CollectorRegistry()


class ChannelHistogram:
    """A histogram by channel, observed from the event loop and read when scraped.

    prometheus_client's Histogram takes a lock for its sum and again for a bucket on every
    observation; observed once per message sent, that cost as much as the rest of the
    dispatcher's own work for the message. Here an observation is a bisect and two
    additions. Only the event loop's thread observes; a scrape reads a consistent enough
    copy (each list read is atomic).
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ):
        self.name, self.documentation = name, documentation
        self.bounds = sorted(float(bound) for bound in buckets)
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        registry.register(self)

    def observe(self, channel: str, seconds: float) -> None:
        counts = self._counts.get(channel)
        if counts is None:
            counts = self._counts[channel] = [0] * (len(self.bounds) + 1)
            self._sums[channel] = 0.0
        counts[bisect_left(self.bounds, seconds)] += 1  # the first bucket with le >= seconds
        self._sums[channel] += seconds

    def count(self, channel: str) -> int:
        return sum(self._counts.get(channel, ()))

    def total(self, channel: str) -> float:
        return self._sums.get(channel, 0.0)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["channel"])
        for channel, counts in list(self._counts.items()):
            running, buckets = 0, []
            for bound, count in zip([*map(str, self.bounds), "+Inf"], list(counts), strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric([channel], buckets, self._sums[channel])
        yield family

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=["channel"])]


MESSAGES_IN = Counter(
    "concorder_messages_in_total",
    "Inbound messages by channel and outcome",
    ["channel", "outcome"],
    registry=REGISTRY,
)
INBOUND_BATCHES = Counter(
    "concorder_inbound_batches_total",
    "Groups of inbound messages handled in one transaction, by outcome: committed, or "
    "split (the transaction failed and each message then ran alone)",
    ["outcome"],
    registry=REGISTRY,
)
INBOUND_BATCHED = Counter(
    "concorder_inbound_batched_messages_total",
    "Inbound messages handled in a committed group (with INBOUND_BATCHES: the mean size)",
    registry=REGISTRY,
)
INBOUND_UNHANDLED = Counter(
    "concorder_inbound_unhandled_total",
    "Inbound messages whose turn did not go through at once, by outcome: kept (its turn "
    "failed; stored to be tried again), handled (a later try went through), failed (a "
    "later try failed too), gave_up (failed too often: the organisers were told)",
    ["outcome"],
    registry=REGISTRY,
)
INBOUND_WAITING = Gauge(
    "concorder_inbound_unhandled_messages",
    "Inbound messages stored and not handled yet, by state: waiting (tried again on a "
    "timer) or given_up (only `concorder inbound retry` tries them); read every 10 s",
    ["state"],
    registry=REGISTRY,
)
MESSAGES_OUT = Counter(
    "concorder_messages_out_total",
    "Outbound messages by channel and status",
    ["channel", "status"],
    registry=REGISTRY,
)
DISPATCH_LATENCY = ChannelHistogram(
    "concorder_dispatch_latency_seconds",
    "Time from queueing to hand-over to the channel",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "concorder_outbox_queue_depth",
    "Messages waiting in the outbox",
    ["channel"],
    registry=REGISTRY,
)
WEBHOOKS_REJECTED = Counter(
    "concorder_webhooks_rejected_total",
    "Webhook calls refused (bad signature or secret)",
    ["source"],
    registry=REGISTRY,
)
CHANNEL_FAILURES = Gauge(
    "concorder_channel_consecutive_failures",
    "Sends in a row that failed for a passing reason (provider down, timeout); 0 when the "
    "last send went through",
    ["channel"],
    registry=REGISTRY,
)
CHANNEL_DEGRADED = Gauge(
    "concorder_channel_degraded",
    "1 while a channel keeps failing, else 0",
    ["channel"],
    registry=REGISTRY,
)
OLDEST_WAITING = Gauge(
    "concorder_outbox_oldest_waiting_seconds",
    "Age of the oldest message due and not yet sent (0 when none waits)",
    ["channel"],
    registry=REGISTRY,
)
