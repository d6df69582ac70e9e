"""Running a ruleset's own ``tests:`` — used by ``router test`` and before every reload."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.engine.decide import Decision, RuleSet


@dataclass(frozen=True, slots=True)
class TestCase:
    """One compiled test: the facts to decide on and what the decision must be."""

    __test__ = False  # not a pytest test class

    name: str
    line: int
    conversation_id: str | None
    shared_id: str | None
    at: datetime | None
    facts: Mapping[str, Mapping[str, Any] | None]
    expect: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TestResult:
    """How one test went: ``expected`` and ``actual`` hold the checked fields."""

    __test__ = False

    ruleset: str
    name: str
    line: int
    ok: bool
    expected: dict[str, Any]
    actual: dict[str, Any]
    rule: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ruleset": self.ruleset,
            "name": self.name,
            "ok": self.ok,
            "expected": self.expected,
            "actual": self.actual,
        }


def _actual(decision: Decision, field: str, expected: Any) -> Any:
    value = getattr(decision, field)
    if field == "skills":
        return list(value)
    if field == "attributes":
        # Only the attributes the test names are compared (and reported).
        return {name: value.get(name) for name in expected}
    return value


def run_tests(ruleset: RuleSet) -> list[TestResult]:
    """Run every test of ``ruleset``, in file order."""
    results = []
    for case in ruleset.tests:
        decision = ruleset.decide(
            case.facts, conversation_id=case.conversation_id, shared_id=case.shared_id, at=case.at
        )
        expected = dict(case.expect)
        actual = {field: _actual(decision, field, value) for field, value in expected.items()}
        results.append(
            TestResult(
                ruleset=ruleset.name,
                name=case.name,
                line=case.line,
                ok=actual == expected,
                expected=expected,
                actual=actual,
                rule=decision.rule,
            )
        )
    return results


def unreached_rules(ruleset: RuleSet, results: Iterable[TestResult]) -> list[str]:
    """Rule ids that no test's decision landed on (for ``router test --coverage``)."""
    reached = {result.rule for result in results}
    return [rule.id for rule in ruleset.rules if rule.id not in reached]
