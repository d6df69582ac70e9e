"""A fast fake PolyAI for ``bench/http_bench.py``: both endpoints, each on its own port.

Plain asyncio protocols on uvloop (no aiohttp server, no per-request objects beyond the
answer's bytes), so at the benchmark's load the fake stays far from being the bottleneck:
it only parses the request line, checks the API key and, after ``--delay-ms``, writes a
sample-shaped answer (the handoff answer echoes the id asked for; the record's
``conversationId`` is the path's). ``--hang`` never answers (until the client gives up).

The Handoff API and the conversation data API listen on two ports, as in production
where they are two hosts: the router's connection pool is limited per host.

Prints ``PORTS <handoff port> <data port>`` once listening; on SIGTERM prints one JSON line
``{"requests": …, "max_in_flight": …, …}`` and exits.

    python bench/http/fake_polyai.py --delay-ms 20 --api-key bench-key
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any
from urllib.parse import unquote

import orjson

SAMPLE_HANDOFF_DATA: dict[str, str] = {
    "handoff_reason": "refund",
    "customer_id": "C-204871",
    "identified": "true",
    "intent": "billing.refund_status",
    "language": "en-GB",
}
SHARED_ID = "CA5f1e6c2d0b8a4f3e9d7c6b5a4f3e2d1c"

SAMPLE_CONVERSATION: dict[str, Any] = {
    "accountId": "ACCOUNT-acme",
    "projectId": "PROJECT-support",
    "createdAt": "2026-11-23T10:02:11Z",
    "startedAt": "2026-11-23T10:02:12Z",
    "channel": "voice",
    "fromNumber": "+447700900123",
    "toNumber": "+442071234567",
    "language": "en-GB",
    "variantId": "main",
    "clientEnv": "live",
    "inProgress": True,
    "handoff": True,
    "handoffDestination": "billing",
    "handoffReason": "refund",
    "direction": "inbound",
    "tags": ["identified"],
    "state": {
        "customer_tier": "gold",
        "balance": "1500",
        "sentiment": "upset",
        "verified": "true",
        "account_type": "business",
    },
    "turns": [],
    "metrics": {},
}

# Answers are the sample with the id spliced in: '{"id":' + dumps(id) + rest.
_HANDOFF_TAIL = orjson.dumps({"shared_id": SHARED_ID, "data": SAMPLE_HANDOFF_DATA})[1:]
_RECORD_TAIL = orjson.dumps(SAMPLE_CONVERSATION)[1:]
_HEAD = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.answered = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0
        self.unauthorized = 0
        self.not_found = 0


def _answer(status: int, reason: bytes, body: bytes) -> bytes:
    return (_HEAD % (status, reason, len(body))) + body


class FakeProtocol(asyncio.Protocol):
    """One client connection: requests are GETs without bodies, answered in order."""

    def __init__(self, endpoint: str, delay_s: float, hang: bool, api_key: bytes, stats: Stats):
        self.endpoint = endpoint
        self.delay_s = delay_s
        self.hang = hang
        self.api_key_line = b"\r\nx-api-key: " + api_key + b"\r\n"
        self.stats = stats
        self.buffer = b""
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buffer = self.buffer[: end + 4], self.buffer[end + 4 :]
            self._request(head)

    def _request(self, head: bytes) -> None:
        stats = self.stats
        stats.requests += 1
        line_end = head.find(b"\r\n")
        parts = head[:line_end].split(b" ")
        target = parts[1] if len(parts) > 1 else b"/"
        if self.api_key_line not in head.lower():
            stats.unauthorized += 1
            self._send(_answer(401, b"Unauthorized", b'{"error": "bad api key"}'))
            return
        body = self._body(target)
        if body is None:
            stats.not_found += 1
            self._send(_answer(404, b"Not Found", b'{"error": "not found"}'))
            return
        if self.hang:
            return  # never answered; the client times out and closes the connection
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        self.loop.call_later(self.delay_s, self._send_late, _answer(200, b"OK", body))

    def _body(self, target: bytes) -> bytes | None:
        path, _, query = target.decode("latin-1").partition("?")
        if self.endpoint == "handoff":
            if not path.endswith("/handoff_state"):
                return None
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            cid = unquote(params.get("id", "")) or None
            return b'{"id":' + orjson.dumps(cid) + b"," + _HANDOFF_TAIL
        segments = path.split("/")
        if len(segments) != 6 or segments[4] != "conversations":
            return None
        return b'{"conversationId":' + orjson.dumps(unquote(segments[5])) + b"," + _RECORD_TAIL

    def _send_late(self, payload: bytes) -> None:
        self.stats.in_flight -= 1
        self._send(payload)

    def _send(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)
            self.stats.answered += 1


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    key = args.api_key.encode().lower()
    delay = args.delay_ms / 1000.0
    servers = []
    for endpoint in ("handoff", "data"):
        server = await loop.create_server(
            lambda e=endpoint: FakeProtocol(e, delay, args.hang, key, stats),  # type: ignore[misc]
            host="127.0.0.1",
            port=0,
            backlog=4096,
        )
        servers.append(server)
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    sys.stdout.write(f"PORTS {ports[0]} {ports[1]}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    sys.stdout.write(orjson.dumps(vars(stats)).decode() + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--hang", action="store_true", help="never answer")
    parser.add_argument("--api-key", default="bench-key")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))


if __name__ == "__main__":
    main()
