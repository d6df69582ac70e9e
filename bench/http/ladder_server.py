"""``router serve`` with ``POST /v1/route`` cut short after a stage, for bench/http_ladder.py.

``ROUTER_BENCH_STAGE`` (0-5) says how far the handler goes before it answers:

  0  the router's app (middleware, authentication, headers), the body read, a fixed answer
  1  + the body validated (pydantic), the ruleset picked, the budget started
  2  + the facts gathered (a memory-store read; the request carries them inline)
  3  + the rules run (``RuleSet.decide``), a decision id, the answer built and serialised
  4  + the decision saved in the store
  5  the real ``/v1/route`` handler: + the record for replay, masking, the recent-decisions
     ring, the decision's metrics and its log line

The express lane (router/http/route_lane.py) answers well-formed route calls before any
handler runs, so bench/http_ladder.py runs stages 0-4 (and 5h, the real handler) with
``ROUTER_ROUTE_LANE=false`` and stage 5 with it on, as served.

Stages 0-4 mark the call as logged, so no ``request`` line is written either: each stage
adds exactly one step. This is a benchmark tool: it replaces the route handler before the
app is built and is never imported by the service.
"""

from __future__ import annotations

import os
import sys
import uuid

from aiohttp import web
from baseline_server import ANSWER  # this folder is on sys.path when run as a script

import router.http.handlers as handlers
from router.cli import run
from router.http.keys import LOGGED, SERVICE
from router.service import decisions

STAGE = int(os.environ.get("ROUTER_BENCH_STAGE", "5"))
REAL_ROUTE = handlers.route
FIXED = ANSWER  # the baseline's answer: the same bytes on the wire


def _fixed(request: web.Request) -> web.Response:
    request[LOGGED] = True
    return web.Response(body=FIXED, content_type="application/json", charset="utf-8")


async def route(request: web.Request) -> web.Response:
    if STAGE >= 5:
        return await REAL_ROUTE(request)
    if STAGE == 0:
        await request.read()
        return _fixed(request)
    service = request.app[SERVICE]
    call = await handlers._decision_request(request)
    ruleset = service.ruleset(call.ruleset)
    deadline = service.deadline(call)
    if STAGE == 1:
        return _fixed(request)
    gathered = await service._gather(call, deadline, cache_with_decision=True)
    if STAGE == 2:
        return _fixed(request)
    facts = decisions._facts(gathered, call)
    decision = ruleset.decide(
        facts, conversation_id=gathered.conversation_id, shared_id=gathered.shared_id
    )
    answer = decisions._answer(str(uuid.uuid4()), decision, gathered, deadline)
    if STAGE == 3:
        request[LOGGED] = True
        return handlers.json_response(answer)
    await service._save(answer, gathered.uncached, deadline)
    request[LOGGED] = True
    return handlers.json_response(answer)


if __name__ == "__main__":
    handlers.route = route  # the app factory reads it when it adds the routes
    sys.argv = ["router", "serve"]
    run()
