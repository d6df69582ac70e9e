"""What every decision leaves behind for the people who run the router: one ``decision``
log line and the decision metrics (contract §2.4). No id or fact value is a metric label."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

import structlog
from prometheus_client import Counter

from router.metrics import DECISION_DURATION, DECISIONS, DEGRADED_DECISIONS
from router.observe import event_line
from router.service.answer import Answer

log = structlog.get_logger("router.service")


@functools.lru_cache(maxsize=4096)
def _decision_counter(ruleset: str, rule: str, outcome: str, platform: str) -> Counter:
    """The labelled child for a (ruleset, rule, outcome, platform), looked up once (rule ids
    are bounded by the rule files and platforms by the fronts, so the cache is too)."""
    return DECISIONS.labels(ruleset=ruleset, rule=rule, outcome=outcome, platform=platform)


def observe_decision(
    answer: Answer, *, facts: Mapping[str, Any] | None, platform: str = "api"
) -> None:
    """Count ``answer`` and log its ``decision`` line.

    ``facts`` (the facts it was decided on) and the rendered label and attributes are
    logged only when given, i.e. with ``ROUTER_LOG_STATE=true``.
    """
    _decision_counter(answer.ruleset, answer.rule or "", answer.outcome, platform).inc()
    if answer.degraded:
        DEGRADED_DECISIONS.labels(ruleset=answer.ruleset).inc()
    DECISION_DURATION.observe(answer.elapsed_ms / 1000)
    fields: dict[str, Any] = {
        "decision_id": answer.decision_id,
        "conversation_id": answer.conversation_id,
        "shared_id": answer.shared_id,
        "ruleset": answer.ruleset,
        "ruleset_version": answer.ruleset_version,
        "rule": answer.rule,
        "queue": answer.queue,
        "outcome": answer.outcome,
        "degraded": answer.degraded,
        "sources": answer.sources,
        "elapsed_ms": answer.elapsed_ms,
    }
    if platform != "api":
        fields["platform"] = platform
    if facts is not None:  # conversation data: the structlog chain redacts credentials in it
        fields.update(label=answer.label, attributes=answer.attributes, facts=facts)
        log.info("decision", **fields)
    else:
        event_line(log, logging.INFO, "decision", fields)
