"""Conditions (``when:``) compiled into plain Python callables, with a trace twin.

Each condition becomes a small tree of frozen nodes. Every node carries two
closures built together at load time: ``test(scope)``, the fast path a
decision runs, and ``why(scope)``, which returns ``test``'s own result plus
the condition that failed, for ``explain``. Nothing from a rule file is ever
evaluated as code: operators are looked up in a fixed table and regexes are
compiled by RE2 (linear time).

Logic is three-valued: a condition that reads a failed source, or a value replay
knows was there but was not recorded (:data:`~router.engine.values.UNRECORDED`), is
unknown (``None``). Unknown never matches; ``not`` of unknown is unknown; ``any`` is
true if one branch is true; ``all`` is false if one branch is false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Union

import re2

from router.engine.schedule import Schedule
from router.engine.values import (
    MISSING,
    UNRECORDED,
    as_bool,
    as_number,
    as_text,
    is_empty,
    lookup,
)

NAMESPACES = ("handoff", "state", "conversation", "context")
COMBINATORS = ("all", "any", "not", "during", "outside")
OPERATORS = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between",
    "contains", "starts_with", "ends_with", "matches", "exists", "empty",
)  # fmt: skip
MODIFIERS = ("ignore_case",)
CASE_OPERATORS = frozenset(
    {"eq", "ne", "in", "not_in", "contains", "starts_with", "ends_with", "matches"}
)
MAX_PATTERN_LENGTH = 2000
_KEY = re.compile(r"[\w-]+\Z")

Facts = dict[str, Mapping[str, Any] | None]
Check = Callable[[Any], bool]
Test = Callable[["Scope"], "bool | None"]
Failure = dict[str, Any]
Explained = tuple["bool | None", "Failure | None"]
Why = Callable[["Scope"], Explained]


class Scope:
    """What one decision evaluates against: the facts, the clock and per-call caches."""

    __slots__ = ("_now", "_open", "at", "facts", "unrecorded")

    def __init__(self, facts: Facts, at: datetime | None) -> None:
        self.facts = facts
        self.at = at
        self.unrecorded = False
        """Set by a condition that read an :data:`UNRECORDED` value (replay's uncertainty)."""
        self._now: datetime | None = None
        self._open: dict[str, bool] = {}

    def now(self) -> datetime:
        if self.at is not None:
            return self.at
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    def is_open(self, schedule: Schedule) -> bool:
        cached = self._open.get(schedule.name)
        if cached is None:
            cached = self._open[schedule.name] = schedule.is_open(self.now())
        return cached


class ConditionError(ValueError):
    """A condition that cannot be compiled; ``path`` is where inside the ``when``."""

    def __init__(self, message: str, path: tuple[str | int, ...] = (), *, at_key: bool = False):
        super().__init__(message)
        self.path = path
        self.at_key = at_key


# --- value checks -------------------------------------------------------------------------


def _fold(text: str) -> str:
    return text.casefold()


def eq_check(expected: Any, ignore_case: bool) -> Check:
    """``eq``: by the expected value's type (number, boolean or text); see values.py."""
    if type(expected) is bool:
        return lambda v: as_bool(v) is expected
    if type(expected) is int or type(expected) is float:
        return lambda v: v is not True and v is not False and as_number(v) == expected
    if ignore_case:
        folded = _fold(expected)

        def eq_folded(v: Any) -> bool:
            text = as_text(v)
            return text is not None and _fold(text) == folded

        return eq_folded

    def eq_text(v: Any) -> bool:
        return bool(v == expected) if type(v) is str else as_text(v) == expected

    return eq_text


def in_check(values: list[Any], ignore_case: bool) -> Check:
    """``in``: the ``eq`` of any listed value, with set lookups per value type."""
    texts = frozenset((_fold(x) if ignore_case else x) for x in values if type(x) is str)
    numbers = frozenset(x for x in values if type(x) is int or type(x) is float)
    booleans = frozenset(x for x in values if type(x) is bool)

    def check(v: Any) -> bool:
        text = as_text(v)
        if text is not None and (_fold(text) if ignore_case else text) in texts:
            return True
        if numbers and type(v) is not bool:
            number = as_number(v)
            if number is not None and number in numbers:
                return True
        if booleans:
            flag = as_bool(v)
            if flag is not None and flag in booleans:
                return True
        return False

    return check


def _negate_present(check: Check) -> Check:
    return lambda v: v is not MISSING and not check(v)


def _numeric(compare: Callable[[float, float], bool], bound: float) -> Check:
    def check(v: Any) -> bool:
        number = as_number(v)
        return number is not None and compare(number, bound)

    return check


def _contains(expected: Any, ignore_case: bool) -> Check:
    text = as_text(expected) or ""
    needle = _fold(text) if ignore_case else text
    element = eq_check(expected, ignore_case)

    def check(v: Any) -> bool:
        if type(v) is str:
            return needle in (_fold(v) if ignore_case else v)
        if isinstance(v, list | tuple):
            return any(element(item) for item in v)
        return False

    return check


def _affix(expected: str, ignore_case: bool, start: bool) -> Check:
    needle = _fold(expected) if ignore_case else expected

    def check(v: Any) -> bool:
        if type(v) is not str:
            return False
        text = _fold(v) if ignore_case else v
        return text.startswith(needle) if start else text.endswith(needle)

    return check


def compile_pattern(pattern: str, ignore_case: bool) -> Any:
    """An RE2 pattern; :class:`ValueError` with RE2's reason if it cannot compile."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not ignore_case
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid RE2 pattern: {reason}") from None


def _raw_matcher(pattern: Any) -> Callable[[bytes], bool] | None:
    """A yes/no RE2 search straight on the compiled ``RE2`` object, or ``None``.

    google-re2's ``search`` builds a Python ``Match`` (offsets decoded, a generator
    resumed): 1.5 µs for a miss, 4–6 µs for a hit, against 0.6 µs for the C++
    ``Match`` call underneath. That call is not documented API, so it is used only
    when this google-re2 has it and :func:`_raw_matches_work` agrees with ``search``.
    """
    regexp = getattr(pattern, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    find = getattr(regexp, "Match", None)
    if find is None or anchor is None:
        return None

    def matcher(data: bytes) -> bool:
        return bool(find(anchor, data, 0, len(data))[0][0] >= 0)

    return matcher


def _raw_matches_work() -> bool:
    """Whether :func:`_raw_matcher` gives ``search``'s answers in this google-re2."""
    try:
        samples = ("", "ab", "xaby", "b", "é", "ü-ab")
        for source in ("a(b)?", "^$", "é|^b", "(?i)AB$"):
            pattern = compile_pattern(source, False)
            raw = _raw_matcher(pattern)
            if raw is None:
                return False
            for text in samples:
                if raw(text.encode()) != (pattern.search(text) is not None):
                    return False
    except Exception:  # any change in the private API: use the public one
        return False
    return True


