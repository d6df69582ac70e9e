"""A rule file's parsed YAML, checked part by part and compiled into a :class:`RuleSet`.

:func:`build_ruleset` takes what ``yamlsrc.read_yaml`` made of a file (plain data
plus the line and column of every key and value) and returns the ruleset, when
the file has no errors, with every problem pinned to ``file:line:col``. Each
part (a schedule, a rule, a test) is validated on its own, so a typo in rule 3
does not hide a bad regex in rule 40.
"""

from __future__ import annotations

import hashlib
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from router.engine.compile import ConditionError, Node, parse_when, signature
from router.engine.decide import Rule, RuleSet
from router.engine.model import (
    FACT_PATH_PATTERN,
    NAME_PATTERN,
    RouteModel,
    RuleFileModel,
    RuleModel,
    ScheduleModel,
    TestModel,
)
from router.engine.platforms import read_platforms
from router.engine.problems import Problem, did_you_mean
from router.engine.routes import ATTRIBUTE_LIMIT, LABEL_LIMIT, Route, Target
from router.engine.schedule import (
    Range,
    Schedule,
    ScheduleError,
    parse_date,
    parse_days,
    parse_hours,
    zone,
)
from router.engine.sensitive import DEFAULT_PATHS, PathError, SensitivePaths, parse_path
from router.engine.template import Template, TemplateError, parse_template
from router.engine.testing import TestCase
from router.engine.yamlsrc import Marks

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Built:
    """What one rule file compiled to.

    ``ruleset`` is ``None`` when the file has errors; ``name`` is the ruleset name it
    declares (its file name when it declares none) and ``tests`` how many test cases
    it lists, both known even then, so a caller can say whose tests did not run.
    """

    ruleset: RuleSet | None
    problems: tuple[Problem, ...]
    name: str
    tests: int


def build_ruleset(
    raw: bytes, data: Any, marks: Marks, filename: str, *, default_name: str
) -> Built:
    """Check and compile one rule file's data (``raw`` is its bytes: version, positions)."""
    builder = _Builder(filename, raw, data, marks)
    ruleset = builder.build(default_name)
    return Built(ruleset, tuple(builder.problems), builder.name or default_name, builder.test_count)


# --- pydantic error translation -----------------------------------------------------------


