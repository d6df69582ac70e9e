"""The decision service: what every front (HTTP API, platform endpoints, tests) calls.

async with open_service(settings, registry) as service:
    answer = await service.decide(DecisionRequest(conversation_id="c-1"))
"""

from router.records.replay import ReplayReport, parse_duration
from router.service.answer import ANSWER_FIELDS, Answer, Explained, PlatformAnswer
from router.service.card import Card
from router.service.decisions import DecisionService, open_service
from router.service.errors import (
    CandidateInvalid,
    CardNotFound,
    CardRefused,
    NotReady,
    RulesetNotFound,
    ServiceError,
    StoreUnavailable,
)
from router.service.operations import Readiness, ReloadProblem, RulesetSummary, TestSummary
from router.service.recent import RecentDecision, Traffic
from router.service.request import DecisionRequest

__all__ = [
    "ANSWER_FIELDS",
    "Answer",
    "CandidateInvalid",
    "Card",
    "CardNotFound",
    "CardRefused",
    "DecisionRequest",
    "DecisionService",
    "Explained",
    "NotReady",
    "PlatformAnswer",
    "Readiness",
    "RecentDecision",
    "ReloadProblem",
    "ReplayReport",
    "RulesetNotFound",
    "RulesetSummary",
    "ServiceError",
    "StoreUnavailable",
    "TestSummary",
    "Traffic",
    "open_service",
    "parse_duration",
]
