"""Keeping the served rulesets in step with the rules folder: watch, validate, test, swap.

A change anywhere in ``ROUTER_RULES`` (the folder is watched, not the files, so a
Kubernetes ConfigMap's ``..data`` symlink swap and an editor's save-by-rename are both
seen) triggers a reload after the writes settle. Each rule file whose bytes changed is
loaded whole and its own ``tests:`` run; a file that fails either is rejected and the
last good version of its ruleset keeps serving. Two files naming one ruleset are both
rejected. A half-written file is rejected, then loaded once the write completes (that
write is another change). ``SIGHUP`` (:meth:`RulesReloader.request_reload`) forces every
file to be read again.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
from watchfiles import Change, awatch

from router import RuleSet
from router.engine import load_file, ruleset_files, run_tests
from router.metrics import RULES_RELOADS, RULESET_INFO
from router.rules_registry import LoadedRuleset, ReloadError, RulesRegistry

log = structlog.get_logger("router.reload")

_MAX_PROBLEMS_IN_MESSAGE = 5
_MISSING_PATH_RETRY_S = 1.0


class RulesetRejected(Exception):
    """A rule file cannot be activated: it does not load, or its own tests fail."""


def load_tested(path: Path) -> RuleSet:
    """Load one rule file and run its tests; raise :class:`RulesetRejected` saying why not."""
    loaded = load_file(path)
    errors = [p for p in loaded.problems if p.severity == "error"]
    if loaded.ruleset is None or errors:
        shown = "; ".join(str(p) for p in errors[:_MAX_PROBLEMS_IN_MESSAGE])
        more = len(errors) - _MAX_PROBLEMS_IN_MESSAGE
        raise RulesetRejected(shown + (f"; and {more} more" if more > 0 else "") or "invalid")
    failed = [r for r in run_tests(loaded.ruleset) if not r.ok]
    if failed:
        first = failed[0]
        raise RulesetRejected(
            f"{len(failed)} of its tests failed; first: {first.name!r} expected "
            f"{first.expected}, got {first.actual}"
        )
    return loaded.ruleset


@dataclass(slots=True)
class _FileState:
    """What the reloader last made of one rule file's bytes."""

    digest: str
    candidate: RuleSet | None
    """The valid ruleset from these bytes, or ``None`` when they were rejected."""
    error: ReloadError | None


@dataclass(slots=True)
class ReloadReport:
    """What one reload pass did (for logs and tests)."""

    activated: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _forget_ruleset_info(name: str, version: str) -> None:
    """Drop a replaced version's ``router_ruleset_info`` series.

    It is zeroed first: in multiprocess mode a series cannot be removed, only set.
    """
    RULESET_INFO.labels(ruleset=name, version=version).set(0)
    RULESET_INFO.remove(name, version)


