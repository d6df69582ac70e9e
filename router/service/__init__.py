"""The decision service: what every front (HTTP API, platform endpoints, tests) calls.

async with open_service(settings, registry) as service:
    answer = await service.decide(DecisionRequest(conversation_id="c-1"))
"""

from router.records.replay import ReplayReport, parse_duration
from router.service.answer import ANSWER_FIELDS, Answer, Explained
from router.service.decisions import (
    DecisionService,
    Readiness,
    ReloadProblem,
    RulesetSummary,
    open_service,
)
from router.service.errors import (
    CandidateInvalid,
    NotReady,
    RulesetNotFound,
    ServiceError,
    StoreUnavailable,
)
from router.service.request import DecisionRequest

__all__ = [
    "ANSWER_FIELDS",
    "Answer",
    "CandidateInvalid",
    "DecisionRequest",
    "DecisionService",
    "Explained",
    "NotReady",
    "Readiness",
    "ReloadProblem",
    "ReplayReport",
    "RulesetNotFound",
    "RulesetSummary",
    "ServiceError",
    "StoreUnavailable",
    "open_service",
    "parse_duration",
]
