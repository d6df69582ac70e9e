"""What a front (the HTTP API, a platform endpoint, a test) asks the decision service."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)  # not frozen: built on every call, and frozen fields cost
class DecisionRequest:
    """One call to route (or explain), already validated by its front.

    At least one id is needed for lookups; a request with neither (a platform call that
    named no conversation) is still decided, on its inline facts and context, with the
    lookups ``skipped``.
    """

    conversation_id: str | None = None
    shared_id: str | None = None
    ruleset: str | None = None
    """``None``: the default ruleset (``ROUTER_DEFAULT_RULESET``)."""
    context: Mapping[str, Any] = field(default_factory=dict)
    handoff: Mapping[str, Any] | None = None
    """Inline handoff data: the Handoff API is not called."""
    state: Mapping[str, Any] | None = None
    """Inline ``conv.state``: the conversation record is not fetched."""
    budget_ms: float | None = None
    """``None``: ``ROUTER_BUDGET_MS``; always clamped to ``ROUTER_MAX_BUDGET_MS``."""
    arrival: float = field(default_factory=time.monotonic)
    """``time.monotonic()`` when the request arrived: the budget runs from here."""
    at: datetime | None = None
    """The instant to decide at (explain only; ``None``: now). A naive one is read in the
    ruleset's time zone."""
    platform: str = "api"
    """Which front asked (``api``, ``amazon-connect``, ``twilio``, ``genesys``): a metric label,
    and whose ids :meth:`~router.service.DecisionService.decide_for_platform` looks up."""
    split_key: str | None = None
    """Keys splits when the request names no conversation (a platform's own call id), so a
    retried call lands in the same share and id-less calls still spread over the shares.
    Never used for lookups, nor kept as an id."""
