"""Routes and handlers of the ops page (``/ops``) and the agent card (``/agent/card/…``).

Both are views of the same :class:`~router.service.DecisionService` the API uses: the
rulesets it serves, its last reload problem, its recent answers, its stored decisions.
The page's live parts are rendered by the same template fragments for the first load and
for the feed the page polls, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import aiohttp_jinja2
import jinja2
from aiohttp import web

from router.http.handlers import json_response
from router.http.keys import API_KEY, SERVICE, SETTINGS
from router.service import (
    Card,
    CardNotFound,
    CardRefused,
    DecisionService,
    RecentDecision,
    ReloadProblem,
    RulesetSummary,
    StoreUnavailable,
    Traffic,
)
from router.service.card import CARD_PATH, LocatorKind

HERE = Path(__file__).resolve().parent
RECENT_SHOWN: Final = 50
"""Recent decisions listed on the page."""
POLL_MS: Final = 1500
"""How often the page asks for fresh sections (the contract wants them within 5 s)."""

OPS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""The ops page's policy: its own script, style and fetches only; never framed."""


ROUTE_NAMES: Final = frozenset(
    {"ops_page", "ops_feed", "ops_static", "agent_card", "agent_card_static"}
)
"""The routes this package adds: pages for people, not part of the documented JSON API."""


def card_csp(frame_ancestors: str) -> str:
    """The card's policy: its own style only, framed only by ``ROUTER_CARD_FRAME_ANCESTORS``."""
    return (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"form-action 'none'; frame-ancestors {frame_ancestors}"
    )


def add_routes(app: web.Application) -> None:
    """Add the ops page, its feed and static files, and the agent card to ``app``."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app.router.add_get("/ops", ops_page, name="ops_page")
    app.router.add_get("/ops/feed", ops_feed, name="ops_feed", allow_head=False)
    app.router.add_static("/ops/static/", HERE / "static" / "ops", name="ops_static")
    app.router.add_get(CARD_PATH + "{decision_id}", agent_card, name="agent_card")
    app.router.add_static("/agent/static/", HERE / "static" / "card", name="agent_card_static")


# The ops page ---------------------------------------------------------------------------


async def ops_page(request: web.Request) -> web.Response:
    """``GET /ops``: the whole page, its live sections rendered as the feed renders them."""
    service = request.app[SERVICE]
    visible = _visible(request)
    rulesets = service.rulesets(visible=visible)
    context = {
        "sections": _sections(request, service, rulesets, visible),
        "ruleset_names": [r.name for r in rulesets],
        "default_ruleset": service.default_ruleset,
        "poll_ms": POLL_MS,
        "sample_input": SAMPLE_INPUT,
    }
    response = aiohttp_jinja2.render_template("ops.html", request, context)
    response.headers["Content-Security-Policy"] = OPS_CSP
    return response


async def ops_feed(request: web.Request) -> web.Response:
    """``GET /ops/feed``: the page's live sections as HTML fragments (JSON), for polling."""
    service = request.app[SERVICE]
    visible = _visible(request)
    rulesets = service.rulesets(visible=visible)
    return json_response({"sections": _sections(request, service, rulesets, visible)})


def _visible(request: web.Request) -> Callable[[str], bool]:
    key = request.get(API_KEY)
    return key.allows if key is not None else (lambda _: True)


def _sections(
    request: web.Request,
    service: DecisionService,
    rulesets: list[RulesetSummary],
    visible: Callable[[str], bool],
) -> dict[str, str]:
    """Each live section of the page, rendered."""
    key = request.get(API_KEY)
    problem = service.last_reload_problem()
    scoped = key is not None and key.rulesets is not None
    if problem is not None and scoped and problem.file not in {r.source for r in rulesets}:
        problem = None  # a scoped key sees reload errors of its own rulesets' files only
    recent = [d for d in service.recent(RECENT_SHOWN * 4) if visible(d.answer.ruleset)]
    return {
        "rulesets": _render(
            "_rulesets.html",
            request,
            rulesets=[_ruleset_view(service, r) for r in rulesets],
        ),
        "reload-error": _render("_reload_error.html", request, problem=_problem_view(problem)),
        "recent": _render(
            "_recent.html", request, recent=[_recent_view(d) for d in recent[:RECENT_SHOWN]]
        ),
        "traffic": _render("_traffic.html", request, chart=traffic_chart(service.traffic())),
    }


def _render(template: str, request: web.Request, **context: Any) -> str:
    return aiohttp_jinja2.render_string(template, request, context)


def _time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _ruleset_view(service: DecisionService, summary: RulesetSummary) -> dict[str, Any]:
    tests = service.test_summary(summary.name)
    return {
        "name": summary.name,
        "version": summary.version,
        "short_version": summary.version[: len("sha256:") + 12],
        "rules": summary.rules,
        "loaded_at": _time(summary.loaded_at),
        "source": Path(summary.source).name,
        "tests": tests,
    }


