"""The decision service: request → gather → rules → record → answer, with no HTTP in it.

Every front calls this: ``POST /v1/route`` and ``/v1/explain``, the platform endpoints,
the CLI's tests and the test suite. It owns the request's deadline (from its arrival,
clamped to ``ROUTER_MAX_BUDGET_MS``), picks the ruleset version once (a reload during the
call never changes it half-way), gathers the facts within the budget, decides, keeps the
decision for read-back, records it for replay (:mod:`router.records`), and reports it (one
``decision`` log line, the metrics). It never fails a call that can still be routed: a
store or upstream fault degrades the decision, and a record that cannot be kept is dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from router.budget import Crowd, Deadline
from router.engine import Decision, RuleSet
from router.facts import FactGatherer, GatheredFacts, make_client_session
from router.ids import new_id
from router.metrics import RECORDS_DROPPED, STORE_UP
from router.records import RecordFile, ReplayReport, encode_record, recorded_facts
from router.rules_registry import RulesRegistry
from router.sensitive import SensitivePaths, mask_trace
from router.service.answer import Answer, Explained, PlatformAnswer
from router.service.card import (
    Card,
    LocatorKind,
    card_data,
    card_from_stored,
    card_link_valid,
    card_url,
)
from router.service.errors import (
    CardNotFound,
    CardRefused,
    NotReady,
    RulesetNotFound,
    StoreUnavailable,
)
from router.service.operations import (
    Readiness,
    ReloadProblem,
    RulesetSummary,
    RulesView,
    TestSummary,
)
from router.service.recent import RecentDecision, RecentDecisions, Traffic
from router.service.replaying import load_candidate, replay_records
from router.service.request import DecisionRequest
from router.service.sensitivity import Sensitivity
from router.service.telemetry import observe_decision
from router.settings import Settings
from router.store import Store, StoreError, open_store
from router.store.base import JSONMap, StoreStatus

log = structlog.get_logger("router.service")

_SAVE_DRAIN_TIMEOUT_S = 2.0
"""Longest wait at shutdown for decision saves still running (drain + this + the store's
outbox flush stay under the contract's 10 s)."""
_STORE_STATUS_TIMEOUT_S = 1.0


class DecisionService:
    """Decides calls for every front; one per process (see :func:`open_service`)."""

    def __init__(
        self,
        settings: Settings,
        rules: RulesRegistry,
        store: Store,
        gatherer: FactGatherer,
        record_file: RecordFile | None = None,
        sensitivity: Sensitivity | None = None,
    ) -> None:
        self.settings = settings
        self.sensitivity = (
            Sensitivity(rules, settings.sensitive()) if sensitivity is None else sensitivity
        )
        self.rules = rules
        self.store = store
        self.gatherer = gatherer
        self._record_file = record_file
        self._record_in_store = settings.record_max > 0
        self._recording = self._record_in_store or record_file is not None
        self._pending_saves: set[asyncio.Task[None]] = set()
        self._log_state = settings.log_state
        self._crowd = Crowd()
        self._recent = RecentDecisions()
        self._pending: list[_Pending] = []
        """Decisions made in this loop turn, not yet kept or reported (see
        :meth:`keep_and_report`)."""
        self._rules_view = RulesView(rules)
        self.clock: Callable[[], float] = time.time
        """Wall clock for card link expiry (tests replace it)."""

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
        """The ruleset a request that names none is decided by (``ROUTER_DEFAULT_RULESET``)."""
        return self.settings.default_ruleset

    def _later(self, pending: _Pending) -> None:
        self._pending.append(pending)
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.keep_and_report)
            except RuntimeError:  # no loop running (a library caller): now, then
                self.keep_and_report()

    def keep_and_report(self) -> None:
        """Keep (in the memory store) and report (the ops page's ring, the metrics, the
        ``decision`` log line) the decisions made since the last call.

        :meth:`decide` leaves this to the end of the loop turn it decides in, for all the
        decisions of that turn at once: one pass through each step's code for a burst of
        calls, not one per call between the others' steps, costs ~15 % less CPU per call
        under load (measured with bench/http_ladder.py). Nothing waits on it, every read of
        decisions (read-back, replay, the card, the ops page) runs it first, and no loop turn
        ends with a decision not kept. With a shared store, decide keeps each decision itself
        within its budget (the save may wait on the network) and only the report is left
        for here."""
        pending, self._pending = self._pending, []
        for entry in pending:
            if entry.unkept is not None:
                try:
                    self._keep_now(entry.answer, *entry.unkept)
                except Exception:  # never lose the others' for one
                    log.exception("decision_not_saved")
        for entry in pending:
            try:
                self._recent.add(entry.answer)
                observe_decision(entry.answer, facts=entry.log_facts, platform=entry.platform)
            except Exception:  # never lose the others' for one
                log.exception("decision_not_reported")

    def _keep_now(
        self,
        kept: Answer,
        facts: Mapping[str, Any],
        at: datetime,
        ruleset: RuleSet,
        paths: SensitivePaths,
        card: dict[str, Any] | None,
        uncached: Mapping[str, JSONMap],
    ) -> None:
        """Save a decision in a store that is not shared (which never waits, so its
        coroutine finishes on its first step)."""
        record = self._record(kept, facts, at, ruleset, paths) if self._recording else None
        saving = self._save(kept, uncached, None, record, card)
        try:
            saving.send(None)
        except StopIteration:
            return
        saving.close()
        raise RuntimeError("a store that is not shared waited")

    def answers_without_waiting(self, request: DecisionRequest) -> bool:
        """True when :meth:`decide` cannot wait on anything for ``request``: the store is
        this process's memory and nothing is looked up (the call brings its handoff and
        state, or there is no PolyAI API key to look up with). A front may then run it to
        its end at once, outside a task.

        It must stay exact: code run outside a task cannot enter ``asyncio.timeout`` (the
        upstream and shared-store waits do), so a call this says yes to must reach no wait
        of that kind (``tests/http/test_route_lane.py`` checks that the usual call makes no
        task, and the lane finishes a call that waits on a bare future in one)."""
        if self.store.shared:
            return False
        inline = request.handoff is not None and request.state is not None
        return inline or not self.settings.lookups_enabled

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
        platform = request.platform
        return PlatformAnswer(
            answer, maps.queue_id(platform, answer.queue), maps.workflow(platform)
        )

    async def _decide(self, request: DecisionRequest) -> tuple[Answer, RuleSet]:
        ruleset = self.ruleset(request.ruleset)
        deadline = self.deadline(request)
        gathered = await self._gather(request, deadline, cache_with_decision=True)
        facts = _facts(gathered, request)
        at = datetime.now(UTC)  # explicit, so the record replays at the very same instant
        cid, sid = _split_keys(gathered, request)
        decision = ruleset.decide(facts, conversation_id=cid, shared_id=sid, at=at)
        link = self._card_url if self.settings.card_secret else None
        answer = _answer(new_id(), decision, gathered, deadline, link)
        # What is kept, recorded and logged: the label and attributes without sensitive
        # values (the route answer alone carries them, to the caller).
        paths = self.sensitivity.of(ruleset)
        masked = ruleset.mask_rendering(decision, facts, paths, conversation_id=cid, shared_id=sid)
        kept = answer if masked is decision else _masked_answer(answer, masked)
        card = card_data(ruleset, answer.rule, facts, paths) if self.settings.card_secret else None
        log_facts = paths.mask(facts) if self._log_state else None
        self._crowd.answered(deadline)
        if not self.store.shared:  # kept with the others of this loop turn: keep_and_report
            unkept = (facts, at, ruleset, paths, card, gathered.uncached)
            self._later(_Pending(kept, request.platform, log_facts, unkept))
            return answer, ruleset
        record = self._record(kept, facts, at, ruleset, paths) if self._recording else None
        await self._save(kept, gathered.uncached, deadline, record, card)
        # The save may have waited on the network: the answer tells the caller how long the
        # whole call took (the stored copy says how long it took until it was saved).
        elapsed_ms = round(deadline.elapsed() * 1000, 3)
        answer = replace(answer, elapsed_ms=elapsed_ms)
        self._later(_Pending(replace(kept, elapsed_ms=elapsed_ms), request.platform, log_facts))
        return answer, ruleset

    async def explain(self, request: DecisionRequest) -> Explained:
        """The decision ``decide`` would make, with the per-rule trace; nothing is kept."""
        ruleset = self.ruleset(request.ruleset)
        deadline = self.deadline(request)
        gathered = await self._gather(request, deadline, cache_with_decision=False)
        facts = _facts(gathered, request)
        cid, sid = _split_keys(gathered, request)
        decision = ruleset.explain(facts, conversation_id=cid, shared_id=sid, at=request.at)
        # Explain is not the route answer: sensitive values show as "***" in the label,
        # the attributes and the trace's actual values (operators and expected values stay).
        paths = self.sensitivity.of(ruleset)
        shown = ruleset.mask_rendering(decision, facts, paths, conversation_id=cid, shared_id=sid)
        answer = _answer("", shown, gathered, deadline)
        self._crowd.answered(deadline)
        log.info("explained", ruleset=answer.ruleset, rule=answer.rule, outcome=answer.outcome)
        return Explained(answer, tuple(mask_trace(decision.trace or (), paths)))

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

    def _record(
        self,
        answer: Answer,
        facts: Mapping[str, Any],
        at: datetime,
        ruleset: RuleSet,
        paths: SensitivePaths,
    ) -> bytes | None:
        """The decision's replay record (handed to the record file here), or ``None`` when
        the store keeps no records or it cannot be written (dropped and counted)."""
        try:
            kept, removed = recorded_facts(facts, paths)
            body = encode_record(
                decision_id=answer.decision_id,
                conversation_id=answer.conversation_id,
                shared_id=answer.shared_id,
                ruleset=answer.ruleset,
                ruleset_version=answer.ruleset_version,
                at=at,
                facts=kept,
                removed=removed,
                rule=answer.rule,
                queue=answer.queue,
                outcome=answer.outcome,
            )
        except Exception:  # never fail a decision for its record
            RECORDS_DROPPED.labels(reason="unencodable").inc()
            log.debug("record_not_encoded", exc_info=True)
            return None
        if self._record_file is not None:
            self._record_file.put(body)
        return body if self._record_in_store else None

    def _card_url(
        self, decision_id: str, conversation_id: str | None, shared_id: str | None
    ) -> str | None:
        """The signed card link of a decision, or ``None`` (no secret, or nothing to find
        the decision by)."""
        settings = self.settings
        if not settings.card_secret or not decision_id:
            return None
        kind: LocatorKind
        if conversation_id is not None:
            kind, locator = "c", conversation_id
        elif shared_id is not None:
            kind, locator = "s", shared_id
        else:
            return None
        return card_url(
            settings.card_secret,
            settings.card_base_url,
            decision_id,
            kind,
            locator,
            expires_at=int(self.clock()) + settings.card_ttl_s,
        )

    async def _save(
        self,
        answer: Answer,
        uncached: Mapping[str, JSONMap],
        deadline: Deadline | None,
        record: bytes | None = None,
        card: dict[str, Any] | None = None,
    ) -> None:
        """Keep the decision (and cache the new lookups with it, and its replay record, and
        what its agent card shows), waiting at most what is left of the budget.

        A save still running when the budget ends finishes in the background (awaited at
        shutdown); a failed save is logged, and the decision goes out all the same.
        """
        if answer.conversation_id is None and answer.shared_id is None and record is None:
            return  # nothing to read it back by, nothing to record
        settings = self.settings
        lookups = dict(uncached) if settings.cache_ttl_s > 0 else {}
        stored = answer.to_dict()
        if card is not None and answer.card_url is not None:
            stored["card"] = card  # read by the card only, never by the read-back API
        saving = self.store.save_decision(
            stored,
            ttl_s=settings.decision_ttl_s,
            lookups=lookups or None,
            cache_ttl_s=settings.cache_ttl_s,
            timeout_s=None if deadline is None else deadline.remaining(),
            record=record,
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
        await asyncio.wait({save}, timeout=None if deadline is None else deadline.remaining())

    # Reading back --------------------------------------------------------------------

    async def decision_for_conversation(self, conversation_id: str) -> dict[str, Any] | None:
        """The latest decision kept for a conversation id, or ``None``."""
        self.keep_and_report()
        return await self._read(self.store.decision_for_conversation(conversation_id))

    async def decision_for_shared_id(self, shared_id: str) -> dict[str, Any] | None:
        """The latest decision kept for a shared id, or ``None``."""
        self.keep_and_report()
        return await self._read(self.store.decision_for_shared_id(shared_id))

    async def _read(self, lookup: Any) -> dict[str, Any] | None:
        decision = await self._read_stored(lookup)
        if decision is not None:
            decision.pop("card", None)
        return decision

    async def _read_stored(self, lookup: Any) -> dict[str, Any] | None:
        try:
            decision: dict[str, Any] | None = await lookup
        except (StoreError, TimeoutError) as exc:
            log.warning("store_read_failed", operation="decision", reason=exc.__class__.__name__)
            raise StoreUnavailable("The shared store cannot be reached; retry shortly.") from None
        return decision

    # Replay ----------------------------------------------------------------------------

    def load_candidate(self, raw: bytes, *, filename: str, ruleset: str | None) -> RuleSet:
        """A candidate rule file for :meth:`replay`, compiled; ``ruleset`` names it when the
        file does not (default: the default ruleset). Raises :class:`CandidateInvalid`."""
        return load_candidate(raw, filename=filename, ruleset=ruleset or self.default_ruleset)

    async def replay(self, candidate: RuleSet, *, since: datetime | None = None) -> ReplayReport:
        """The store's records decided again with ``candidate`` (see
        :func:`router.service.replaying.replay_records`)."""
        self.keep_and_report()
        return await replay_records(self.settings, self.store, candidate, since=since)

    async def card(
        self, decision_id: str, kind: LocatorKind, locator: str, *, exp: str, sig: str
    ) -> Card:
        """The agent card of a decision, from a signed card link.

        Raises :class:`CardRefused` for a bad or expired signature (checked before anything
        is read), :class:`CardNotFound` when the decision is no longer kept (expired, or a
        newer decision replaced it), :class:`StoreUnavailable` when the store cannot answer.
        """
        secret = self.settings.card_secret
        if not card_link_valid(secret, decision_id, kind, locator, exp, sig, now=self.clock()):
            raise CardRefused("This card link is not valid or has expired.")
        self.keep_and_report()
        lookup = (
            self.store.decision_for_conversation(locator)
            if kind == "c"
            else self.store.decision_for_shared_id(locator)
        )
        stored = await self._read_stored(lookup)
        if stored is None or stored.get("decision_id") != decision_id:
            raise CardNotFound("This call's details are no longer available.")
        return card_from_stored(stored)

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
        return self._rules_view.rulesets(visible)

    def last_reload_problem(
        self, visible: Callable[[str], bool] | None = None
    ) -> ReloadProblem | None:
        """Why the last rejected rule file was rejected (see :class:`RulesView`)."""
        return self._rules_view.last_reload_problem(visible)

    def test_summary(self, name: str) -> TestSummary | None:
        """How the served version of ``name`` does on its own ``tests:`` (cached)."""
        return self._rules_view.test_summary(name)

    def recent(self, n: int) -> list[RecentDecision]:
        """The ``n`` latest answers of this process, newest first (for the ops page).

        A bounded in-memory view per process (with ``--workers N`` each worker shows its
        own), not the decision records replay reads."""
        self.keep_and_report()
        return self._recent.latest(n)

    def traffic(self) -> Traffic:
        """This process's decisions per queue per minute over the last hour."""
        self.keep_and_report()
        return self._recent.traffic()

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
        """Let decision saves and cache writes still running finish (at shutdown, in tests);
        keep and report what is not yet."""
        self.keep_and_report()
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
    sensitivity = Sensitivity(rules, settings.sensitive())
    the_store = open_store(settings, sensitive=sensitivity.everywhere) if store is None else store
    if own_store:
        try:
            await the_store.connect()
        except StoreError as exc:  # retried by the store's own breaker; routing goes on
            log.warning("store_unreachable_at_start", reason=str(exc))
    if not the_store.shared:
        STORE_UP.set(1)  # this process's own memory always answers
    the_session = make_client_session(settings) if session is None else session
    record_file = (
        None
        if settings.record_file is None
        else RecordFile(settings.record_file, buffer=settings.record_file_buffer)
    )
    service = DecisionService(
        settings,
        rules,
        the_store,
        FactGatherer(settings, the_store, the_session),
        record_file=record_file,
        sensitivity=sensitivity,
    )
    try:
        yield service
    finally:
        await service.drain()
        if record_file is not None:
            await asyncio.to_thread(record_file.close)
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
    decision_id: str,
    decision: Decision,
    gathered: GatheredFacts,
    deadline: Deadline,
    link: Callable[[str, str | None, str | None], str | None] | None = None,
) -> Answer:
    """The answer, built once from the engine's decision and the facts' sources."""
    cid, sid = gathered.conversation_id, gathered.shared_id
    return Answer(  # positional, in field order (keywords cost ~1 µs on every call)
        decision_id,
        cid,
        sid,
        decision.ruleset,
        decision.ruleset_version,
        decision.queue,
        decision.label,
        decision.priority,
        decision.skills,
        dict(decision.attributes),
        decision.rule,
        decision.outcome,
        decision.degraded or gathered.degraded,
        gathered.sources,  # type: ignore[arg-type]
        round(deadline.elapsed() * 1000, 3),
        None if link is None else link(decision_id, cid, sid),
    )


def _masked_answer(answer: Answer, masked: Decision) -> Answer:
    """``answer`` with the label and attributes rendered without sensitive values."""
    return replace(answer, label=masked.label, attributes=dict(masked.attributes))


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


@dataclass(slots=True)
class _Pending:
    """A decision made but not yet kept or reported (see
    :meth:`DecisionService.keep_and_report`)."""

    answer: Answer
    """As kept: sensitive values masked."""
    platform: str
    log_facts: Mapping[str, Any] | None
    unkept: (
        tuple[
            Mapping[str, Any],
            datetime,
            RuleSet,
            SensitivePaths,
            dict[str, Any] | None,
            Mapping[str, JSONMap],
        ]
        | None
    ) = None
    """What keeping it needs (facts, instant, ruleset, sensitive paths, card, lookups to
    cache with it), or ``None``
    when it is already kept (a shared store's save, in :meth:`DecisionService.decide`)."""


def _report_failed_save(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        log.warning("decision_not_saved", reason="cancelled")
        return
    error = task.exception()
    if isinstance(error, StoreError | TimeoutError):
        log.warning("decision_not_saved", reason=error.__class__.__name__)
    elif error is not None:
        log.error("decision_not_saved", exc_info=error)
