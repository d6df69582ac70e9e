"""What the API and the ops page read about the rules being served: the rulesets, the last
reload error located in its file, each version's own test results. Views of the rules
registry, with no HTTP in them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from router.engine import MAX_FILE_BYTES, run_tests
from router.rules_registry import RulesRegistry
from router.store import StoreStatus


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
    """The last rejected rule file and why; where in the file, when the message says."""

    file: str
    message: str
    at: datetime
    line: int | None = None
    col: int | None = None
    excerpt: str | None = None
    """The offending line of the file as it is now (at most :data:`EXCERPT_MAX` chars)."""


EXCERPT_MAX = 80
"""Most characters of a rule file's line quoted beside a reload error (as in messages)."""


@dataclass(frozen=True, slots=True)
class TestSummary:
    """How a served ruleset version's own ``tests:`` went (run once per version)."""

    __test__ = False  # not a pytest test class

    passed: int
    failed: int
    failures: tuple[str, ...]
    """Names of the failing tests."""


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether this replica should get traffic (``GET /readyz``)."""

    ready: bool
    rulesets: dict[str, str]
    store: StoreStatus
    reason: str | None


class RulesView:
    """The served rulesets as people read them (``GET /v1/rulesets``, ``/ops``)."""

    def __init__(self, rules: RulesRegistry) -> None:
        self.rules = rules
        self._test_summaries: dict[str, TestSummary] = {}
        self._located: tuple[tuple[str, datetime], ReloadProblem] | None = None

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

    def last_reload_problem(
        self, visible: Callable[[str], bool] | None = None
    ) -> ReloadProblem | None:
        """Why the last rejected rule file was rejected, if one is, with the ``line:col``
        its message names and that line of the file (read once per rejection). With
        ``visible``, only when that file serves a ruleset ``visible`` lets the caller see: a
        key limited to rulesets learns nothing of other files, nor of a file that serves
        nothing yet."""
        snapshot = self.rules.snapshot
        error = snapshot.last_reload_error
        if error is None:
            return None
        if visible is not None and not any(
            visible(name)
            for name, loaded in snapshot.rulesets.items()
            if error.file in (loaded.file, loaded.ruleset.source)
        ):
            return None
        located = self._located
        if located is not None and located[0] == (error.file, error.at):
            return located[1]
        problem = _locate(ReloadProblem(error.file, error.message, error.at))
        self._located = ((error.file, error.at), problem)
        return problem

    def test_summary(self, name: str) -> TestSummary | None:
        """How the served version of ruleset ``name`` does on its own ``tests:`` (run once
        per version, then cached), or ``None`` when it is not served."""
        ruleset = self.rules.get(name)
        if ruleset is None:
            return None
        summary = self._test_summaries.get(ruleset.version)
        if summary is None:
            results = run_tests(ruleset)
            summary = TestSummary(
                passed=sum(r.ok for r in results),
                failed=sum(not r.ok for r in results),
                failures=tuple(r.name for r in results if not r.ok),
            )
            served = {loaded.ruleset.version for loaded in self.rules.snapshot.rulesets.values()}
            for version in [v for v in self._test_summaries if v not in served]:
                del self._test_summaries[version]
            self._test_summaries[ruleset.version] = summary
        return summary


_LOCATION = re.compile(r":(\d+):(\d+): ")


def _locate(problem: ReloadProblem) -> ReloadProblem:
    """``problem`` with the ``line:col`` its message starts with (``file:line:col: …``)
    and that line of the file, when it can still be read."""
    if not problem.message.startswith(problem.file):
        return problem
    found = _LOCATION.match(problem.message, len(problem.file))
    if found is None:
        return problem
    line, col = int(found.group(1)), int(found.group(2))
    excerpt = None
    try:
        with Path(problem.file).open("rb") as source:
            raw = source.read(MAX_FILE_BYTES)
        lines = raw.decode("utf-8", "replace").splitlines()
        if 0 < line <= len(lines):
            text = lines[line - 1].rstrip()
            excerpt = text if len(text) <= EXCERPT_MAX else text[: EXCERPT_MAX - 1] + "…"
    except OSError:
        pass
    return ReloadProblem(problem.file, problem.message, problem.at, line, col, excerpt)
