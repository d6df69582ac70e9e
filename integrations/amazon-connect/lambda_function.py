"""Amazon Connect -> router: the reference Lambda a contact flow invokes at transfer time.

Connect can call nothing but Lambda from a flow, so this function forwards the invocation
event unchanged to the router's ``POST /v1/platforms/amazon-connect`` and hands the
router's flat answer back to the flow (contract §7.1). It never raises: when the router
cannot answer in time or answers something Connect could not use, the flow still gets the
same flat shape with ``queue`` = ``FALLBACK_QUEUE`` and ``degraded`` = ``"true"``.

Standard library only, so the deployment package is this one file (runtime python3.12,
handler ``lambda_function.lambda_handler``). Settings, read on every invocation:

``ROUTER_URL``
    The router's base URL, ``https://router.example.com`` (no path, no credentials).
``ROUTER_API_KEY``
    Sent as ``Authorization: Bearer …``; a key with the ``route`` role is enough.
``ROUTER_RULESET``
    Optional; sent as ``?ruleset=``. Without it the router uses its default ruleset.
``FALLBACK_QUEUE`` / ``FALLBACK_QUEUE_ARN``
    What the answer names when the router is not reachable (``fallback`` / empty).
``ROUTER_TIMEOUT_MARGIN_MS``
    Optional, default 300: how much of the Lambda's remaining time is kept back for
    building the fallback answer and returning it to Connect.

Timing: the router call may take ``context.get_remaining_time_in_millis()`` less the
margin, and never less than a floor of 100 ms. Set the function's own timeout below the
timeout of the flow's *Invoke AWS Lambda function* block (Connect allows up to 8 s), so
that this function, not Connect, decides what happens when the router is slow.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

PLATFORM_PATH = "/v1/platforms/amazon-connect"
DEFAULT_MARGIN_MS = 300
FLOOR_MS = 100
MAX_ANSWER_BYTES = 32 * 1024  # Connect rejects a Lambda answer of 32 KB or more
FALLBACK_QUEUE_DEFAULT = "fallback"

# The fixed keys of the §7.1 answer, in the order the router sends them.
ANSWER_KEYS = (
    "queue",
    "queue_arn",
    "label",
    "priority",
    "skills",
    "rule",
    "outcome",
    "degraded",
    "decision_id",
    "ruleset",
    "ruleset_version",
)

logger = logging.getLogger("router_connect")
logger.setLevel(logging.INFO)


class LambdaContext(Protocol):
    """The one part of the Lambda context object this function reads."""

    def get_remaining_time_in_millis(self) -> int: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuses redirects: a redirected router URL is a misconfiguration, and following it
    would send the API key to wherever the redirect points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


class _RouterFailure(Exception):
    """Why the router's answer cannot be used; the message is a short log reason."""


def lambda_handler(event: Any, context: LambdaContext) -> dict[str, str]:
    """Forward the Connect invocation event to the router and return its flat answer.

    Returns the router's answer as-is when it is a 200 flat string map with a queue,
    otherwise the fallback answer. Never raises. Logs one line per invocation, without
    secrets or caller numbers.
    """
    started = time.monotonic()
    contact_id = _contact_id(event)
    try:
        timeout_s = _timeout_ms(context) / 1000
        answer = _call_router(event, timeout_s)
    except _RouterFailure as failure:
        _log(logging.WARNING, "fallback", str(failure), started, contact_id, None)
        return fallback_answer()
    except Exception as error:  # the flow must get a queue whatever went wrong
        _log(logging.WARNING, "fallback", type(error).__name__, started, contact_id, None)
        return fallback_answer()
    _log(logging.INFO, "routed", "ok", started, contact_id, answer)
    return answer