def _matches(pattern: Any) -> Check:
    """``matches``: an RE2 search in text (a lone surrogate is read as invalid UTF-8)."""
    raw = _raw_matcher(pattern) if _RAW_MATCHES else None
    if raw is not None:
        fast = raw

        def check(v: Any) -> bool:
            return type(v) is str and fast(v.encode("utf-8", "surrogatepass"))

        return check
    search = pattern.search

    def check_slowly(v: Any) -> bool:
        return type(v) is str and search(v.encode("utf-8", "surrogatepass")) is not None

    return check_slowly


_RAW_MATCHES = _raw_matches_work()


# --- nodes --------------------------------------------------------------------------------
#
# Every node is built by one ``make_*`` function that compiles two closures side by side:
#
# - ``test(scope) -> True | False | None``: the fast path a decision runs; it evaluates
#   the children of ``all``/``any`` cheapest first (the result does not depend on the
#   order: false wins an ``all`` and true wins an ``any`` wherever they appear).
# - ``why(scope) -> (result, failure)``: what ``explain`` runs. Its ``result`` is always
#   this node's own ``test(scope)``, so an explained rule holds exactly when a decided one
#   does; ``why`` only adds which condition, in written order, made it fail (or unknown),
#   and what that condition saw. Nothing on the fast path records anything.


