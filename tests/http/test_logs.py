"""Logs: JSON lines on stdout, request_id on each, one ``decision`` event, no state values."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
import pytest
import structlog

from router.http.keys import SETTINGS
from router.observe import LineWriter, configure_logging, flush_logs
from tests.http.conftest import AUTH, MakeClient

ROUTE = {
    "conversation_id": "c-logs",
    "handoff": {"handoff_reason": "refund", "card": "4111-SECRET-CARD"},
    "state": {"customer_tier": "gold", "pin": "PIN-9876"},
    "context": {"ani": "+447700900999"},
}
STATE_VALUES = ("4111-SECRET-CARD", "PIN-9876", "+447700900999", "Billing · gold")


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [orjson.loads(line) for line in lines]  # each line must be one JSON object


async def routed_logs(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str], **settings: Any
) -> tuple[list[dict[str, Any]], str]:
    client = await make_client(**settings)
    configure_logging(client.app[SETTINGS])
    capsys.readouterr()
    resp = await client.post("/v1/route", json=ROUTE, headers={**AUTH, "X-Request-ID": "rid-logs"})
    assert resp.status == 200
    out = capsys.readouterr().out
    return json_lines(out), out


async def test_logs_are_json_lines_with_request_id_and_a_decision_event(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    events, out = await routed_logs(make_client, capsys)
    assert all(e["request_id"] == "rid-logs" for e in events)
    assert all("timestamp" in e and e["timestamp"].endswith("Z") for e in events)
    [decision] = [e for e in events if e["event"] == "decision"]
    for field in (
        "decision_id",
        "conversation_id",
        "ruleset",
        "rule",
        "queue",
        "outcome",
        "degraded",
        "sources",
        "elapsed_ms",
    ):
        assert field in decision, field
    assert decision["rule"] == "vip-billing"
    assert decision["conversation_id"] == "c-logs"
    for value in STATE_VALUES:
        assert value not in out, value


async def test_state_values_are_logged_only_when_allowed(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    events, out = await routed_logs(make_client, capsys, ROUTER_LOG_STATE="true")
    [decision] = [e for e in events if e["event"] == "decision"]
    assert decision["label"] == "Billing · gold"
    assert "PIN-9876" in out


async def test_credentials_are_never_logged(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await routed_logs(make_client, capsys, ROUTER_LOG_STATE="true")
    structlog.get_logger().info("probe", api_key="k-123", headers={"Authorization": "Bearer z"})
    flush_logs()
    out = capsys.readouterr().out
    assert '"event":"probe"' in out  # the line was written: the checks below mean something
    assert "k-123" not in out
    assert "Bearer z" not in out
    assert AUTH["Authorization"] not in out


async def test_console_format_is_for_humans(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await make_client(ROUTER_LOG_FORMAT="console")
    configure_logging(client.app[SETTINGS])
    capsys.readouterr()
    await client.post("/v1/route", json=ROUTE, headers=AUTH)
    out = capsys.readouterr().out
    assert "decision" in out
    assert not out.lstrip().startswith("{")
    assert "PIN-9876" not in out


async def test_probes_are_not_logged_at_info(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client = await make_client()
    configure_logging(client.app[SETTINGS])
    capsys.readouterr()
    await client.get("/healthz")
    await client.get("/v1/rulesets", headers=AUTH)
    routes = [e["route"] for e in json_lines(capsys.readouterr().out) if e["event"] == "request"]
    assert routes == ["/v1/rulesets"]


async def test_a_routed_call_logs_one_line_its_decision(
    make_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    events, _ = await routed_logs(make_client, capsys)
    assert [e["event"] for e in events] == ["decision"]


async def test_lines_of_one_loop_turn_are_written_together_in_order() -> None:
    writes: list[bytes] = []

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            writes.append(bytes(data))
            return len(data)

    stream = io.TextIOWrapper(io.BufferedWriter(Sink()))
    writer = LineWriter(stream)
    for n in range(5):
        writer.write_line(f"line {n}")
    assert writes == []  # nothing yet: the turn is not over
    await asyncio.sleep(0)
    assert writes == [b"line 0\nline 1\nline 2\nline 3\nline 4\n"]  # one write
    writer.write_line(b"line 5")
    await asyncio.sleep(0)
    assert writes[1:] == [b"line 5\n"]


def test_outside_an_event_loop_each_line_is_written_at_once() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.write_line("first")
    assert stream.getvalue() == "first\n"
    writer.write_line(b"second")
    assert stream.getvalue() == "first\nsecond\n"


async def test_flush_writes_what_waits_for_the_turn_to_end() -> None:
    stream = io.StringIO()
    writer = LineWriter(stream)
    writer.write_line("pending")
    assert stream.getvalue() == ""
    writer.flush()
    assert stream.getvalue() == "pending\n"
    await asyncio.sleep(0)  # the scheduled flush finds nothing left: no duplicate
    assert stream.getvalue() == "pending\n"