def fallback_answer() -> dict[str, str]:
    """The §7.1 shape naming ``FALLBACK_QUEUE``, for when the router gave nothing usable."""
    answer = dict.fromkeys(ANSWER_KEYS, "")
    answer["queue"] = os.environ.get("FALLBACK_QUEUE") or FALLBACK_QUEUE_DEFAULT
    answer["queue_arn"] = os.environ.get("FALLBACK_QUEUE_ARN", "")
    answer["outcome"] = "fallback"
    answer["degraded"] = "true"
    return answer


def _timeout_ms(context: LambdaContext) -> int:
    """The time the router call may take: what is left of this invocation less the margin,
    and never less than the floor (a call with no time at all would always fail)."""
    margin = _int_setting("ROUTER_TIMEOUT_MARGIN_MS", DEFAULT_MARGIN_MS)
    remaining = int(context.get_remaining_time_in_millis())
    return max(remaining - margin, FLOOR_MS)


def _call_router(event: Any, timeout_s: float) -> dict[str, str]:
    """POST the event to the router and return its answer, or raise ``_RouterFailure``."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in _router_url
        _router_url(),
        data=json.dumps(event).encode(),
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Bearer {os.environ.get('ROUTER_API_KEY', '')}",
        },
        method="POST",
    )
    try:
        with _opener.open(request, timeout=timeout_s) as response:
            status = response.status
            body = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as error:
        error.close()
        raise _RouterFailure(f"status_{error.code}") from None
    except urllib.error.URLError as error:
        raise _RouterFailure(_reason(error.reason)) from None
    except TimeoutError:
        raise _RouterFailure("timeout") from None
    except OSError as error:
        raise _RouterFailure(_reason(error)) from None
    if status != 200:
        raise _RouterFailure(f"status_{status}")
    if len(body) > MAX_ANSWER_BYTES:
        raise _RouterFailure("answer_too_large")
    return _flat_answer(body)


def _router_url() -> str:
    """``ROUTER_URL`` + the platform path + ``?ruleset=`` when one is set."""
    base = os.environ.get("ROUTER_URL", "").strip().rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise _RouterFailure("router_url_not_set")
    url = base + PLATFORM_PATH
    ruleset = os.environ.get("ROUTER_RULESET", "").strip()
    if ruleset:
        url += "?" + urllib.parse.urlencode({"ruleset": ruleset})
    return url


def _flat_answer(body: bytes) -> dict[str, str]:
    """The answer as a flat map of strings with a queue, or ``_RouterFailure``: Connect's
    STRING_MAP validation takes nothing else, and a flow cannot transfer without a queue."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise _RouterFailure("bad_body") from None
    if not isinstance(answer, dict):
        raise _RouterFailure("bad_body")
    if not all(isinstance(value, str) for value in answer.values()):
        raise _RouterFailure("not_flat")
    if not answer.get("queue"):
        raise _RouterFailure("no_queue")
    return answer


def _reason(error: object) -> str:
    """A short name for a network failure, for the log line."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, socket.gaierror):
        return "dns"
    if isinstance(error, OSError):
        return "unreachable"
    return "error"


def _contact_id(event: Any) -> str:
    """The Connect contact id, so a log line can be matched to a contact record."""
    try:
        contact_id = event["Details"]["ContactData"]["ContactId"]
    except (KeyError, TypeError):
        return ""
    return contact_id if isinstance(contact_id, str) else ""


def _int_setting(name: str, default: int) -> int:
    """A non-negative integer environment variable, or ``default`` when unset or not one."""
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value >= 0 else default


def _log(
    level: int,
    result: str,
    reason: str,
    started: float,
    contact_id: str,
    answer: dict[str, str] | None,
) -> None:
    """One JSON line per invocation: what happened and how long it took, nothing secret
    and no caller number (the event's endpoints and attributes are never logged)."""
    line: dict[str, Any] = {
        "event": "router_call",
        "result": result,
        "reason": reason,
        "contact_id": contact_id,
        "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
    }
    if answer is not None:
        line["queue"] = answer.get("queue", "")
        line["outcome"] = answer.get("outcome", "")
        line["decision_id"] = answer.get("decision_id", "")
    logger.log(level, json.dumps(line))