@dataclass(frozen=True, slots=True)
class Op:
    """One operator of a leaf: its name, the value written in the rule, and its check."""

    name: str
    expected: Any
    check: Check = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Leaf:
    """``namespace.key…: matcher`` — all ``ops`` must hold for the value at the path."""

    path: str
    namespace: str
    keys: tuple[str, ...]
    ops: tuple[Op, ...]
    ignore_case: bool
    test: Test = field(compare=False, repr=False)
    why: Why = field(compare=False, repr=False)
    cost: int = field(compare=False, repr=False, default=1)


@dataclass(frozen=True, slots=True)
class All:
    children: tuple[Node, ...]
    test: Test = field(compare=False, repr=False)
    why: Why = field(compare=False, repr=False)
    cost: int = field(compare=False, repr=False, default=1)


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Node, ...]
    test: Test = field(compare=False, repr=False)
    why: Why = field(compare=False, repr=False)
    cost: int = field(compare=False, repr=False, default=1)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    test: Test = field(compare=False, repr=False)
    why: Why = field(compare=False, repr=False)
    cost: int = field(compare=False, repr=False, default=1)


@dataclass(frozen=True, slots=True)
class During:
    """``during: name`` (or ``outside: name`` when ``outside``)."""

    schedule: Schedule
    outside: bool
    test: Test = field(compare=False, repr=False)
    why: Why = field(compare=False, repr=False)
    cost: int = field(compare=False, repr=False, default=1)


Node = Union[Leaf, All, AnyOf, Not, During]  # noqa: UP007 - used at runtime before 3.12

#: Rough relative costs of a check, to test cheap conditions of an ``all``/``any`` first.
#: A regex search through RE2 costs some ten dict lookups; a schedule converts the clock
#: to its zone once per decision.
OP_COSTS = {"matches": 8, "contains": 2, "starts_with": 2, "ends_with": 2}
SCHEDULE_COST = 4


def always(scope: Scope) -> bool:
    """The test of a rule with no conditions."""
    return True


def always_why(scope: Scope) -> Explained:
    """The ``why`` of a rule with no conditions: it holds, nothing failed."""
    return True, None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _seen(value: Any) -> Failure:
    if value is MISSING:
        return {"actual": None, "missing": True}
    return {"actual": value}


def make_leaf(path: str, ops: tuple[Op, ...], ignore_case: bool) -> Leaf:
    namespace, *rest = path.split(".")
    keys = tuple(rest)
    checks = tuple(op.check for op in sorted(ops, key=lambda op: OP_COSTS.get(op.name, 1)))
    if len(checks) == 1:
        check = checks[0]
    else:

        def check(v: Any) -> bool:
            for each in checks:  # noqa: SIM110 - a loop beats all() over a generator here
                if not each(v):
                    return False
            return True

    if len(keys) == 1:
        key = keys[0]

        def test(scope: Scope) -> bool | None:
            facts = scope.facts[namespace]
            if facts is None:
                return None
            value = facts.get(key, MISSING)
            if value is UNRECORDED:
                scope.unrecorded = True
                return None
            return check(value)

    else:

        def test(scope: Scope) -> bool | None:
            facts = scope.facts[namespace]
            if facts is None:
                return None
            value = lookup(facts, keys)
            if value is UNRECORDED:
                scope.unrecorded = True
                return None
            return check(value)

    def why(scope: Scope) -> Explained:
        result = test(scope)
        if result is True:
            return True, None
        if result is None:
            first = ops[0]
            return None, {
                "path": path,
                "op": first.name,
                "expected": _plain(first.expected),
                "actual": None,
                "reason": f"source '{namespace}' failed"
                if scope.facts[namespace] is None
                else "not recorded",
            }
        facts = scope.facts[namespace]
        value = MISSING if facts is None else lookup(facts, keys)
        failed = next((op for op in ops if not op.check(value)), ops[0])
        failure: Failure = {
            "path": path,
            "op": failed.name,
            "expected": _plain(failed.expected),
            **_seen(value),
        }
        if ignore_case:
            failure["ignore_case"] = True
        return False, failure

    cost = sum(OP_COSTS.get(op.name, 1) for op in ops)
    return Leaf(path, namespace, keys, ops, ignore_case, test, why, cost)


