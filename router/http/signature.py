"""The push webhook's signature (contract §2.3, v1.2): ``X-Router-Signature:
t=<unix seconds>,sha256=<hex HMAC-SHA256 of "<t>." + raw body>``.

The timestamp is signed with the body, and a signature whose ``t`` is further than
``ROUTER_WEBHOOK_TOLERANCE_S`` from the router's clock is refused, so a captured push
cannot be replayed later to turn newer state back. The comparison is constant-time.
Signing, for senders and tests::

    >>> sign(b'{"id":"c-1"}', "secret", at=1767225600)
    't=1767225600,sha256=…'
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Literal

HEADER = "X-Router-Signature"

Verdict = Literal["ok", "malformed", "stale", "mismatch"]


def sign(raw: bytes, secret: str, *, at: int | None = None) -> str:
    """The header value for ``raw`` signed with ``secret`` at unix time ``at`` (now)."""
    stamp = int(time.time()) if at is None else at
    return f"t={stamp},sha256={_digest(secret, stamp, raw)}"


def verify(
    header: str,
    raw: bytes,
    secret: str,
    *,
    tolerance_s: float,
    clock: Callable[[], float] = time.time,
) -> Verdict:
    """Whether ``header`` signs ``raw``: ``ok``, ``malformed`` (not ``t=…,sha256=…``),
    ``stale`` (``t`` too far from now) or ``mismatch``."""
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep or key in parts:
            return "malformed"
        parts[key.lower()] = value.strip()
    stamp_text, offered = parts.get("t"), parts.get("sha256")
    if stamp_text is None or offered is None or set(parts) != {"t", "sha256"}:
        return "malformed"
    if not stamp_text.isascii() or not stamp_text.isdigit() or len(stamp_text) > 12:
        return "malformed"
    stamp = int(stamp_text)
    expected = _digest(secret, stamp, raw).encode()
    matches = hmac.compare_digest(expected, offered.lower().encode("utf-8", "surrogateescape"))
    if not matches:
        return "mismatch"
    if abs(clock() - stamp) > tolerance_s:
        return "stale"
    return "ok"


def _digest(secret: str, stamp: int, raw: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{stamp}.".encode(), hashlib.sha256)
    mac.update(raw)
    return mac.hexdigest()