def _problem_view(problem: ReloadProblem | None) -> dict[str, Any] | None:
    if problem is None:
        return None
    name = Path(problem.file).name
    where = f"{name}:{problem.line}:{problem.col}" if problem.line is not None else name
    message = problem.message
    if message.startswith(problem.file + ":"):
        # The location is shown on its own; the message keeps only what is wrong.
        message = message[len(problem.file) + 1 :].split(": ", 1)[-1]
        message = message.removeprefix("error: ")
    return {
        "file": problem.file,
        "where": where,
        "line": problem.line,
        "col": problem.col,
        "excerpt": problem.excerpt,
        "message": message,
        "at": _time(problem.at),
    }


def _recent_view(recent: RecentDecision) -> dict[str, Any]:
    answer = recent.answer
    return {
        "time": recent.at.strftime("%H:%M:%S"),
        "ruleset": answer.ruleset,
        "queue": answer.queue,
        "label": answer.label,
        "rule": answer.rule,
        "outcome": answer.outcome,
        "degraded": answer.degraded,
        "short_id": answer.decision_id[:8],
        "decision_id": answer.decision_id,
    }


CHART_WIDTH: Final = 720
CHART_HEIGHT: Final = 160
PALETTE: Final = (
    "#2563eb",
    "#16a34a",
    "#d97706",
    "#dc2626",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#475569",
    "#ea580c",
)


def traffic_chart(traffic: Traffic) -> dict[str, Any]:
    """A stacked bar per minute (one colour per queue) as SVG rectangles, and a legend."""
    queues = sorted(traffic.counts, key=lambda q: (-sum(traffic.counts[q]), q))
    minutes = len(traffic.minutes)
    totals = [sum(traffic.counts[q][i] for q in queues) for i in range(minutes)]
    peak = max(totals, default=0)
    slot = CHART_WIDTH / max(minutes, 1)
    bars: list[dict[str, Any]] = []
    colours = {q: PALETTE[i % len(PALETTE)] for i, q in enumerate(queues)}
    for i, minute in enumerate(traffic.minutes):
        y = float(CHART_HEIGHT)
        for queue in queues:
            count = traffic.counts[queue][i]
            if not count:
                continue
            height = CHART_HEIGHT * count / peak
            y -= height
            bars.append(
                {
                    "x": round(i * slot + 1, 2),
                    "y": round(y, 2),
                    "width": round(max(slot - 2, 1), 2),
                    "height": round(height, 2),
                    "colour": colours[queue],
                    "title": f"{minute.strftime('%H:%M')} UTC · {queue}: {count}",
                }
            )
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "bars": bars,
        "peak": peak,
        "legend": [
            {"queue": q, "colour": colours[q], "total": sum(traffic.counts[q])} for q in queues
        ],
        "start": traffic.minutes[0].strftime("%H:%M") if minutes else "",
        "end": traffic.minutes[-1].strftime("%H:%M") if minutes else "",
    }


SAMPLE_INPUT = """{
  "conversation_id": "playground",
  "handoff": {"handoff_reason": "refund"},
  "state": {"customer_tier": "gold"},
  "context": {}
}"""


# The agent card -------------------------------------------------------------------------


async def agent_card(request: web.Request) -> web.Response:
    """``GET /agent/card/{decision_id}?c=…&exp=…&sig=…``: the card of one decision.

    No API key: the signed link is the credential. 403 (a page that says only that) for a
    bad or expired link, 404 when the decision is no longer kept.
    """
    settings = request.app[SETTINGS]
    csp = card_csp(settings.card_frame_ancestors)
    decision_id = request.match_info["decision_id"]
    query = request.query
    kind: LocatorKind = "c" if "c" in query else "s"
    locator, exp, sig = query.get(kind, ""), query.get("exp", ""), query.get("sig", "")
    status, card = 200, None
    try:
        if not locator or len(decision_id) > 256 or len(locator) > 256:
            raise CardRefused("incomplete link")
        card = await request.app[SERVICE].card(decision_id, kind, locator, exp=exp, sig=sig)
    except CardRefused:
        status = 403
    except CardNotFound:
        status = 404
    except StoreUnavailable:
        status = 503
    response = _card_response(request, card, status)
    response.headers["Content-Security-Policy"] = csp
    return response


_CARD_REFUSALS: Final = {
    403: ("This link is not valid", "The link may have expired. Open the call again."),
    404: ("No details for this call", "This call's routing details are no longer kept."),
    503: ("Details unavailable", "The router cannot read this call's details right now."),
}


def _card_response(request: web.Request, card: Card | None, status: int) -> web.Response:
    if card is not None:
        return aiohttp_jinja2.render_template("card.html", request, {"card": card})
    title, text = _CARD_REFUSALS[status]
    return aiohttp_jinja2.render_template(
        "card_refused.html", request, {"title": title, "text": text}, status=status
    )
