"""The ``router`` command line: check, test, explain, schema and serve (contract §4).

Exit codes: 0 success, 1 invalid rules or failing tests, 2 usage errors.
Human-readable text by default; ``--format json`` for CI systems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from router.engine.decide import RuleSet
from router.engine.load import load_path
from router.engine.problems import Problem
from router.engine.schema import rule_file_schema
from router.engine.testing import TestResult, run_tests, unreached_rules

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
    rulesets, problems = load_path(args.path)
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


def cmd_test(args: argparse.Namespace, out: TextIO) -> int:
    rulesets, problems = load_path(args.path)
    errors, _ = _counts(problems)
    results: list[TestResult] = []
    unreached: list[tuple[RuleSet, str]] = []
    for ruleset in rulesets.values():
        outcome = run_tests(ruleset)
        results.extend(outcome)
        unreached.extend((ruleset, rule) for rule in unreached_rules(ruleset, outcome))
    passed = sum(r.ok for r in results)
    failed = len(results) - passed
    if args.format == "json":
        document: dict[str, Any] = {
            "passed": passed,
            "failed": failed,
            "results": [r.as_dict() for r in results],
        }
        if args.coverage or args.fail_unreached:
            document["unreached"] = [{"ruleset": rs.name, "rule": rule} for rs, rule in unreached]
        if problems:
            document["problems"] = [p.as_dict() for p in problems]
        _dump(document, out)
    else:
        for problem in problems:
            out.write(f"{problem}\n")
        sources = {rs.name: rs.source for rs in rulesets.values()}
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
        if args.coverage or args.fail_unreached:
            if unreached:
                out.write("rules no test reaches:\n")
                for ruleset, rule_id in unreached:
                    line = next(r.line for r in ruleset.rules if r.id == rule_id)
                    out.write(f"  {ruleset.name}: {rule_id} ({ruleset.source}:{line})\n")
            else:
                out.write("every rule is reached by a test\n")
        out.write(f"{passed} passed, {failed} failed\n")
    if errors or failed or (args.fail_unreached and unreached):
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


def cmd_explain(args: argparse.Namespace, out: TextIO) -> int:
    document = _read_input(args.input)
    at = _parse_at(args.at)
    rulesets, problems = load_path(args.rules)
    errors, _ = _counts(problems)
    if errors:
        for problem in problems:
            sys.stderr.write(f"{problem}\n")
        return EXIT_FAILED
    ruleset = rulesets.get(args.ruleset)
    if ruleset is None:
        known = ", ".join(sorted(rulesets)) or "none"
        raise UsageError(f"no ruleset '{args.ruleset}' in {args.rules} (rulesets: {known})")
    facts = {k: v for k, v in document.items() if k not in ("conversation_id", "shared_id")}
    conversation_id, shared_id = document.get("conversation_id"), document.get("shared_id")
    started = time.perf_counter()
    decision = ruleset.explain(facts, conversation_id=conversation_id, shared_id=shared_id, at=at)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
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
    rulesets, problems = load_path(args.candidate)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="router",
        description="Route PolyAI voice-agent handoffs to contact-centre queues with YAML rules.",
    )
    from router import __version__

    parser.add_argument("--version", action="version", version=f"router {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_path(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "path",
            nargs="?",
            type=Path,
            default=None,
            help="rules folder or file (default: $ROUTER_RULES, else ./rules)",
        )
        sub.add_argument("--format", choices=("text", "json"), default="text")

    check = commands.add_parser("check", help="validate rule files")
    with_path(check)
    check.set_defaults(handler=cmd_check)

    test = commands.add_parser("test", help="run every ruleset's tests")
    with_path(test)
    test.add_argument("--coverage", action="store_true", help="list rules no test reaches")
    test.add_argument(
        "--fail-unreached",
        action="store_true",
        help="fail (exit 1) when a rule is reached by no test; implies --coverage",
    )
    test.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    test.set_defaults(handler=cmd_test)

    explain = commands.add_parser("explain", help="explain the decision for one input")
    explain.add_argument("--ruleset", required=True, help="ruleset name")
    explain.add_argument("--rules", type=Path, default=None, help="rules folder or file")
    explain.add_argument("--at", default=None, help="clock, ISO 8601 (default: now)")
    explain.add_argument("--format", choices=("text", "json"), default="text")
    explain.add_argument("input", help="INPUT.json (or - for standard input)")
    explain.set_defaults(handler=cmd_explain)

    replay = commands.add_parser(
        "replay", help="decide recorded decisions again with candidate rules: what would change"
    )
    replay.add_argument("candidate", type=Path, help="candidate rules: a file or folder")
    replay.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="SOURCE",
        help="a record file (ROUTER_RECORD_FILE) or a store URL (redis://…)",
    )
    replay.add_argument(
        "--since", default=None, metavar="DURATION", help="only records this recent (24h, 7d…)"
    )
    replay.add_argument("--format", choices=("text", "json"), default="text")
    replay.set_defaults(handler=cmd_replay)

    schema = commands.add_parser("schema", help="print the JSON Schema of rule files")
    schema.set_defaults(handler=cmd_schema)

    serve = commands.add_parser("serve", help="run the routing service")
    serve.add_argument("--rules", default=None, help="rules folder or file")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        metavar="N",
        help="processes serving the port (default: ROUTER_WORKERS, else 1); "
        "more than 1 needs ROUTER_STORE=redis://…",
    )
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