def _cheapest_first(children: tuple[Node, ...], last: Node | None = None) -> tuple[Test, ...]:
    ordered = sorted(children, key=lambda child: (child is last, child.cost))
    return tuple(child.test for child in ordered)


def _blame(children: tuple[Node, ...], result: bool | None, scope: Scope) -> Failure | None:
    """The failure of the first child, in written order, whose result is ``result``."""
    for child in children:
        if child.test(scope) is result:
            return child.why(scope)[1]
    return None


def make_all(children: tuple[Node, ...], last: Node | None = None) -> All:
    """``all``: false if a child is false, else unknown if one is unknown, else true.

    ``last`` is a child to test after the others: the candidate index files a rule under
    one of its conditions, which then holds for nearly every input the index offers it.
    """
    tests = _cheapest_first(children, last)

    def test(scope: Scope) -> bool | None:
        unknown = False
        for child in tests:
            result = child(scope)
            if result is False:
                return False
            if result is None:
                unknown = True
        return None if unknown else True

    def why(scope: Scope) -> Explained:
        result = test(scope)
        if result is True:
            return True, None
        return result, _blame(children, result, scope)

    return All(children, test, why, sum(child.cost for child in children))


def make_any(children: tuple[Node, ...]) -> AnyOf:
    tests = _cheapest_first(children)

    def test(scope: Scope) -> bool | None:
        unknown = False
        for child in tests:
            result = child(scope)
            if result is True:
                return True
            if result is None:
                unknown = True
        return None if unknown else False

    def why(scope: Scope) -> Explained:
        result = test(scope)
        if result is True:
            return True, None
        branches = [child.why(scope)[1] for child in children]
        return result, {
            "path": None,
            "op": "any",
            "expected": None,
            "actual": None,
            "branches": branches,
        }

    return AnyOf(children, test, why, sum(child.cost for child in children))


def make_not(child: Node) -> Not:
    inner = child.test

    def test(scope: Scope) -> bool | None:
        result = inner(scope)
        return None if result is None else not result

    def why(scope: Scope) -> Explained:
        result = test(scope)
        if result is True:
            return True, None
        if result is None:
            return None, {
                "path": None,
                "op": "not",
                "expected": None,
                "actual": None,
                "reason": "inner condition is unknown (a source failed)",
            }
        return False, {
            "path": None,
            "op": "not",
            "expected": False,
            "actual": True,
            "reason": "inner condition held",
        }

    return Not(child, test, why, child.cost)


def make_during(schedule: Schedule, outside: bool) -> During:
    if outside:

        def test(scope: Scope) -> bool:
            return not scope.is_open(schedule)

    else:

        def test(scope: Scope) -> bool:
            return scope.is_open(schedule)

    def why(scope: Scope) -> Explained:
        if test(scope):
            return True, None
        state = "open" if scope.is_open(schedule) else "closed"
        return False, {
            "path": None,
            "op": "outside" if outside else "during",
            "expected": schedule.name,
            "actual": f"{state} at {schedule.local_time(scope.now())}",
        }

    return During(schedule, outside, test, why, SCHEDULE_COST)


# --- parsing ``when`` ---------------------------------------------------------------------


def parse_when(
    raw: Any, schedules: Mapping[str, Schedule], shared: dict[Any, Node] | None = None
) -> tuple[Node | None, list[ConditionError]]:
    """Compile a rule's ``when`` mapping. Returns the node (``None`` = always) and problems.

    Pass the same ``shared`` dict for every rule of a file: a path condition or schedule
    written the same way in several rules then compiles once, to one node. Big rulesets
    repeat a few conditions thousands of times (``state.customer_tier: gold``); sharing
    them keeps the ruleset small and the closures a decision runs in the CPU's caches.
    """
    errors: list[ConditionError] = []
    if raw is None:
        return None, errors
    node = _mapping(raw, (), schedules, errors, {} if shared is None else shared)
    if errors:
        return None, errors
    if isinstance(node, All) and not node.children:
        return None, errors
    return node, errors


