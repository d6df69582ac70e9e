"""The decision service: request → gather → rules → record → answer, with no HTTP in it.

Every front calls this: ``POST /v1/route`` and ``/v1/explain``, the platform endpoints,
the CLI's tests and the test suite. It owns the request's deadline (from its arrival,
clamped to ``ROUTER_MAX_BUDGET_MS``), picks the ruleset version once (a reload during the
call never changes it half-way), gathers the facts within the budget, decides, keeps the
decision for read-back, and reports it (one ``decision`` log line, the metrics). It never
fails a call that can still be routed: a store or upstream fault degrades the decision.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import structlog

from router.budget import Crowd, Deadline
from router.engine.decide import Decision, RuleSet
from router.facts import FactGatherer, GatheredFacts, make_client_session
from router.metrics import STORE_UP
from router.rules_registry import RulesRegistry
from router.service.answer import Answer, Explained, PlatformAnswer
from router.service.errors import NotReady, RulesetNotFound, StoreUnavailable
from router.service.request import DecisionRequest
from router.service.telemetry import observe_decision
from router.settings import Settings
from router.store import Store, StoreError, open_store
from router.store.base import JSONMap, StoreStatus

log = structlog.get_logger("router.service")

_SAVE_DRAIN_TIMEOUT_S = 2.0
"""Longest wait at shutdown for decision saves still running (drain + this + the store's
outbox flush stay under the contract's 10 s)."""
_STORE_STATUS_TIMEOUT_S = 1.0
_NO_FACTS: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class RulesetSummary:
    """A served ruleset as the API lists it (``GET /v1/rulesets``)."""

    name: str
    version: str
    rules: int
    loaded_at: datetime
    source: str


@dataclass(frozen=True, slots=True)
class ReloadProblem:
    """The last rejected rule file and why."""

    file: str
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether this replica should get traffic (``GET /readyz``)."""

    ready: bool
    rulesets: dict[str, str]
    store: StoreStatus
    reason: str | None


class DecisionService:
    """Decides calls for every front; one per process (see :func:`open_service`)."""

    def __init__(
        self,
        settings: Settings,
        rules: RulesRegistry,
        store: Store,
        gatherer: FactGatherer,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.store = store
        self.gatherer = gatherer
        self._pending_saves: set[asyncio.Task[None]] = set()
        self._log_state = settings.log_state
        self._crowd = Crowd()

    # Deciding ------------------------------------------------------------------------

    def deadline(self, request: DecisionRequest) -> Deadline:
        """The request's budget, from its arrival, clamped to ``ROUTER_MAX_BUDGET_MS``."""
        settings = self.settings
        budget = settings.budget_ms if request.budget_ms is None else request.budget_ms
        return Deadline.start(
            min(budget, settings.max_budget_ms), started_at=request.arrival, crowd=self._crowd
        )

    def ruleset(self, name: str | None) -> RuleSet:
        """The version serving ``name`` now (this object serves the whole call).

        Raises :class:`NotReady` when no valid version of it has loaded yet and the
        service is not ready, :class:`RulesetNotFound` when other rulesets serve but
        not this one.
        """
        name = self.default_ruleset if name is None else name
        ruleset = self.rules.get(name)
        if ruleset is not None:
            return ruleset
        reason = self.rules.not_ready_reason()
        if reason is not None:
            raise NotReady(f"The ruleset {name!r} is not loaded: {reason}.")
        raise RulesetNotFound(name)

    @property
    def default_ruleset(self) -> str:
        """The ruleset a request that names none is decided by."""
        return "default"

    async def decide(self, request: DecisionRequest) -> Answer:
        """Route one call: gather its facts, decide, keep the decision, report it."""
        answer, _ = await self._decide(request)
        return answer

    async def decide_for_platform(self, request: DecisionRequest) -> PlatformAnswer:
        """:meth:`decide`, plus the ids the deciding ruleset maps the queue to on
        ``request.platform`` (its ``platforms:`` block), so a platform front needs nothing
        of the rules to name the platform's own queue."""
        answer, ruleset = await self._decide(request)
        maps = ruleset.platforms
        return PlatformAnswer(
            answer,
            queue_id=maps.queue_id(request.platform, answer.queue),
            workflow=maps.workflow(request.platform),
        )

    async def _decide(self, request: DecisionRequest) -> tuple[Answer, RuleSet]:
        ruleset = self.ruleset(request.ruleset)
        deadline = self.deadline(request)
        gathered = await self._gather(request, deadline, cache_with_decision=True)
        facts = _facts(gathered, request)
        conversation_id, shared_id = _split_keys(gathered, request)
        decision = ruleset.decide(facts, conversation_id=conversation_id, shared_id=shared_id)
        answer = _answer(str(uuid.uuid4()), decision, gathered, deadline)
        await self._save(answer, gathered, deadline)
        observe_decision(
            answer, facts=facts if self._log_state else None, platform=request.platform
        )
        self._crowd.answered(deadline)
        return answer, ruleset

    async def explain(self, request: DecisionRequest) -> Explained:
        """The decision ``decide`` would make, with the per-rule trace; nothing is kept."""
        ruleset = self.ruleset(request.ruleset)
        deadline = self.deadline(request)
        gathered = await self._gather(request, deadline, cache_with_decision=False)
        conversation_id, shared_id = _split_keys(gathered, request)
        decision = ruleset.explain(
            _facts(gathered, request), conversation_id=conversation_id, shared_id=shared_id
        )
        answer = _answer("", decision, gathered, deadline)
        self._crowd.answered(deadline)
        log.info("explained", ruleset=answer.ruleset, rule=answer.rule, outcome=answer.outcome)
        return Explained(answer, decision.trace or ())

    async def _gather(
        self, request: DecisionRequest, deadline: Deadline, *, cache_with_decision: bool
    ) -> GatheredFacts:
        """The request's facts. A fault in gathering itself (a bug: upstream and store faults
        are already reported per source) degrades the decision instead of failing the call."""
        if request.conversation_id is None and request.shared_id is None:
            return _without_ids(request)
        try:
            return await self.gatherer.gather(
                conversation_id=request.conversation_id,
                shared_id=request.shared_id,
                inline_handoff=request.handoff,
                inline_state=request.state,
                deadline=deadline,
                # Lookups are cached with a routed call's decision (one store round trip).
                cache_with_decision=cache_with_decision,
            )
        except Exception:
            log.exception("facts_gathering_failed")
            return GatheredFacts(
                facts=dict.fromkeys(("handoff", "state", "conversation")),
                sources={"handoff": "error", "state": "error"},
                conversation_id=request.conversation_id,
                shared_id=request.shared_id,
            )

    async def _save(self, answer: Answer, gathered: GatheredFacts, deadline: Deadline) -> None:
        """Keep the decision (and cache the new lookups with it), waiting at most what is
        left of the budget.

        A save still running when the budget ends finishes in the background (awaited at
        shutdown); a failed save is logged, and the decision goes out all the same.
        """
        if answer.conversation_id is None and answer.shared_id is None:
            return  # nothing to read it back by
        settings = self.settings
        lookups = dict(gathered.uncached) if settings.cache_ttl_s > 0 else {}
        saving = self.store.save_decision(
            answer.to_dict(),
            ttl_s=settings.decision_ttl_s,
            lookups=lookups or None,
            cache_ttl_s=settings.cache_ttl_s,
            timeout_s=deadline.remaining(),
        )
        if not self.store.shared:  # never waits: no task, no timer
            try:
                await saving
            except StoreError as exc:
                log.warning("decision_not_saved", reason=str(exc))
            return
        save = asyncio.create_task(saving)
        self._pending_saves.add(save)
        save.add_done_callback(self._pending_saves.discard)
        save.add_done_callback(_report_failed_save)
        await asyncio.wait({save}, timeout=deadline.remaining())

    # Reading back --------------------------------------------------------------------

    async def decision_for_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The latest decision kept for a conversation id, or ``None``."""
        return await self._read(self.store.decision_for_conversation(conversation_id))

    async def decision_for_shared_id(self, shared_id: str) -> dict[str, Any] | None:
        """The latest decision kept for a shared id, or ``None``."""
        return await self._read(self.store.decision_for_shared_id(shared_id))

    async def _read(self, lookup: Any) -> dict[str, Any] | None:
        try:
            decision: dict[str, Any] | None = await lookup
        except (StoreError, TimeoutError) as exc:
            log.warning("store_read_failed", operation="decision", reason=exc.__class__.__name__)
            raise StoreUnavailable("The shared store cannot be reached; retry shortly.") from None
        return decision

    # Pushed facts --------------------------------------------------------------------

    async def push(
        self,
        conversation_id: str | None,
        shared_id: str | None,
        *,
        data: JSONMap | None,
        state: JSONMap | None,
        conversation: JSONMap | None,
    ) -> None:
        """Keep pushed facts; returns once every replica sharing the store can read them.

        Raises :class:`StoreUnavailable` when the store cannot take them (the sender must
        retry: a push is never acknowledged and then lost).
        """
        try:
            await self.store.push(
                conversation_id,
                shared_id,
                data=data,
                state=state,
                conversation=conversation,
                ttl_s=self.settings.push_ttl_s,
            )
        except (StoreError, TimeoutError) as exc:
            log.warning("push_not_stored", reason=exc.__class__.__name__)
            raise StoreUnavailable("The shared store cannot be reached; retry shortly.") from None
        log.info("pushed", conversation_id=conversation_id, shared_id=shared_id)

    # Operations ----------------------------------------------------------------------

    def rulesets(self, visible: Callable[[str], bool]) -> list[RulesetSummary]:
        """The rulesets served now that ``visible`` lets the caller see, by name."""
        return [
            RulesetSummary(
                name=name,
                version=loaded.ruleset.version,
                rules=len(loaded.ruleset.rules),
                loaded_at=loaded.loaded_at,
                source=loaded.ruleset.source,
            )
            for name, loaded in sorted(self.rules.snapshot.rulesets.items())
            if visible(name)
        ]

    def last_reload_problem(self) -> ReloadProblem | None:
        """Why the last rejected rule file was rejected, if one is."""
        error = self.rules.snapshot.last_reload_error
        return None if error is None else ReloadProblem(error.file, error.message, error.at)

    async def readiness(self) -> Readiness:
        """Ready when the rules allow it; a store outage does not make the replica unready
        (it still routes on lookups and inline facts)."""
        reason = self.rules.not_ready_reason()
        return Readiness(
            ready=reason is None,
            rulesets={
                name: loaded.ruleset.version
                for name, loaded in sorted(self.rules.snapshot.rulesets.items())
            },
            store=await self._store_status(),
            reason=reason,
        )

    async def _store_status(self) -> StoreStatus:
        try:
            return await asyncio.wait_for(self.store.status(), _STORE_STATUS_TIMEOUT_S)
        except (StoreError, TimeoutError, OSError) as exc:
            log.warning("store_status_failed", reason=exc.__class__.__name__)
            return "down"

    async def drain(self) -> None:
        """Let decision saves and cache writes still running finish (at shutdown, in tests)."""
        pending = self._pending_saves
        if pending:
            _, late = await asyncio.wait(set(pending), timeout=_SAVE_DRAIN_TIMEOUT_S)
            for task in late:
                task.cancel()
            if late:
                log.warning("decision_saves_abandoned", count=len(late))
        await self.gatherer.drain()


@asynccontextmanager
async def open_service(
    settings: Settings,
    rules: RulesRegistry,
    *,
    store: Store | None = None,
    session: aiohttp.ClientSession | None = None,
) -> AsyncIterator[DecisionService]:
    """A :class:`DecisionService` with its store, HTTP client session and fact gatherer,
    closed (after draining pending saves) on exit.

    ``store`` and ``session`` default to ones opened here and closed on exit; ones passed
    in belong to the caller. Must be entered inside the running event loop.
    """
    own_store = store is None
    own_session = session is None
    the_store = open_store(settings) if store is None else store
    if own_store:
        try:
            await the_store.connect()
        except StoreError as exc:  # retried by the store's own breaker; routing goes on
            log.warning("store_unreachable_at_start", reason=str(exc))
    if not the_store.shared:
        STORE_UP.set(1)  # this process's own memory always answers
    the_session = make_client_session(settings) if session is None else session
    service = DecisionService(
        settings, rules, the_store, FactGatherer(settings, the_store, the_session)
    )
    try:
        yield service
    finally:
        await service.drain()
        if own_session:
            await the_session.close()
        if own_store:
            await the_store.close()


def _facts(gathered: GatheredFacts, request: DecisionRequest) -> Mapping[str, Any]:
    return {**gathered.facts, "context": request.context}


def _split_keys(gathered: GatheredFacts, request: DecisionRequest) -> tuple[str | None, str | None]:
    """What keys the decision's split, as (conversation id, shared id): the conversation's
    ids, else the request's ``split_key`` (a platform's call id) when it names none."""
    if gathered.conversation_id is None and gathered.shared_id is None:
        return None, request.split_key
    return gathered.conversation_id, gathered.shared_id


def _answer(
    decision_id: str, decision: Decision, gathered: GatheredFacts, deadline: Deadline
) -> Answer:
    """The answer, built once from the engine's decision and the facts' sources."""
    return Answer(
        decision_id=decision_id,
        conversation_id=gathered.conversation_id,
        shared_id=gathered.shared_id,
        ruleset=decision.ruleset,
        ruleset_version=decision.ruleset_version,
        queue=decision.queue,
        label=decision.label,
        priority=decision.priority,
        skills=decision.skills,
        attributes=dict(decision.attributes),
        rule=decision.rule,
        outcome=decision.outcome,
        degraded=decision.degraded or gathered.degraded,
        sources=gathered.sources,  # type: ignore[arg-type]
        elapsed_ms=round(deadline.elapsed() * 1000, 3),
    )


def _without_ids(request: DecisionRequest) -> GatheredFacts:
    """Facts for a call that names no conversation: inline ones only, lookups skipped."""
    handoff = None if request.handoff is None else dict(request.handoff)
    state = None if request.state is None else dict(request.state)
    return GatheredFacts(
        facts={
            "handoff": handoff if handoff is not None else {},
            "state": state if state is not None else {},
            "conversation": {},
        },
        sources={
            "handoff": "skipped" if handoff is None else "inline",
            "state": "skipped" if state is None else "inline",
        },
        conversation_id=None,
        shared_id=None,
    )


def _report_failed_save(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        log.warning("decision_not_saved", reason="cancelled")
        return
    error = task.exception()
    if isinstance(error, StoreError | TimeoutError):
        log.warning("decision_not_saved", reason=error.__class__.__name__)
    elif error is not None:
        log.error("decision_not_saved", exc_info=error)
