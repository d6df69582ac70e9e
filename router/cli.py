"""The ``router`` command line: check, test, explain, schema and serve (contract §4).

Exit codes: 0 success, 1 invalid rules or failing tests, 2 usage errors.
Human-readable text by default; ``--format json`` for CI systems.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from router.engine import (
    FileLoad,
    Problem,
    RuleSet,
    TestResult,
    load_path,
    rule_file_schema,
    run_tests,
    unreached_rules,
)
from router.sensitive import mask_trace

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
INPUT_KEYS = ("handoff", "state", "conversation", "context", "conversation_id", "shared_id")


class UsageError(Exception):
    """A mistake in how the command was called; exit 2 with one line."""


def _default_rules() -> Path:
    return Path(os.environ.get("ROUTER_RULES") or "./rules")


def _dump(document: Any, out: TextIO) -> None:
    out.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")


def _counts(problems: Sequence[Problem]) -> tuple[int, int]:
    errors = sum(p.severity == "error" for p in problems)
    return errors, len(problems) - errors


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- check ------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    loaded = load_path(args.path)
    rulesets, problems = loaded.rulesets, loaded.problems
    errors, warnings = _counts(problems)
    if args.format == "json":
        _dump({"ok": errors == 0, "problems": [p.as_dict() for p in problems]}, out)
    else:
        for problem in problems:
            out.write(f"{problem}\n")
        if errors:
            out.write(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}\n")
        else:
            rules = sum(len(r.rules) for r in rulesets.values())
            names = ", ".join(sorted(rulesets))
            out.write(
                f"ok: {_plural(len(rulesets), 'ruleset')} ({names}), {_plural(rules, 'rule')}"
                f"{', ' + _plural(warnings, 'warning') if warnings else ''}\n"
            )
    return EXIT_FAILED if errors else EXIT_OK


# --- test -------------------------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class NotRun:
    """A rule file whose tests did not run because it does not load."""

    file: str
    ruleset: str | None
    tests: int | None  # None: unknown, the file is not readable YAML
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ruleset": self.ruleset,
            "tests": self.tests,
            "reason": self.reason,
        }


def _not_run(file: FileLoad) -> NotRun:
    errors = file.errors
    if not errors:
        reason = "it does not load"
    elif len(errors) == 1:
        reason = errors[0].message
    else:
        reason = f"{len(errors)} errors (first: line {errors[0].line}: {errors[0].message})"
    return NotRun(str(file.path), file.name, file.tests, reason)


def _closing_line(passed: int, failed: int, not_run: Sequence[NotRun]) -> str:
    """``N passed, N failed`` (CI reads this prefix), then what did not run, if anything."""
    line = f"{passed} passed, {failed} failed"
    if not_run:
        line += f", {sum(n.tests or 0 for n in not_run)} not run"
        uncounted = sum(n.tests is None for n in not_run)
        if uncounted:
            line += f" (and the tests of {_plural(uncounted, 'file')} that could not be read)"
    return line


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    loaded = load_path(args.path)
    problems = loaded.problems
    results: list[TestResult] = []
    unreached: list[tuple[RuleSet, str]] = []
    for ruleset in loaded.rulesets.values():
        outcome = run_tests(ruleset)
        results.extend(outcome)
        unreached.extend((ruleset, rule) for rule in unreached_rules(ruleset, outcome))
    not_run = [_not_run(file) for file in loaded.files if file.ruleset is None and file.tests != 0]
    passed = sum(r.ok for r in results)
    failed = len(results) - passed
    if args.format == "json":
        document: dict[str, Any] = {
            "passed": passed,
            "failed": failed,
            "not_run": sum(n.tests or 0 for n in not_run),
            "results": [r.as_dict() for r in results],
            "not_run_files": [n.as_dict() for n in not_run],
        }
        if args.coverage or args.fail_unreached:
            document["unreached"] = [{"ruleset": rs.name, "rule": rule} for rs, rule in unreached]
        if problems:
            document["problems"] = [p.as_dict() for p in problems]
        _dump(document, out)
    else:
        for problem in problems:
            out.write(f"{problem}\n")
        sources = {rs.name: rs.source for rs in loaded.rulesets.values()}
        for result in results:
            if args.verbose and result.ok:
                out.write(f"ok    {result.ruleset}: {result.name}\n")
            if result.ok:
                continue
            out.write(
                f"FAIL  {result.ruleset}: {result.name} ({sources[result.ruleset]}:{result.line})\n"
            )
            for field, expected in result.expected.items():
                actual = result.actual.get(field)
                if actual != expected:
                    out.write(f"        {field}: expected {_show(expected)}, got {_show(actual)}\n")
        for skipped in not_run:
            what = "its tests" if skipped.tests is None else _plural(skipped.tests, "test")
            out.write(
                f"NOT RUN  {skipped.file}: {what} did not run, the file does not load: "
                f"{skipped.reason}\n"
            )
        if args.coverage or args.fail_unreached:
            if unreached:
                out.write("rules no test reaches:\n")
                for ruleset, rule_id in unreached:
                    line = next(r.line for r in ruleset.rules if r.id == rule_id)
                    out.write(f"  {ruleset.name}: {rule_id} ({ruleset.source}:{line})\n")
            else:
                out.write("every rule is reached by a test\n")
        out.write(_closing_line(passed, failed, not_run) + "\n")
    if loaded.errors or failed or (args.fail_unreached and unreached):
        return EXIT_FAILED
    return EXIT_OK


# --- explain ----------------------------------------------------------------------------


def _read_input(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read {path}: {reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: expected a JSON object with any of {', '.join(INPUT_KEYS)}")
    for key, value in document.items():
        if key not in INPUT_KEYS:
            raise UsageError(
                f"{path}: unknown key '{key}' (expected any of {', '.join(INPUT_KEYS)})"
            )
        if key in ("conversation_id", "shared_id"):
            if value is not None and not isinstance(value, str):
                raise UsageError(f"{path}: '{key}' must be a string")
        elif value is not None and not isinstance(value, dict):
            raise UsageError(f"{path}: '{key}' must be an object (or null: that source failed)")
    return document


def _parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--at: '{text}' is not an ISO 8601 time (e.g. 2026-11-23T10:00:00)"
        ) from None


def _describe_failure(condition: dict[str, Any] | None) -> str:
    if condition is None:
        return ""
    if condition.get("op") == "any":
        branches = [_describe_failure(b) for b in condition.get("branches", []) if b]
        return "none of: " + "; ".join(branches)
    where = condition["path"] or ""
    actual = "missing" if condition.get("missing") else _show(condition.get("actual"))
    if condition.get("reason") and condition["op"] != "not":
        actual = condition["reason"]
    elif condition["op"] == "not":
        return f"not: {condition.get('reason')}"
    elif condition["op"] in ("during", "outside"):
        return f"{condition['op']} {condition['expected']}: {condition['actual']}"
    return f"{where} {condition['op']} {_show(condition['expected'])}: got {actual}".strip()


def _named_ruleset(path: Path, name: str) -> RuleSet | None:
    """The ruleset ``name`` at ``path``, whatever is wrong with the other files there.

    Prints the errors of the files that declare ``name`` (or might: files that are not
    readable YAML) and returns ``None`` when it does not load; a usage error when no file
    declares it.
    """
    loaded = load_path(path)
    declaring = [file for file in loaded.files if file.name == name]
    ruleset = loaded.rulesets.get(name)
    if ruleset is not None and len(declaring) == 1:
        return ruleset
    if not loaded.files:  # no such path, or no rule files in it
        for problem in loaded.problems:
            sys.stderr.write(f"{problem}\n")
        return None
    unreadable = [file for file in loaded.files if file.name is None]
    for file in declaring or unreadable:
        for problem in file.errors:
            sys.stderr.write(f"{problem}\n")
    if declaring:
        sys.stderr.write(f"router explain: ruleset '{name}' does not load (errors above)\n")
        return None
    known = ", ".join(sorted({f.name for f in loaded.files if f.name})) or "none"
    if unreadable:
        sys.stderr.write(
            f"router explain: no ruleset '{name}' in {path} (rulesets: {known}); "
            f"{_plural(len(unreadable), 'file')} could not be read and may define it "
            "(errors above)\n"
        )
        return None
    raise UsageError(f"no ruleset '{name}' in {path} (rulesets: {known})")


def cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    document = _read_input(args.input)
    at = _parse_at(args.at)
    ruleset = _named_ruleset(args.rules, args.ruleset)
    if ruleset is None:
        return EXIT_FAILED
    facts = {k: v for k, v in document.items() if k not in ("conversation_id", "shared_id")}
    conversation_id, shared_id = document.get("conversation_id"), document.get("shared_id")
    started = time.perf_counter()
    decision = ruleset.explain(facts, conversation_id=conversation_id, shared_id=shared_id, at=at)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    # As POST /v1/explain: sensitive values show as "***" (rules.md, "Sensitive facts").
    shown = ruleset.mask_rendering(
        decision, facts, conversation_id=conversation_id, shared_id=shared_id
    )
    decision = dataclasses.replace(
        shown, trace=tuple(mask_trace(decision.trace or (), ruleset.sensitive))
    )
    # The same object POST /v1/explain answers; facts given in the file count as inline.
    sources = {name: "inline" if value is not None else "error" for name, value in facts.items()}
    body = {
        "conversation_id": conversation_id,
        "shared_id": shared_id,
        **decision.to_dict(),
        "sources": sources,
        "elapsed_ms": elapsed_ms,
    }
    if args.format == "json":
        _dump(body, out)
        return EXIT_OK
    out.write(f"ruleset   {ruleset.name} ({ruleset.version[:19]}…, {ruleset.source})\n")
    out.write(f"queue     {decision.queue}\n")
    out.write(f"label     {decision.label if decision.label is not None else '-'}\n")
    out.write(
        f"rule      {decision.rule or '-'}  (outcome: {decision.outcome}"
        f"{', degraded' if decision.degraded else ''})\n"
    )
    if decision.priority is not None:
        out.write(f"priority  {decision.priority}\n")
    if decision.skills:
        out.write(f"skills    {', '.join(decision.skills)}\n")
    for name, value in decision.attributes.items():
        out.write(f"attribute {name} = {value}\n")
    out.write("trace\n")
    for entry in decision.trace or ():
        mark = "✓" if entry["matched"] else "?" if entry["result"] == "unknown" else "✗"
        tail = "  ← selected" if entry["selected"] else ""
        if entry["matched"] and not entry["selected"]:
            tail = "  (matches, but an earlier rule won)"
        reason = _describe_failure(entry["condition"])
        reason = f": {reason}" if reason else ""
        out.write(f"  {mark} {entry['rule']} (line {entry['line']}){tail}{reason}\n")
    if decision.rule is None:
        out.write(f"  → no rule matched: {decision.outcome} route\n")
    return EXIT_OK


# --- replay -----------------------------------------------------------------------------


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    """Decide recorded decisions again with the candidate rules; report what would change."""
    import asyncio
    from datetime import UTC

    from router.records import Replay, render_text
    from router.records.sources import (
        SourceError,
        is_store_url,
        parse_duration,
        replay_file,
        replay_store,
    )

    try:
        since = None if args.since is None else datetime.now(UTC) - parse_duration(args.since)
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    source: str = args.source
    if not is_store_url(source) and not Path(source).is_file():
        raise UsageError(f"--from {source}: no such record file (or a redis:// store URL)")
    loaded = load_path(args.candidate)
    rulesets, problems = loaded.rulesets, loaded.problems
    errors, _ = _counts(problems)
    if errors:
        for problem in problems:
            sys.stderr.write(f"{problem}\n")
        sys.stderr.write(f"router replay: the candidate does not pass router check ({errors})\n")
        return EXIT_FAILED
    replay = Replay(rulesets, since=since)
    try:
        if is_store_url(source):
            cutoff = None if since is None else since.timestamp()
            asyncio.run(replay_store(replay, source, since=cutoff))
        else:
            replay_file(replay, Path(source))
    except SourceError as exc:
        raise UsageError(f"--from: {exc}") from None
    report = replay.report()
    for skipped in report.unreadable:
        sys.stderr.write(f"{skipped.where}: skipped: {skipped.reason}\n")
    if report.unreadable_count > len(report.unreadable):
        sys.stderr.write(
            f"… and {report.unreadable_count - len(report.unreadable)} more unreadable records\n"
        )
    if args.format == "json":
        _dump(report.to_dict(), out)
    else:
        out.write(render_text(report))
    return EXIT_OK


# --- schema / serve ---------------------------------------------------------------------


def cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    _dump(rule_file_schema(), out)
    return EXIT_OK


def _worker_count(text: str) -> int:
    """``--workers``: a whole number of at least 1 (argparse turns the error into exit 2)."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {count}")
    return count


def cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from router.settings import SettingsError, load_settings

    flags = (
        ("rules", args.rules),
        ("host", args.host),
        ("port", args.port),
        ("workers", args.workers),
    )
    try:
        settings = load_settings(**{name: value for name, value in flags if value is not None})
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    from router.serve import run

    return run(settings)


# --- entry point ------------------------------------------------------------------------


class _Command(argparse.ArgumentParser):
    """A subcommand's parser; ``before_help`` fills in help that is costly to build.

    ``router serve --help`` lists every setting with its default, read from the
    Settings model; importing it is left until that help is shown.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.before_help: Callable[[], None] | None = None

    def format_help(self) -> str:
        if self.before_help is not None:
            self.before_help()
            self.before_help = None
        return super().format_help()


def _shown(value: Any) -> str:
    """A setting's default as an operator would write it."""
    if isinstance(value, Path):
        text = str(value)
        return text if value.is_absolute() or text.startswith(".") else f"./{text}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def settings_defaults() -> dict[str, str]:
    """Every environment variable ``router serve`` reads, with its default, in model order."""
    from router.settings import Settings

    return {
        field.alias or name: _shown(field.get_default(call_default_factory=True))
        for name, field in Settings.model_fields.items()
    }


def _settings_epilog() -> str:
    defaults = settings_defaults()
    width = max(map(len, defaults)) + 2
    lines = [f"  {name.ljust(width)}{value}" for name, value in defaults.items()]
    return (
        "environment (read once at start; the flags above override their variables):\n"
        f"  {'VARIABLE'.ljust(width)}DEFAULT\n" + "\n".join(lines) + "\n\n"
        "A bad value stops the start with one line naming the variable. What each one\n"
        "means: README.md, 'Configuration'."
    )


