"""Prometheus metrics of the server (scraped from --metrics-port). Labels never carry media or hashes."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "hashmatch_requests_total", "RPCs by method and status code", ["method", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "hashmatch_request_seconds",
            "RPC latency by method",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.verdicts = Counter(
            "hashmatch_verdicts_total", "verdicts by decision", ["decision"], registry=self.registry
        )
        self.matches = Counter("hashmatch_matches_total", "matched entries by list", ["list"], registry=self.registry)
        self.errors = Counter(
            "hashmatch_errors_total", "rejected inputs by reason code", ["reason"], registry=self.registry
        )
        self.index_entries = Gauge(
            "hashmatch_index_entries", "PDQ entries served per list", ["list"], registry=self.registry
        )
        self.active_version = Gauge(
            "hashmatch_serving_version", "list version being served", ["list"], registry=self.registry
        )
        self.batch_size = Histogram(
            "hashmatch_batch_size",
            "queries per index search",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        # Evidence controls (engine/evidence): the prevalence counters (the same counts `hashmatch stats` gives,
        # without its small-cell suppression: scrape them only where the raw counts may be seen), entries the
        # flood guard holds for review, and referral records written.
        self.prevalence = Counter(
            "hashmatch_prevalence_total",
            "verdicts by their closest match's list, classification, signal type and dihedral variant, and decision",
            ["list", "classification", "signal_type", "decision", "variant"],
            registry=self.registry,
        )
        self.holds = Counter(
            "hashmatch_flood_holds_total",
            "entries the flood guard held for review, by list",
            ["list"],
            registry=self.registry,
        )
        self.held = Gauge("hashmatch_entries_held", "entries held for review now", registry=self.registry)
        self.referrals = Counter(
            "hashmatch_referrals_total", "referral records written to the audit log", registry=self.registry
        )
