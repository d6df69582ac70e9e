"""Keeping the served rulesets in step with the rules folder: watch, settle, validate, swap.

A change anywhere in ``ROUTER_RULES`` (the folder is watched, not the files, so a
Kubernetes ConfigMap's ``..data`` symlink swap and an editor's save-by-rename are both
seen) triggers a reload pass. Each rule file whose bytes changed is activated only once it
has *settled*: the same bytes read twice at least ``settle_ms`` apart, so a file still
being copied or streamed is never activated part-way. Settled bytes are loaded whole and
their own ``tests:`` run; a file that fails either is rejected and the last good version
of its ruleset keeps serving. Two files naming one ruleset are both rejected. A ruleset
whose file disappears keeps serving for ``remove_grace_s``, so a delete-and-recreate never
answers ``ruleset_not_found``. Only regular files inside the rules folder are read (a
symlink out of it is refused), and rejection messages quote at most
:data:`QUOTE_LIMIT` characters of a file's text. Start-up (the first pass) and ``SIGHUP``
(:meth:`RulesReloader.request_reload` with ``force``) read files as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from watchfiles import Change, awatch

from router import RuleSet
from router.engine import MAX_FILE_BYTES, load_bytes, ruleset_files, run_tests
from router.metrics import RULES_RELOADS, RULESET_INFO
from router.rules_registry import LoadedRuleset, ReloadError, RulesRegistry

log = structlog.get_logger("router.reload")

QUOTE_LIMIT = 80
"""Most characters of a rule file's own text one rejection message may quote."""

_MAX_PROBLEMS_IN_MESSAGE = 5
_MISSING_PATH_RETRY_S = 1.0
_RECHECK_SLACK_S = 0.02
"""Added to a scheduled re-check so it does not land just before its deadline."""

# A quoted span of a problem message: it opens after a start, a space or an opening
# bracket and closes before an end, a space or punctuation, so a quote inside the value
# (``unknown key 'it's'``) stays inside the span.
_QUOTED = re.compile(r"(?:^|(?<=[\s(\[{,:=]))'(.*?)'(?=$|[\s:;,.)\]}?!])", re.DOTALL)


class RulesetRejected(Exception):
    """A rule file cannot be activated: it does not load, or its own tests fail."""


class _Refused(Exception):
    """A rule file that is not read at all (outside the rules folder, not a regular file)."""


def cap_quotes(message: str, limit: int = QUOTE_LIMIT) -> str:
    """``message`` with its ``'quoted'`` spans cut so they hold at most ``limit`` characters
    in all (a cut span ends in ``…``).

    The engine's problem messages quote the file's own text (an unknown key, a bad
    value); a file that was never meant to be a rule file must not end up in the API and
    the logs.
    """
    budget = limit

    def shorten(match: re.Match[str]) -> str:
        nonlocal budget
        quoted = match.group(1)
        if len(quoted) <= budget:
            budget -= len(quoted)
            return match.group(0)
        kept, budget = quoted[:budget], 0
        return f"'{kept}…'"

    return _QUOTED.sub(shorten, message)


def load_tested(path: Path, raw: bytes | None = None) -> RuleSet:
    """Load one rule file (from ``raw`` when given, else from ``path``) and run its tests;
    raise :class:`RulesetRejected` saying why not."""
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise RulesetRejected(f"cannot read the file: {exc.strerror}") from None
    loaded = load_bytes(raw, str(path), default_name=path.stem)
    errors = [p for p in loaded.problems if p.severity == "error"]
    if loaded.ruleset is None or errors:
        shown = "; ".join(str(p) for p in errors[:_MAX_PROBLEMS_IN_MESSAGE])
        more = len(errors) - _MAX_PROBLEMS_IN_MESSAGE
        raise RulesetRejected(shown + (f"; and {more} more" if more > 0 else "") or "invalid")
    failed = [r for r in run_tests(loaded.ruleset) if not r.ok]
    if failed:
        first = failed[0]
        raise RulesetRejected(
            f"{len(failed)} of its tests failed; first: '{first.name}' expected "
            f"{first.expected}, got {first.actual}"
        )
    return loaded.ruleset


@dataclass(frozen=True, slots=True)
class _Read:
    """One read of a rule file: its bytes (``None`` when not read) and their digest."""

    raw: bytes | None
    digest: str
    problem: str | None
    """Why the bytes could not be had (unreadable, refused)."""


@dataclass(slots=True)
class _FileState:
    """What the reloader last made of one rule file's settled bytes."""

    digest: str
    candidate: RuleSet | None
    """The valid ruleset from these bytes, or ``None`` when they were rejected."""
    error: ReloadError | None


@dataclass(frozen=True, slots=True)
class _Unsettled:
    """Bytes of a rule file seen changed but not yet unchanged for the settle time."""

    digest: str
    since: float
    """The clock when these bytes were first read."""


