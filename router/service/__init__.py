"""The decision service: what every front (HTTP API, platform endpoints, tests) calls.

async with open_service(settings, registry) as service:
    answer = await service.decide(DecisionRequest(conversation_id="c-1"))
"""

from router.service.answer import ANSWER_FIELDS, Answer, Explained, PlatformAnswer
from router.service.decisions import (
    DecisionService,
    Readiness,
    ReloadProblem,
    RulesetSummary,
    open_service,
)
from router.service.errors import NotReady, RulesetNotFound, ServiceError, StoreUnavailable
from router.service.request import DecisionRequest

__all__ = [
    "ANSWER_FIELDS",
    "Answer",
    "DecisionRequest",
    "DecisionService",
    "Explained",
    "NotReady",
    "PlatformAnswer",
    "Readiness",
    "ReloadProblem",
    "RulesetNotFound",
    "RulesetSummary",
    "ServiceError",
    "StoreUnavailable",
    "open_service",
]
