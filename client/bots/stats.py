"""Measurements of a bot swarm: every latency sample kept (exact percentiles, no buckets),
counters by kind, merged across processes, summarised as a table, checked against
thresholds that decide the exit code."""

from __future__ import annotations

import operator
import re
from array import array
from collections import Counter
from dataclasses import dataclass

import numpy as np

# metric -> (unit, scale from the recorded unit, what it is); latencies are recorded in seconds
METRICS: dict[str, tuple[str, float, str]] = {
    "connect": ("ms", 1e3, "connect -> Welcome (TCP + WebSocket + Hello)"),
    "rtt": ("ms", 1e3, "Ping -> Pong round trip"),
    "ack": ("ms", 1e3, "Input sent -> Snapshot acknowledging it"),
    "delivery": ("ms", 1e3, "Snapshot.server_time -> received, on the ping-synchronised clock"),
    "snapshot_interval": ("ms", 1e3, "time between consecutive snapshots at one bot"),
    "snapshot_jitter": ("ms", 1e3, "|snapshot interval - tick interval|"),
    "snapshot_bytes": ("B", 1.0, "size of one snapshot frame"),
    "chat_echo": ("ms", 1e3, "Chat sent -> own ChatLine back"),
    "catalogue": ("ms", 1e3, "QueryStock -> Stock"),
    "order": ("ms", 1e3, "Order -> OrderStatus(pending_payment)"),
    "bank_confirm": ("ms", 1e3, "confirming the payment intent at the bank"),
    "purchase": ("ms", 1e3, "Order -> Receipt, the whole purchase"),
    "card_save": ("ms", 1e3, "SetCard -> CardSaved"),
    "card_exchange": ("ms", 1e3, "OfferCard -> CardShown (the other bot accepting included)"),
    "slots": ("ms", 1e3, "ListSlots -> Slots"),
    "booking": ("ms", 1e3, "BookSlot -> Booking"),
    "rfq_quote": ("ms", 1e3, "RequestQuote -> DealStatus(quoted), from the booth's price list"),
    "deal_deposit": ("ms", 1e3, "FX lock + escrow at the bank -> DealStatus(ordered)"),
    "deal_shipped": ("ms", 1e3, "DealStatus(ordered) -> DealStatus(shipped), the booth's staff confirming"),
    "deal_delivery": ("ms", 1e3, "paying the balance at the bank -> DealStatus(delivered)"),
    "deal": ("ms", 1e3, "RequestQuote -> DealStatus(delivered), the whole deal less the buyer's reading time"),
    "handoff": ("ms", 1e3, "portal entered (own avatar in its circle, or the Transfer) -> first snapshot in the new hall"),
    "bytes_in_per_bot": ("B/s", 1.0, "payload bytes received per second, per bot"),
    "bytes_out_per_bot": ("B/s", 1.0, "payload bytes sent per second, per bot"),
}

# counters that are errors in a clean run; anything counted under "error." is one
ERROR_PREFIX = "error."


class Recorder:
    """Samples and counters of one process; picklable, and merged by ``merge``."""

    def __init__(self) -> None:
        self.samples: dict[str, array] = {name: array("d") for name in METRICS}
        self.counts: Counter[str] = Counter()
        self.enabled = True  # samples are dropped while False (a warm-up); counts are always kept

    def sample(self, metric: str, value: float, always: bool = False) -> None:
        """Keep a sample, unless in the warm-up (``always``: one-off figures such as the
        connect time, which the warm-up is made of)."""
        if self.enabled or always:
            self.samples[metric].append(value)

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n

    def error(self, kind: str) -> None:
        self.counts[ERROR_PREFIX + kind] += 1

    def merge(self, other: Recorder) -> None:
        for name, values in other.samples.items():
            self.samples[name].extend(values)
        self.counts.update(other.counts)

    def errors(self) -> dict[str, int]:
        return {k[len(ERROR_PREFIX):]: v for k, v in sorted(self.counts.items()) if k.startswith(ERROR_PREFIX) and v}

    def with_prefix(self, prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in sorted(self.counts.items()) if k.startswith(prefix)}