@dataclass(slots=True)
class ReloadReport:
    """What one reload pass did (for logs and tests)."""

    activated: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    """Changed files not examined yet: their bytes have not settled."""
    kept_while_gone: list[str] = field(default_factory=list)
    """Rulesets whose file is gone that keep serving through the removal grace."""
    recheck_at: float | None = None
    """When (on the reloader's clock) a pass is due though no file changes again: a file
    settles, or a removal grace ends. ``None``: nothing is waiting."""


def _now() -> datetime:
    return datetime.now(UTC)


def _forget_ruleset_info(name: str, version: str) -> None:
    """Drop a replaced version's ``router_ruleset_info`` series.

    It is zeroed first: in multiprocess mode a series cannot be removed, only set.
    """
    RULESET_INFO.labels(ruleset=name, version=version).set(0)
    RULESET_INFO.remove(name, version)


def read_inside(path: Path, folder: Path | None) -> bytes:
    """The bytes of ``path`` if it is a regular file whose real path is inside ``folder``.

    Symlinks are followed, but only while they stay in the folder (a ConfigMap's
    ``..data`` links do; ``shadow.yaml -> /etc/shadow`` does not). ``folder`` is ``None``
    for a rules path naming one file: the operator chose that file, so it is read wherever
    its links lead (it must still be a regular file). Raises :class:`_Refused` saying why
    a file is not read, :class:`OSError` when it cannot be. At most
    ``MAX_FILE_BYTES + 1`` bytes are read: the loader rejects a larger file anyway.
    """
    real = os.path.realpath(path)
    if folder is not None and not Path(real).is_relative_to(os.path.realpath(folder)):
        raise _Refused("not read: it links to a file outside the rules folder")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(real, flags)
    with open(fd, "rb", closefd=True) as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Refused("not read: it is not a regular file")
        return handle.read(MAX_FILE_BYTES + 1)