def _mapping(
    raw: Any,
    at: tuple[str | int, ...],
    schedules: Mapping[str, Schedule],
    errors: list[ConditionError],
    shared: dict[Any, Node],
) -> Node:
    if not isinstance(raw, dict):
        errors.append(
            ConditionError(
                "a condition is a mapping of 'path: value' or all/any/not/during/outside", at
            )
        )
        return make_all(())
    children: list[Node] = []
    for key, value in raw.items():
        here = (*at, key)
        try:
            if key in COMBINATORS:
                children.append(_combinator(key, value, here, schedules, errors, shared))
            elif "." in key:
                # repr tells 1, 1.0, true and "1" apart, and keeps the operators' order.
                token = (key, repr(value))
                leaf = shared.get(token)
                if leaf is None:
                    leaf = shared[token] = _path(key, value, here)
                children.append(leaf)
            else:
                errors.append(_unknown_condition_key(key, here))
        except ConditionError as exc:
            errors.append(exc)
    return children[0] if len(children) == 1 else make_all(tuple(children))


def _unknown_condition_key(key: str, here: tuple[str | int, ...]) -> ConditionError:
    from router.engine.problems import did_you_mean

    hint = did_you_mean(key, (*COMBINATORS, *NAMESPACES))
    if key in ("route", "id", "description", "when"):
        return ConditionError(
            f"'{key}' belongs to the rule, not inside 'when': check this line's indentation "
            "(it should line up with 'when:')",
            here,
            at_key=True,
        )
    if key in NAMESPACES:
        return ConditionError(
            f"'{key}' needs a key: write '{key}.<name>', e.g. '{key}.customer_tier'",
            here,
            at_key=True,
        )
    return ConditionError(
        f"unknown condition '{key}'{hint}: use all, any, not, during, outside, or a path "
        f"such as 'state.customer_tier'",
        here,
        at_key=True,
    )


def _combinator(
    key: str,
    value: Any,
    here: tuple[str | int, ...],
    schedules: Mapping[str, Schedule],
    errors: list[ConditionError],
    shared: dict[Any, Node],
) -> Node:
    if key in ("all", "any"):
        if not isinstance(value, list) or not value:
            raise ConditionError(f"'{key}' takes a non-empty list of conditions", here)
        children = tuple(
            _mapping(item, (*here, i), schedules, errors, shared) for i, item in enumerate(value)
        )
        return make_all(children) if key == "all" else make_any(children)
    if key == "not":
        if not isinstance(value, dict) or not value:
            raise ConditionError(
                "'not' takes one condition mapping, e.g. not: {state.tier: gold}", here
            )
        return make_not(_mapping(value, here, schedules, errors, shared))
    if not isinstance(value, str):
        raise ConditionError(f"'{key}' takes the name of a schedule", here)
    schedule = schedules.get(value)
    if schedule is None:
        from router.engine.problems import did_you_mean

        known = ", ".join(sorted(schedules)) or "none are defined"
        raise ConditionError(
            f"unknown schedule '{value}'{did_you_mean(value, schedules)} (schedules: {known})", here
        )
    token = (key, schedule.name)
    node = shared.get(token)
    if node is None:
        node = shared[token] = make_during(schedule, key == "outside")
    return node


def _path(path: str, matcher: Any, here: tuple[str | int, ...]) -> Leaf:
    namespace, *keys = path.split(".")
    if namespace not in NAMESPACES:
        from router.engine.problems import did_you_mean

        raise ConditionError(
            f"unknown namespace '{namespace}' in '{path}'{did_you_mean(namespace, NAMESPACES)}; "
            f"paths start with {', '.join(NAMESPACES)}",
            here,
            at_key=True,
        )
    if not all(_KEY.match(key) for key in keys):
        raise ConditionError(
            f"'{path}' is not a valid path: keys are letters, digits, '_' and '-', joined by '.'",
            here,
            at_key=True,
        )
    if matcher is None:
        raise ConditionError(
            f"'{path}: null' is ambiguous: write '{path}: {{exists: false}}' (not there) or "
            f"'{path}: {{empty: true}}' (missing, null or blank)",
            here,
        )
    if isinstance(matcher, list):
        return make_leaf(path, (_op("in", matcher, False, here),), False)
    if not isinstance(matcher, dict):
        return make_leaf(path, (_op("eq", matcher, False, here),), False)
    ignore_case = matcher.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise ConditionError("'ignore_case' takes true or false", (*here, "ignore_case"))
    ops: list[Op] = []
    for name, expected in matcher.items():
        if name in MODIFIERS:
            continue
        if name not in OPERATORS:
            from router.engine.problems import did_you_mean

            raise ConditionError(
                f"unknown operator '{name}'{did_you_mean(name, (*OPERATORS, *MODIFIERS))}",
                (*here, name),
                at_key=True,
            )
        ops.append(_op(name, expected, ignore_case, (*here, name)))
    if not ops:
        raise ConditionError(f"'{path}' has no operator (e.g. eq, in, gte, matches)", here)
    if ignore_case and not any(op.name in CASE_OPERATORS for op in ops):
        raise ConditionError(
            "'ignore_case' applies only to eq, ne, in, not_in, contains, starts_with, "
            "ends_with and matches",
            (*here, "ignore_case"),
            at_key=True,
        )
    return make_leaf(path, tuple(ops), ignore_case)


