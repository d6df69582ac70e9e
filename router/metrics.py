"""Prometheus metric families (contract §2.4). Labels never hold ids or state values."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)

DECISIONS = Counter(
    "router_decisions_total",
    "Routing decisions made, by the front that asked (platform: api for /v1/route, "
    "amazon-connect, twilio, genesys).",
    ["ruleset", "rule", "outcome", "platform"],
)
PLATFORM_EMERGENCY_ANSWERS = Counter(
    "router_platform_emergency_answers_total",
    "Platform answers naming ROUTER_EMERGENCY_QUEUE because no ruleset could decide "
    "(reason: not_ready, ruleset_not_found, error).",
    ["platform", "reason"],
)
DEGRADED_DECISIONS = Counter(
    "router_decisions_degraded_total",
    "Routing decisions made while a fact source (handoff, state, conversation) had failed.",
    ["ruleset"],
)
DECISION_DURATION = Histogram(
    "router_decision_duration_seconds",
    "Time from a route request's arrival to its answer.",
    buckets=_LATENCY_BUCKETS,
)
UPSTREAM_REQUESTS = Counter(
    "router_upstream_requests_total",
    "Lookups against PolyAI, by source and result (ok, not_found, timeout, error, circuit_open).",
    ["source", "result"],
)
UPSTREAM_DURATION = Histogram(
    "router_upstream_duration_seconds",
    "Time spent on one upstream lookup, retries included.",
    ["source"],
    buckets=_LATENCY_BUCKETS,
)
RULES_RELOADS = Counter(
    "router_rules_reloads_total", "Rule reloads, by result (ok, error).", ["result"]
)
RULESET_INFO = Gauge(
    "router_ruleset_info",
    "The version of each ruleset being served (value 1).",
    ["ruleset", "version"],
    multiprocess_mode="livemax",
)
BREAKER_OPEN = Gauge(
    "router_breaker_open",
    "1 while the circuit breaker of a source is open.",
    ["source"],
    multiprocess_mode="livemax",
)
STORE_UP = Gauge(
    "router_store_up",
    "1 while the shared store answers.",
    # With several workers: the verdict of the latest round trip of any of them (a worker
    # that has made none yet has no say, rather than a 0 that would look like an outage).
    multiprocess_mode="livemostrecent",
)
STORE_DURATION = Histogram(
    "router_store_duration_seconds",
    "Time of one round trip to the shared store.",
    ["operation"],
    buckets=_LATENCY_BUCKETS,
)
STORE_OUTBOX_DROPPED = Counter(
    "router_store_outbox_dropped_total",
    "Decisions dropped from the shared store's outbox (it was full while the store was down).",
)
STORE_OUTBOX_PENDING = Gauge(
    "router_store_outbox_pending",
    "Decisions waiting in this process's outbox for the shared store to answer again.",
    multiprocess_mode="livesum",
)
STORE_ROUND_TRIPS = Counter(
    "router_store_round_trips_total",
    "Pipelines sent to the shared store (the calls of one event-loop turn share one).",
)
RECORDS_DROPPED = Counter(
    "router_records_dropped_total",
    "Decision records not kept for replay, by reason (file_buffer_full, file_write_failed, "
    "store, unencodable): recording never delays or fails a decision, so it drops instead.",
    ["reason"],
)