@dataclass(frozen=True, slots=True)
class Summary:
    unit: str
    count: int
    mean: float
    p50: float
    p95: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {"unit": self.unit, "count": self.count, "mean": self.mean, "p50": self.p50,
                "p95": self.p95, "p99": self.p99, "max": self.max}


def summarise(recorder: Recorder) -> dict[str, Summary]:
    out = {}
    for name, (unit, scale, _) in METRICS.items():
        values = np.frombuffer(recorder.samples[name], dtype=np.float64) * scale
        if len(values) == 0:
            out[name] = Summary(unit, 0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
            continue
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        out[name] = Summary(unit, len(values), float(values.mean()), float(p50), float(p95), float(p99), float(values.max()))
    return out


def format_table(summaries: dict[str, Summary]) -> str:
    head = f"{'metric':<20} {'unit':>4} {'count':>9} {'mean':>9} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9}"
    lines = [head, "-" * len(head)]
    for name, s in summaries.items():
        if s.count:
            lines.append(f"{name:<20} {s.unit:>4} {s.count:>9} {s.mean:>9.2f} {s.p50:>9.2f} {s.p95:>9.2f} {s.p99:>9.2f} {s.max:>9.2f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- thresholds

_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
_THRESHOLD = re.compile(r"^\s*([a-z_0-9]+)\s*(<=|>=|==|<|>)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")
STATS = ("count", "mean", "p50", "p95", "p99", "max")

THRESHOLD_HELP = (
    "A threshold is METRIC OP NUMBER with OP one of < <= > >= ==, e.g. 'rtt_p99<100'. "
    "METRIC is <name>_<stat> with stat in " + ", ".join(STATS) + " and name one of: "
    + "; ".join(f"{n} ({u}: {d})" for n, (u, _, d) in METRICS.items())
    + ". Also the counts: errors (all errors), error_<kind> (e.g. error_rate_limited), "
    "bots_joined, bots_failed, purchases_settled, purchases_failed, portal_crossings, portal_failed (crossings that "
    "never reached the new hall), bots_unconnected (bots that joined but had no live connection at the end), "
    "bots_identity_changed (bots that came out of a crossing as another visitor). Latencies are in ms."
)


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    op: str
    limit: float

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = _THRESHOLD.match(text)
        if not m:
            raise ValueError(f"bad threshold {text!r}: expected e.g. 'rtt_p99<100'")
        if not known_metric(m.group(1)):
            raise ValueError(f"unknown metric {m.group(1)!r} in threshold {text!r}; see --help")
        return cls(text.strip(), m.group(1), m.group(2), float(m.group(3)))


FIGURES = ("errors", "bots_joined", "bots_failed", "purchases_settled", "purchases_failed", "portal_crossings",
           "portal_failed", "bots_unconnected", "bots_identity_changed")


def known_metric(name: str) -> bool:
    base, _, stat = name.rpartition("_")
    return name in FIGURES or name.startswith("error_") or (base in METRICS and stat in STATS)


def metric_value(name: str, summaries: dict[str, Summary], figures: dict[str, float]) -> float:
    """The value of a threshold's metric; KeyError when there is no such metric."""
    if name in figures:
        return figures[name]
    if name.startswith("error_"):
        return figures.get(name, 0.0)
    base, _, stat = name.rpartition("_")
    if base in summaries and stat in STATS:
        return float(getattr(summaries[base], stat))
    raise KeyError(name)


def check(threshold: Threshold, summaries: dict[str, Summary], figures: dict[str, float]) -> tuple[float, bool]:
    """(the value, whether it holds); a metric with no samples (NaN) does not hold."""
    value = metric_value(threshold.metric, summaries, figures)
    return value, bool(value == value and _OPS[threshold.op](value, threshold.limit))