def _is_scalar(value: Any) -> bool:
    return type(value) in (str, int, float, bool)


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _op(name: str, expected: Any, ignore_case: bool, here: tuple[str | int, ...]) -> Op:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ConditionError(f"'{name}' takes {what}", here)

    check: Check
    if name in ("eq", "ne"):
        need(_is_scalar(expected), "one value (text, number or true/false); for several use 'in'")
        check = eq_check(expected, ignore_case)
        if name == "ne":
            check = _negate_present(check)
    elif name in ("in", "not_in"):
        need(
            isinstance(expected, list) and bool(expected) and all(map(_is_scalar, expected)),
            "a non-empty list of values, e.g. [refund, billing_dispute]",
        )
        check = in_check(expected, ignore_case)
        if name == "not_in":
            check = _negate_present(check)
    elif name in ("gt", "gte", "lt", "lte"):
        need(_is_number(expected), "a number, e.g. gte: 1000")
        compare: dict[str, Callable[[float, float], bool]] = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        check = _numeric(compare[name], expected)
    elif name == "between":
        need(
            isinstance(expected, list) and len(expected) == 2 and all(map(_is_number, expected)),
            "[low, high], two numbers, e.g. between: [18, 65]",
        )
        low, high = expected
        need(low <= high, "[low, high] with low not above high")

        def check(v: Any) -> bool:
            number = as_number(v)
            return number is not None and low <= number <= high

    elif name == "contains":
        need(_is_scalar(expected), "one value (a substring, or an item of a list)")
        check = _contains(expected, ignore_case)
    elif name in ("starts_with", "ends_with"):
        need(isinstance(expected, str), "text")
        check = _affix(expected, ignore_case, name == "starts_with")
    elif name == "matches":
        need(isinstance(expected, str), "a regular expression (RE2 syntax) as text")
        try:
            check = _matches(compile_pattern(expected, ignore_case))
        except ValueError as exc:
            raise ConditionError(str(exc), here) from None
    else:  # exists, empty
        need(type(expected) is bool, "true or false")
        if name == "exists":
            present = expected

            def check(v: Any) -> bool:
                return (v is not MISSING) is present

        else:
            wanted = expected

            def check(v: Any) -> bool:
                return is_empty(v) is wanted

    return Op(name, _frozen(expected), check)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def deferring(node: Node | None, last: Node | None) -> Node | None:
    """``node`` testing ``last``, one of its ``all``'s conditions, after the others."""
    if last is None or not isinstance(node, All):
        return node
    if not any(child is last for child in node.children):
        return node
    return make_all(node.children, last)


def signature(node: Node | None) -> Any:
    """A hashable form of a condition, equal for conditions written the same way."""
    if node is None:
        return ("always",)
    if isinstance(node, Leaf):
        return (
            "leaf",
            node.path,
            node.ignore_case,
            frozenset((o.name, repr(o.expected)) for o in node.ops),
        )
    if isinstance(node, All):
        return ("all", frozenset(signature(c) for c in node.children))
    if isinstance(node, AnyOf):
        return ("any", frozenset(signature(c) for c in node.children))
    if isinstance(node, Not):
        return ("not", signature(node.child))
    return ("during", node.schedule.name, node.outside)