PATH_HELP = "rules folder or file (default: $ROUTER_RULES, else ./rules)"
FORMAT_HELP = "output: text for people, json for CI and scripts (default: text)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="router",
        description="Route PolyAI voice-agent handoffs to contact-centre queues with YAML rules.",
        epilog="Run 'router COMMAND --help' for a command's options and defaults.",
    )
    from router import __api_version__, __version__

    parser.add_argument(
        "--version",
        action="version",
        version=f"router {__version__} (API contract {__api_version__})",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Command
    )

    def with_path(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("path", nargs="?", type=Path, default=None, help=PATH_HELP)
        sub.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)

    check = commands.add_parser(
        "check",
        help="validate rule files",
        description="Validate rule files: every problem of every file, one line each as\n"
        "FILE:LINE:COL: SEVERITY: MESSAGE, then a summary.\n\n"
        "exit status: 0 valid (warnings allowed), 1 any error, 2 usage error",
    )
    with_path(check)
    check.set_defaults(handler=cmd_check)

    test = commands.add_parser(
        "test",
        help="run every ruleset's tests",
        description="Run the tests: of every rule file, each failure with expected against\n"
        "actual, and a closing line 'N passed, N failed' (', N not run' when a file\n"
        "does not load, so its tests could not run).\n\n"
        "exit status: 0 all pass, 1 any test fails or any file does not load, 2 usage error",
    )
    with_path(test)
    test.add_argument(
        "--coverage", action="store_true", help="also list rules no test reaches (default: off)"
    )
    test.add_argument(
        "--fail-unreached",
        action="store_true",
        help="fail (exit 1) when a rule is reached by no test; implies --coverage (default: off)",
    )
    test.add_argument(
        "-v", "--verbose", action="store_true", help="list passing tests too (default: off)"
    )
    test.set_defaults(handler=cmd_test)

    explain = commands.add_parser(
        "explain",
        help="explain the decision for one input",
        description="Explain one decision: the route a ruleset picks for one input and, for\n"
        "every rule in order, whether it matched and the first condition that failed.\n"
        "Only the named ruleset has to load; other files in the folder do not matter.\n\n"
        "INPUT.json is one object with any of handoff, state, conversation, context\n"
        "(null: that source failed) and optionally conversation_id / shared_id.\n\n"
        "exit status: 0 explained, 1 the ruleset does not load, 2 usage error",
    )
    explain.add_argument("--ruleset", required=True, metavar="NAME", help="ruleset name (required)")
    explain.add_argument("--rules", type=Path, default=None, metavar="PATH", help=PATH_HELP)
    explain.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="the clock, ISO 8601; without an offset, in the ruleset's timezone (default: now)",
    )
    explain.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    explain.add_argument("input", metavar="INPUT.json", help="the input (- for standard input)")
    explain.set_defaults(handler=cmd_explain)

    replay = commands.add_parser(
        "replay",
        help="decide recorded decisions again with candidate rules: what would change",
        description="Replay: decide every recorded decision again with the CANDIDATE rules\n"
        "(a file or folder), at its recorded instant and with its recorded conversation id,\n"
        "and report how many would go elsewhere, grouped by old and new rule and queue.\n"
        "Decisions a value that was not recorded (a sensitive one) could change are\n"
        "uncertain. Records of other rulesets, and unreadable ones, are skipped (said on\n"
        "standard error).\n\n"
        "exit status: 0 replayed, 1 the candidate does not pass router check, 2 usage error",
    )
    replay.add_argument("candidate", type=Path, metavar="CANDIDATE", help="rules folder or file")
    replay.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="a record file (ROUTER_RECORD_FILE) or a store URL (redis://…) (required)",
    )
    replay.add_argument(
        "--since",
        default=None,
        metavar="DURATION",
        help="only records this recent: 90s, 15m, 24h, 7d, 1h30m (default: all)",
    )
    replay.add_argument("--format", choices=("text", "json"), default="text", help=FORMAT_HELP)
    replay.set_defaults(handler=cmd_replay)

    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of rule files",
        description="Print the JSON Schema (draft 2020-12) of rule files on standard output,\n"
        "for editor completion, hover docs and validation, e.g.:\n"
        "  router schema > rules.schema.json\n\n"
        "exit status: 0",
    )
    schema.set_defaults(handler=cmd_schema)

    serve = commands.add_parser(
        "serve",
        help="run the routing service",
        description="Run the routing service: the HTTP API on HOST:PORT, with the rules at\n"
        "PATH reloaded when they change. Settings come from the environment (below);\n"
        "each flag overrides its variable. SIGTERM drains in-flight requests.\n\n"
        "exit status: 0 clean shutdown, 2 a bad setting or usage error",
    )
    rules = serve.add_argument("--rules", default=None, metavar="PATH", help="rules folder or file")
    host = serve.add_argument("--host", default=None, help="address to listen on")
    port = serve.add_argument("--port", type=int, default=None, help="port to listen on")
    workers = serve.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        metavar="N",
        help="processes serving the port; more than 1 needs ROUTER_STORE=redis://…",
    )

    def describe_settings() -> None:
        defaults = settings_defaults()
        for action, variable in (
            (rules, "ROUTER_RULES"),
            (host, "ROUTER_HOST"),
            (port, "ROUTER_PORT"),
            (workers, "ROUTER_WORKERS"),
        ):
            action.help = f"{action.help} (default: ${variable}, else {defaults[variable]})"
        serve.epilog = _settings_epilog()

    serve.before_help = describe_settings
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "path", "unset") is None:
        args.path = _default_rules()
    if getattr(args, "rules", "unset") is None and args.command == "explain":
        args.rules = _default_rules()
    try:
        code: int = args.handler(args, sys.stdout)
    except UsageError as exc:
        sys.stderr.write(f"router {args.command}: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK
    sys.stdout.flush()
    return code


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