def _strip(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    annotation: Any = model
    for part in loc:
        annotation = _strip(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) is list and isinstance(part, int):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


_FRIENDLY = {
    "string_type": "expected text (put it in quotes if it looks like a number or true/false)",
    "int_type": "expected a whole number",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "dict_type": "expected a mapping (key: value)",
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
}


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# --- the builder --------------------------------------------------------------------------


class _Builder:
    def __init__(self, filename: str, raw: bytes, data: Any, marks: Marks) -> None:
        self.filename = filename
        self.raw = raw
        self.data = data
        self.marks = marks
        self.problems: list[Problem] = []
        self._lines: list[str] | None = None
        self._rule_locs: dict[str, Loc] = {}
        self._templates: dict[tuple[str, int], Template] = {}
        self._rendered: list[tuple[Loc, Template]] = []
        """Every label and attribute template with where it is written (for the warning
        about templates that render a sensitive path)."""
        self.name: str | None = None
        """The ruleset name the file declares (set by :meth:`build`, even with errors)."""
        self.test_count = 0
        """How many test cases the file lists, valid or not."""

    # problems

    def _add(self, where: tuple[int, int], message: str, severity: str = "error") -> None:
        self.problems.append(Problem(self.filename, where[0], where[1], severity, message))  # type: ignore[arg-type]

    def error(self, loc: Loc, message: str, *, at_key: bool = False, offset: int = 0) -> None:
        where = self.marks.key(loc) if at_key else self.marks.value(loc)
        if offset:
            where = (where[0], where[1] + offset + (1 if self._quoted(where) else 0))
        self._add(where, message)

    def warn(self, loc: Loc, message: str) -> None:
        self._add(self.marks.value(loc), message, "warning")

    def _quoted(self, where: tuple[int, int]) -> bool:
        if self._lines is None:
            self._lines = self.raw.decode("utf-8-sig", "replace").splitlines()
        line = self._lines[where[0] - 1] if where[0] - 1 < len(self._lines) else ""
        return line[where[1] - 1 : where[1]] in ("'", '"')

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def validate(self, model: type[BaseModel], value: Any, loc: Loc) -> Any:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self._pydantic_problem(model, loc, tuple(err["loc"]), err)
            return None

    def _pydantic_problem(self, model: type[BaseModel], base: Loc, loc: Loc, err: Any) -> None:
        kind = err["type"]
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            self.error((*base, *loc), f"key '{loc[-1]}': {err['msg']}", at_key=True)
            return
        if kind == "extra_forbidden":
            key = str(loc[-1])
            hint = did_you_mean(key, _fields_at(model, loc[:-1]))
            self.error((*base, *loc), f"unknown key '{key}'{hint}", at_key=True)
        elif kind == "missing":
            self.error((*base, *loc[:-1]), f"missing required key '{loc[-1]}'")
        else:
            message = _FRIENDLY.get(kind, err["msg"])
            if kind == "string_pattern_mismatch":
                message = "use letters, digits, '_', '-' and '.', starting with a letter or digit"
            self.error((*base, *loc), f"'{_dotted(loc)}': {message}")

    # building

    def build(self, default_name: str) -> RuleSet | None:
        data = self.data
        if not isinstance(data, dict):
            what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
            self.error(
                (),
                f"a rule file is a YAML mapping with 'rules:' and 'default:' (this one is {what})",
            )
            return None
        allowed = list(RuleFileModel.model_fields)
        for key in data:
            if key not in allowed:
                self.error((key,), f"unknown key '{key}'{did_you_mean(key, allowed)}", at_key=True)
        if "default" not in data:
            self.error((), "missing required key 'default' (the route when no rule matches)")

        name = self.name = self._name(data.get("ruleset"), default_name)
        sensitive = self._sensitive(data.get("sensitive", []))
        description = self._text(data, "description")
        tz_name = data.get("timezone", "UTC")
        tz = self._zone(tz_name, ("timezone",))
        schedules = self._schedules(data.get("schedules", {}), tz)
        rules = self._rules(data.get("rules", []), schedules)
        default = (
            self._route_at(data.get("default"), ("default",), "default")
            if "default" in data
            else None
        )
        fallback = (
            self._route_at(data["fallback"], ("fallback",), "fallback")
            if data.get("fallback") is not None
            else None
        )
        raw_tests = data.get("tests", [])
        self.test_count = len(raw_tests) if isinstance(raw_tests, list) else 0
        # Every rule id written in the file: a rule with a broken 'when' is still a rule
        # its tests may name (the broken condition is the problem, not the tests).
        tests = self._tests(raw_tests, set(self._rule_locs), bool(schedules))
        show = self._show(data.get("show", []))
        self._unreachable(rules)
        self._rendering_sensitive(sensitive)
        platforms, platform_problems = read_platforms(data, self.marks, self.filename)
        self.problems.extend(platform_problems)
        self.problems.sort(key=lambda p: (p.line, p.col))
        if self.failed or default is None or tz is None:
            return None
        return RuleSet(
            name=name,
            version="sha256:" + hashlib.sha256(self.raw).hexdigest(),
            source=self.filename,
            description=description,
            timezone=str(tz_name),
            tz=tz,
            rules=tuple(rules),
            default=default,
            fallback=fallback,
            warnings=tuple(p for p in self.problems if p.severity == "warning"),
            tests=tuple(tests),
            show=show,
            sensitive=sensitive,
            platforms=platforms,
        )

    def _sensitive(self, raw: Any) -> SensitivePaths:
        """The file's ``sensitive:`` paths (with the built-in ones), each checked where it
        is written."""
        if not isinstance(raw, list):
            self.error(
                ("sensitive",),
                "'sensitive' is a list of paths, e.g. [state.card_number, context.sip.*]",
            )
            return DEFAULT_PATHS
        good: list[str] = []
        for i, text in enumerate(raw):
            if not isinstance(text, str):
                self.error(("sensitive", i), f"'sensitive[{i}]': {_FRIENDLY['string_type']}")
                continue
            try:
                parse_path(text)
            except PathError as exc:
                self.error(("sensitive", i), str(exc))
                continue
            good.append(text)
        return SensitivePaths.compile(good)

    def _rendering_sensitive(self, sensitive: SensitivePaths) -> None:
        """Warn at each label or attribute that shows a sensitive value: the route answer
        carries it to the platform and the agent (sometimes intended, never silent)."""
        for loc, template in self._rendered:
            for path in template.paths:
                if sensitive.covers(path):
                    what = "label" if loc[-1] == "label" else f"attribute '{loc[-1]}'"
                    self.warn(
                        loc,
                        f"the {what} shows the sensitive path '{path}': the route answer "
                        "carries its value to the platform and the agent (decision records "
                        "and logs show '***'); remove it if the agent need not see it",
                    )
                    break

    def _name(self, value: Any, default_name: str) -> str:
        if value is None:
            if not re.match(NAME_PATTERN, default_name):
                self.error(
                    (),
                    f"file name '{default_name}' is not a valid ruleset name; "
                    "add 'ruleset: <name>'",
                )
            return default_name
        if not isinstance(value, str) or not re.match(NAME_PATTERN, value):
            self.error(("ruleset",), "'ruleset' is a name: letters, digits, '_', '-' and '.'")
            return default_name
        return value

    def _text(self, data: Mapping[str, Any], key: str) -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            self.error((key,), f"'{key}': {_FRIENDLY['string_type']}")
            return None
        return value

    def _show(self, raw: Any) -> tuple[str, ...]:
        """The ``show:`` paths (for the agent card), each ``namespace.key[.key…]``."""
        if not isinstance(raw, list):
            self.error(("show",), "'show' is a list of fact paths, e.g. [state.customer_tier]")
            return ()
        paths: list[str] = []
        for i, path in enumerate(raw):
            if not isinstance(path, str) or not re.fullmatch(FACT_PATH_PATTERN, path):
                self.error(
                    ("show", i),
                    f"'show[{i}]' is a fact path 'namespace.key[.key…]' over handoff, state, "
                    "conversation or context, e.g. state.customer_tier",
                )
            elif path not in paths:
                paths.append(path)
        return tuple(paths)

    def _zone(self, name: Any, loc: Loc) -> ZoneInfo | None:
        if not isinstance(name, str):
            self.error(loc, "'timezone' is an IANA time zone name, e.g. Europe/London")
            return None
        try:
            return zone(name)
        except ScheduleError as exc:
            self.error(loc, str(exc))
            return None

    def _schedules(self, raw: Any, tz: ZoneInfo | None) -> dict[str, Schedule]:
        if not isinstance(raw, dict):
            self.error(("schedules",), "'schedules' is a mapping of schedule name → schedule")
            return {}
        out: dict[str, Schedule] = {}
        for name, body in raw.items():
            loc: Loc = ("schedules", name)
            model = self.validate(ScheduleModel, body, loc)
            if model is None:
                continue
            schedule_tz = self._zone(model.timezone, (*loc, "timezone")) if model.timezone else tz
            # Keep a schedule with a bad zone so rules naming it don't report it unknown too.
            schedule_tz = schedule_tz or ZoneInfo("UTC")
            weekly: list[list[Range]] = [[] for _ in range(7)]
            for days, hours in model.weekly.items():
                try:
                    day_numbers = parse_days(days)
                except ScheduleError as exc:
                    self.error((*loc, "weekly", days), str(exc), at_key=True)
                    continue
                ranges = self._hours(hours, (*loc, "weekly", days))
                for day in day_numbers:
                    weekly[day].extend(ranges)
            closed = set()
            for i, text in enumerate(model.closed):
                try:
                    closed.add(parse_date(text))
                except ScheduleError as exc:
                    self.error((*loc, "closed", i), str(exc))
            special = {}
            for text, hours in model.open.items():
                try:
                    special[parse_date(text)] = tuple(self._hours(hours, (*loc, "open", text)))
                except ScheduleError as exc:
                    self.error((*loc, "open", text), str(exc), at_key=True)
            out[name] = Schedule(
                name,
                schedule_tz,
                tuple(tuple(sorted(r)) for r in weekly),
                frozenset(closed),
                special,
            )
        return out

    def _hours(self, hours: Iterable[str], loc: Loc) -> list[Range]:
        ranges = []
        for i, text in enumerate(hours):
            try:
                ranges.append(parse_hours(text))
            except ScheduleError as exc:
                self.error((*loc, i), str(exc))
        return ranges

    def _rules(self, raw: Any, schedules: Mapping[str, Schedule]) -> list[Rule]:
        if not isinstance(raw, list):
            self.error(("rules",), "'rules' is a list of rules (each starts with '- id: …')")
            return []
        rules: list[Rule] = []
        first_line: dict[str, int] = {}
        shared: dict[Any, Node] = {}  # conditions written alike compile once (compile.py)
        for i, body in enumerate(raw):
            loc: Loc = ("rules", i)
            model: RuleModel | None = self.validate(RuleModel, body, loc)
            node, errors = parse_when(
                body.get("when") if isinstance(body, dict) else None, schedules, shared
            )
            for problem in errors:
                self._condition_problem(problem, (*loc, "when"))
            rule_id = body.get("id") if isinstance(body, dict) else None
            line = self.marks.value((*loc, "id"))[0]
            duplicate = isinstance(rule_id, str) and rule_id in first_line
            if isinstance(rule_id, str) and duplicate:
                first = first_line[rule_id]
                self.error(
                    (*loc, "id"), f"duplicate rule id '{rule_id}' (first used on line {first})"
                )
            elif isinstance(rule_id, str):
                first_line[rule_id] = line
                self._rule_locs[rule_id] = (*loc, "id")
            if model is None:
                continue
            route = self._route(model.route, (*loc, "route"), model.id)
            if route is None or errors or duplicate:
                continue
            rules.append(Rule(model.id, model.description, node, route, line))
        return rules

    def _condition_problem(self, problem: ConditionError, base: Loc) -> None:
        self.error((*base, *problem.path), str(problem), at_key=problem.at_key)

    def _route_at(self, raw: Any, loc: Loc, owner: str) -> Route | None:
        model = self.validate(RouteModel, raw, loc)
        return None if model is None else self._route(model, loc, owner)

    def _route(self, model: RouteModel, loc: Loc, owner: str) -> Route | None:
        errors_before = len(self.problems)
        base = self._parts(model, loc, None)
        if not model.split:
            if not model.queue:
                self.error(loc, "a route needs a 'queue' (or a 'split' between queues)")
                return None
            if len(self.problems) > errors_before:
                return None
            return Route(owner, Target(model.queue, *base))
        total = sum(entry.weight for entry in model.split)
        if total != 100:
            self.error((*loc, "split"), f"split weights add up to {total}, not 100")
        shares: list[tuple[int, Target]] = []
        upper = 0
        for i, entry in enumerate(model.split):
            parts = self._parts(entry, (*loc, "split", i), base)
            upper += entry.weight
            queue = entry.queue or model.queue
            if not queue:
                self.error((*loc, "split", i), "this share has no 'queue' (and the route has none)")
                continue
            shares.append((upper, Target(queue, *parts)))
        if len(self.problems) > errors_before:
            return None
        return Route(owner, None, tuple(shares))

    def _parts(
        self, own: Any, loc: Loc, base: tuple[Any, Any, Any, Any] | None
    ) -> tuple[Template | None, int | None, tuple[str, ...], tuple[tuple[str, Template], ...]]:
        """Label, priority, skills and attributes of a route or split share.

        A share's missing fields come from ``base`` (its route's, already parsed).
        """
        label = (
            None if own.label is None else self._template(own.label, (*loc, "label"), LABEL_LIMIT)
        )
        if label is not None:
            self._rendered.append(((*loc, "label"), label))
        attributes: list[tuple[str, Template]] = []
        for name, text in (own.attributes or {}).items():
            template = self._template(text, (*loc, "attributes", name), ATTRIBUTE_LIMIT)
            if template is not None:
                attributes.append((name, template))
                self._rendered.append(((*loc, "attributes", name), template))
        skills = tuple(own.skills) if own.skills is not None else None
        if base is None:
            return label, own.priority, skills or (), tuple(attributes)
        return (
            label if own.label is not None else base[0],
            own.priority if own.priority is not None else base[1],
            skills if skills is not None else base[2],
            tuple(attributes) if own.attributes is not None else base[3],
        )

    def _template(self, text: str, loc: Loc, limit: int) -> Template | None:
        """A label or attribute template; the same text in many routes parses once."""
        template = self._templates.get((text, limit))
        if template is not None:
            return template
        try:
            template = self._templates[text, limit] = parse_template(text, limit)
        except TemplateError as exc:
            self.error(loc, str(exc), offset=exc.offset)
            return None
        return template

    def _tests(self, raw: Any, rule_ids: set[str], clocked: bool) -> list[TestCase]:
        if not isinstance(raw, list):
            self.error(("tests",), "'tests' is a list of test cases (each starts with '- name: …')")
            return []
        tests: list[TestCase] = []
        names: dict[str, int] = {}
        for i, body in enumerate(raw):
            loc: Loc = ("tests", i)
            model: TestModel | None = self.validate(TestModel, body, loc)
            if model is None:
                continue
            line = self.marks.value((*loc, "name"))[0]
            if model.name in names:
                self.error(
                    (*loc, "name"),
                    f"duplicate test name '{model.name}' (first on line {names[model.name]})",
                )
            names[model.name] = line
            expect = model.expect.model_dump(include=model.expect.model_fields_set)
            if expect.get("rule") is not None and expect["rule"] not in rule_ids:
                hint = did_you_mean(expect["rule"], rule_ids)
                self.error((*loc, "expect", "rule"), f"unknown rule '{expect['rule']}'{hint}")
            at = None
            if model.at is None and clocked:
                self.warn(
                    (*loc, "name"),
                    f"test '{model.name}' has no 'at': with schedules in this file its result "
                    'depends on when it runs (add e.g. at: "2026-11-23T10:00:00")',
                )
            if model.at is not None:
                try:
                    at = datetime.fromisoformat(model.at)
                except ValueError:
                    self.error(
                        (*loc, "at"),
                        f"'at' should be an ISO 8601 time such as 2026-11-23T10:00:00, "
                        f"not '{model.at}'",
                    )
            facts = {
                namespace: getattr(model.input, namespace)
                for namespace in model.input.model_fields_set
            }
            tests.append(
                TestCase(
                    name=model.name,
                    line=line,
                    conversation_id=model.conversation_id
                    if model.conversation_id is not None
                    else (None if model.shared_id else model.name),
                    shared_id=model.shared_id,
                    at=at,
                    facts=facts,
                    expect=expect,
                )
            )
        return tests

    def _unreachable(self, rules: list[Rule]) -> None:
        catch_all: Rule | None = None
        seen: dict[Any, Rule] = {}
        for rule in rules:
            loc = self._rule_loc(rule)
            if catch_all is not None:
                self.warn(
                    loc,
                    f"rule '{rule.id}' can never match: rule '{catch_all.id}' (line "
                    f"{catch_all.line}) above it has no conditions and matches every call",
                )
                continue
            key = signature(rule.when)
            earlier = seen.get(key)
            if earlier is not None:
                self.warn(
                    loc,
                    f"rule '{rule.id}' can never match: its 'when' is the same as rule "
                    f"'{earlier.id}' (line {earlier.line})",
                )
            else:
                seen[key] = rule
            if rule.when is None:
                catch_all = rule

    def _rule_loc(self, rule: Rule) -> Loc:
        return self._rule_locs.get(rule.id, ("rules",))