class RulesReloader:
    """Loads the rule files into a :class:`RulesRegistry`, at start and on every change.

    ``check_file`` loads and tests one file (default :func:`load_tested`); tests may pass a
    stand-in. Reload passes never overlap: :meth:`watch` runs them one at a time in a
    worker thread, so a slow load does not stall requests being served.
    """

    def __init__(
        self,
        registry: RulesRegistry,
        rules_path: Path,
        *,
        check_file: Callable[[Path], RuleSet] = load_tested,
        list_files: Callable[[Path], Sequence[Path]] = ruleset_files,
        step_ms: int = 100,
        debounce_ms: int = 1000,
    ) -> None:
        self.registry = registry
        self.rules_path = rules_path
        self._check_file = check_file
        self._list_files = list_files
        self._step_ms = step_ms
        self._debounce_ms = debounce_ms
        self._files: dict[Path, _FileState] = {}
        self._conflicts: dict[Path, ReloadError] = {}
        self._wanted = asyncio.Event()
        self._force = False
        self.passes = 0
        """How many reload passes have completed (tests wait on it)."""

    # One pass ---------------------------------------------------------------

    def reload(self, *, force: bool = False) -> ReloadReport:
        """Read the rule files, activate the valid changed ones, publish the result.

        Only files whose bytes changed since the last pass are loaded again, unless
        ``force``. Synchronous; one caller at a time (the watcher's worker, or start-up).
        """
        files = self._present_files()
        examined = [f for f in files if self._refresh(f, force=force)]
        for gone in set(self._files) - set(files):
            del self._files[gone]
        served = self.registry.snapshot.rulesets
        new = self._activate_unique_claims(files, served)
        removed = self._keep_last_good(files, served, new)
        report = self._count_and_log(examined, served, new, removed)
        errors = [e for e in map(self._error_of, files) if e is not None]
        serving = {loaded.file for loaded in new.values()}
        self.registry.publish(
            new,
            files_without_version=tuple(str(p) for p in files if str(p) not in serving),
            last_reload_error=max(errors, key=lambda e: e.at) if errors else None,
        )
        self.passes += 1
        if examined or force:
            log.info(
                "rules_reloaded",
                forced=force,
                examined=len(examined),
                activated=report.activated,
                rejected=len(report.rejected),
                removed=report.removed,
            )
        return report

    def _activate_unique_claims(
        self, files: list[Path], served: Mapping[str, LoadedRuleset]
    ) -> dict[str, LoadedRuleset]:
        """The valid rulesets whose name exactly one file claims (conflicts are noted)."""
        claims: dict[str, list[Path]] = {}
        for path in files:
            candidate = self._files[path].candidate
            if candidate is not None:
                claims.setdefault(candidate.name, []).append(path)
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
        files: list[Path],
        served: Mapping[str, LoadedRuleset],
        new: dict[str, LoadedRuleset],
    ) -> list[str]:
        """Keep serving rulesets whose file is now rejected; return the names dropped.

        A ruleset is dropped when its file is gone, or now validly names another ruleset.
        """
        present = {str(p) for p in files}
        removed: list[str] = []
        for name, old in served.items():
            if name in new:
                continue
            state = self._files.get(Path(old.file))
            rejected_now = state is not None and (
                state.candidate is None or state.candidate.name == name
            )
            if old.file in present and rejected_now:
                new[name] = old
            else:
                removed.append(name)
        return removed

    def _error_of(self, path: Path) -> ReloadError | None:
        state = self._files.get(path)
        return (state.error if state is not None else None) or self._conflicts.get(path)

    def _present_files(self) -> list[Path]:
        if not self.rules_path.exists():
            log.warning("rules_path_missing", path=str(self.rules_path))
            return []
        return list(self._list_files(self.rules_path))

    def _refresh(self, path: Path, *, force: bool) -> bool:
        """Load ``path`` again when its bytes changed (or ``force``); True when examined."""
        try:
            digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            digest = f"unreadable:{exc.errno}"
        previous = self._files.get(path)
        if previous is not None and previous.digest == digest and not force:
            return False
        try:
            candidate: RuleSet | None = self._check_file(path)
            error = None
        except RulesetRejected as exc:
            candidate, error = None, ReloadError(str(path), str(exc), _now())
        except OSError as exc:
            candidate = None
            error = ReloadError(str(path), f"cannot read the file: {exc.strerror}", _now())
        self._files[path] = _FileState(digest, candidate, error)
        return True

    def _count_and_log(
        self,
        examined: list[Path],
        served: Mapping[str, LoadedRuleset],
        new: Mapping[str, LoadedRuleset],
        removed: list[str],
    ) -> ReloadReport:
        report = ReloadReport(removed=removed)
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
        for name in removed:
            _forget_ruleset_info(name, served[name].ruleset.version)
            log.warning("ruleset_removed", ruleset=name, reason="its file is gone or names another")
        return report

    # Watching ---------------------------------------------------------------

    def request_reload(self, force: bool = False) -> None:
        """Ask the watcher for a reload pass soon (``force``: read every file again)."""
        self._force = self._force or force
        self._wanted.set()

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload on every settled change under the rules path, and on request, until ``stop``."""
        worker = asyncio.create_task(self._reload_worker(), name="rules-reload-worker")
        try:
            while not stop.is_set():
                await self._watch_once(stop)
        finally:
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
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            force, self._force = self._force, False
            try:
                await asyncio.to_thread(self.reload, force=force)
            except Exception:  # a reload bug must not stop future reloads
                log.exception("rules_reload_failed")


async def _wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return
