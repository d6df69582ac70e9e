"""The baseline for ``bench/http_bench.py``: a bare aiohttp JSON endpoint.

``POST /v1/route`` reads the body, parses it as JSON (orjson), checks it is an object with
a ``conversation_id``, and answers a fixed decision-sized JSON body. No middlewares, no
validation model, no logging, no metrics: what the router costs above this is the
router's own work. Runs on uvloop like ``router serve``, access log off like it.

Prints ``PORT <port>`` once listening (on 127.0.0.1, a free port) and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson
from aiohttp import web

ANSWER = orjson.dumps(
    {
        "decision_id": "3919ada3-5df8-4705-bfac-4f75fa9882ee",
        "conversation_id": "0bba04d7-38b3-4fd3-a1a8-329c34517fc1",
        "shared_id": None,
        "ruleset": "default",
        "ruleset_version": "sha256:" + "17b55b1d972b19a2cb323f70c81f8d01" * 2,
        "queue": "billing-priority",
        "label": "Billing dispute · gold",
        "priority": 10,
        "skills": ["billing"],
        "attributes": {"x_tier": "gold"},
        "rule": "vip-billing",
        "outcome": "matched",
        "degraded": False,
        "sources": {"handoff": "inline", "state": "inline", "conversation": "skipped"},
        "elapsed_ms": 0.341,
    }
)
BAD = b'{"error": {"code": "validation_error", "message": "no conversation_id"}}'


async def route(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    if not isinstance(body, dict) or "conversation_id" not in body:
        return web.Response(status=422, body=BAD, content_type="application/json")
    return web.Response(body=ANSWER, content_type="application/json", charset="utf-8")


async def serve() -> None:
    app = web.Application()
    app.router.add_post("/v1/route", route)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


if __name__ == "__main__":
    main()