class RulesReloader:
    """Loads the rule files into a :class:`RulesRegistry`, at start and on every change.

    ``check_file`` loads and tests one file's bytes (default :func:`load_tested`); tests
    may pass a stand-in. ``settle_ms`` (``ROUTER_RELOAD_SETTLE_MS``) is how long a changed
    file's bytes must stay the same before they are activated, ``remove_grace_s``
    (``ROUTER_RELOAD_REMOVE_GRACE_S``) how long a ruleset whose file is gone keeps
    serving; both are measured on ``clock`` (seconds; tests pass a fake). Reload passes
    never overlap: :meth:`watch` runs them one at a time in a worker thread, so a slow load
    does not stall requests being served.
    """

    def __init__(
        self,
        registry: RulesRegistry,
        rules_path: Path,
        *,
        check_file: Callable[[Path, bytes], RuleSet] = load_tested,
        list_files: Callable[[Path], Sequence[Path]] = ruleset_files,
        settle_ms: int = 500,
        remove_grace_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        step_ms: int = 100,
        debounce_ms: int = 1000,
    ) -> None:
        self.registry = registry
        self.rules_path = rules_path
        self._check_file = check_file
        self._list_files = list_files
        self._settle_s = settle_ms / 1000
        self._grace_s = remove_grace_s
        self._clock = clock
        self._step_ms = step_ms
        self._debounce_ms = debounce_ms
        self._files: dict[Path, _FileState] = {}
        self._unsettled: dict[Path, _Unsettled] = {}
        self._gone_since: dict[str, float] = {}
        self._conflicts: dict[Path, ReloadError] = {}
        self._wanted = asyncio.Event()
        self._force = False
        self._recheck: asyncio.TimerHandle | None = None
        self.passes = 0
        """How many reload passes have completed (tests wait on it)."""
        self.last_report: ReloadReport | None = None
        """What the latest pass did."""

    # One pass ---------------------------------------------------------------

    def reload(self, *, force: bool = False) -> ReloadReport:
        """Read the rule files, activate the valid settled changed ones, publish the result.

        Only files whose bytes changed since the last pass are loaded again, unless
        ``force``; the first pass and a forced one take files as they are, without waiting
        for them to settle. Synchronous; one caller at a time (the watcher's worker, or
        start-up).
        """
        now = self._clock()
        as_is = force or self.passes == 0 or self._settle_s <= 0
        files = self._present_files()
        report = ReloadReport()
        deadlines: list[float] = []
        examined = [
            path
            for path in files
            if self._refresh(path, force=force, as_is=as_is, report=report, deadlines=deadlines)
        ]
        present = set(files)
        for gone in set(self._files) - present:
            del self._files[gone]
        for gone in set(self._unsettled) - present:
            del self._unsettled[gone]
        served = self.registry.snapshot.rulesets
        new = self._activate_unique_claims(files, served)
        self._keep_last_good(present, served, new, now, report, deadlines)
        self._count_and_log(examined, served, new, report)
        errors = [e for e in map(self._error_of, files) if e is not None]
        serving = {loaded.file for loaded in new.values()}
        self.registry.publish(
            new,
            files_without_version=tuple(str(p) for p in files if str(p) not in serving),
            last_reload_error=max(errors, key=lambda e: e.at) if errors else None,
        )
        report.recheck_at = min(deadlines, default=None)
        self.last_report = report
        self.passes += 1
        if examined or force or report.removed:
            log.info(
                "rules_reloaded",
                forced=force,
                examined=len(examined),
                activated=report.activated,
                rejected=len(report.rejected),
                removed=report.removed,
                unsettled=len(report.unsettled),
            )
        return report

    def _refresh(
        self,
        path: Path,
        *,
        force: bool,
        as_is: bool,
        report: ReloadReport,
        deadlines: list[float],
    ) -> bool:
        """Examine ``path`` again when its bytes changed and settled (or ``force``).

        True when examined. Changed bytes not settled yet are remembered with the time they
        were first read, and the time they settle is added to ``deadlines``.
        """
        started = self._clock()
        read = self._read(path)
        previous = self._files.get(path)
        if previous is not None and previous.digest == read.digest and not force:
            self._unsettled.pop(path, None)
            return False
        if not as_is:
            seen = self._unsettled.get(path)
            if seen is None or seen.digest != read.digest:
                seen = _Unsettled(read.digest, self._clock())
                self._unsettled[path] = seen
            if started - seen.since < self._settle_s:
                report.unsettled.append(str(path))
                deadlines.append(seen.since + self._settle_s)
                return False
        self._unsettled.pop(path, None)
        self._files[path] = self._examine(path, read)
        return True

    def _read(self, path: Path) -> _Read:
        folder = self.rules_path if self.rules_path.is_dir() else None
        try:
            raw = read_inside(path, folder)
        except _Refused as exc:
            return _Read(None, f"refused:{exc}", str(exc))
        except OSError as exc:
            return _Read(None, f"unreadable:{exc.errno}", f"cannot read the file: {exc.strerror}")
        return _Read(raw, "sha256:" + hashlib.sha256(raw).hexdigest(), None)

    def _examine(self, path: Path, read: _Read) -> _FileState:
        """Load and test the bytes read; a rejection's message quotes little of the file."""
        if read.raw is None:
            return _FileState(read.digest, None, ReloadError(str(path), str(read.problem), _now()))
        try:
            candidate = self._check_file(path, read.raw)
        except RulesetRejected as exc:
            return _FileState(
                read.digest, None, ReloadError(str(path), cap_quotes(str(exc)), _now())
            )
        return _FileState(read.digest, candidate, None)

    def _activate_unique_claims(
        self, files: list[Path], served: Mapping[str, LoadedRuleset]
    ) -> dict[str, LoadedRuleset]:
        """The valid rulesets whose name exactly one file claims (conflicts are noted)."""
        claims: dict[str, list[Path]] = {}
        for path in files:
            state = self._files.get(path)
            if state is not None and state.candidate is not None:
                claims.setdefault(state.candidate.name, []).append(path)
        conflicts: dict[Path, ReloadError] = {}
        new: dict[str, LoadedRuleset] = {}
        for name, paths in claims.items():
            if len(paths) > 1:
                message = f"ruleset {name!r} is named by more than one file: " + ", ".join(
                    str(p) for p in paths
                )
                for path in paths:
                    earlier = self._conflicts.get(path)
                    conflicts[path] = (
                        earlier
                        if earlier is not None and earlier.message == message
                        else ReloadError(str(path), message, _now())
                    )
                continue
            candidate = self._files[paths[0]].candidate
            assert candidate is not None
            old = served.get(name)
            unchanged = (
                old is not None
                and old.ruleset.version == candidate.version
                and old.file == str(paths[0])
            )
            new[name] = (
                old
                if unchanged and old is not None
                else LoadedRuleset(candidate, str(paths[0]), _now())
            )
        self._conflicts = conflicts
        return new

    def _keep_last_good(
        self,
        present: set[Path],
        served: Mapping[str, LoadedRuleset],
        new: dict[str, LoadedRuleset],
        now: float,
        report: ReloadReport,
        deadlines: list[float],
    ) -> None:
        """Keep serving what no valid file claims now but should still serve.

        A ruleset keeps its last good version while its file is there but rejected, not
        settled, or in conflict, and for the removal grace after its file is gone (a
        re-check is due when the grace ends). It is removed when its file now validly
        names another ruleset, or when the grace ends with no file for it back.
        """
        for name in set(self._gone_since) - served.keys():
            del self._gone_since[name]
        for name, old in served.items():
            if name in new:
                self._gone_since.pop(name, None)
                continue
            path = Path(old.file)
            if path in present:
                self._gone_since.pop(name, None)
                state = self._files.get(path)
                if state is None or state.candidate is None or state.candidate.name == name:
                    new[name] = old
                else:
                    report.removed.append(name)
                continue
            since = self._gone_since.get(name)
            if since is None:
                since = self._gone_since[name] = now
                log.warning(
                    "ruleset_file_gone",
                    ruleset=name,
                    file=old.file,
                    keeps_serving_for_s=self._grace_s,
                )
            if now - since < self._grace_s:
                new[name] = old
                report.kept_while_gone.append(name)
                deadlines.append(since + self._grace_s)
            else:
                del self._gone_since[name]
                report.removed.append(name)

    def _error_of(self, path: Path) -> ReloadError | None:
        state = self._files.get(path)
        return (state.error if state is not None else None) or self._conflicts.get(path)

    def _present_files(self) -> list[Path]:
        if not self.rules_path.exists():
            log.warning("rules_path_missing", path=str(self.rules_path))
            return []
        return list(self._list_files(self.rules_path))

    def _count_and_log(
        self,
        examined: list[Path],
        served: Mapping[str, LoadedRuleset],
        new: Mapping[str, LoadedRuleset],
        report: ReloadReport,
    ) -> None:
        for path in examined:
            error = self._error_of(path)
            RULES_RELOADS.labels(result="ok" if error is None else "error").inc()
            if error is not None:
                report.rejected.append(str(path))
                log.error("ruleset_rejected", file=str(path), message=error.message)
        for name, loaded in new.items():
            before = served.get(name)
            if before is loaded:
                continue
            if before is not None:
                _forget_ruleset_info(name, before.ruleset.version)
            RULESET_INFO.labels(ruleset=name, version=loaded.ruleset.version).set(1)
            report.activated.append(name)
            log.info(
                "ruleset_loaded",
                ruleset=name,
                version=loaded.ruleset.version,
                source=loaded.ruleset.source,
                rules=len(loaded.ruleset.rules),
            )
        for name in report.removed:
            _forget_ruleset_info(name, served[name].ruleset.version)
            log.warning(
                "ruleset_removed",
                ruleset=name,
                reason="its file is gone, or now names another ruleset",
            )

    # Watching ---------------------------------------------------------------

    def request_reload(self, force: bool = False) -> None:
        """Ask the watcher for a reload pass soon (``force``: read every file again)."""
        self._force = self._force or force
        self._wanted.set()

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every change under the rules path, on request, and when a file
        settles or a removal grace ends, until ``stop``."""
        worker = asyncio.create_task(self._reload_worker(), name="rules-reload-worker")
        try:
            while not stop.is_set():
                await self._watch_once(stop)
        finally:
            if self._recheck is not None:
                self._recheck.cancel()
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)

    async def _watch_once(self, stop: asyncio.Event) -> None:
        if not self.rules_path.exists():  # not there yet: look again shortly
            await _wait_or_stop(stop, _MISSING_PATH_RETRY_S)
            if self.rules_path.exists():
                self.request_reload()
            return
        folder = self.rules_path if self.rules_path.is_dir() else self.rules_path.parent
        self.request_reload()  # catches changes made before the watch was in place
        try:
            async for _changes in awatch(
                folder,
                watch_filter=self._relevant,
                step=self._step_ms,
                debounce=self._debounce_ms,
                stop_event=stop,
            ):
                self.request_reload()
        except OSError as exc:  # the folder vanished under the watcher: look again shortly
            log.warning("rules_watch_failed", path=str(folder), message=str(exc))
            await _wait_or_stop(stop, _MISSING_PATH_RETRY_S)
            self.request_reload()

    def _relevant(self, change: Change, path: str) -> bool:
        """Every change in a watched folder counts; for a single file, that file and ``..*``."""
        if self.rules_path.is_dir():
            return True
        name = Path(path).name
        return name == self.rules_path.name or name.startswith("..")

    async def _reload_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            force, self._force = self._force, False
            try:
                report = await asyncio.to_thread(self.reload, force=force)
            except Exception:  # a reload bug must not stop future reloads
                log.exception("rules_reload_failed")
                continue
            self._schedule_recheck(loop, report.recheck_at)

    def _schedule_recheck(self, loop: asyncio.AbstractEventLoop, at: float | None) -> None:
        """Make sure a pass runs at ``at`` even if no file changes again (each pass says
        when the next one is due, so the last pass's word replaces any earlier timer)."""
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        if at is not None:
            delay = max(0.0, at - self._clock()) + _RECHECK_SLACK_S
            self._recheck = loop.call_later(delay, self.request_reload)


async def _wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
