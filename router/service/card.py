"""Agent card links (contract §9): signing, checking, and what a card shows.

A card link is ``/agent/card/{decision_id}?c=…&exp=…&sig=…``: ``exp`` is the Unix time it
stops being valid and ``sig`` the hex HMAC-SHA256, keyed by ``ROUTER_CARD_SECRET``, of the
decision id, the locator and ``exp``. The locator (``c=<conversation id>`` or
``s=<shared id>``) says where the decision is kept, so any replica sharing the store can
read it back; being signed, it cannot be swapped for another call's.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from router.engine.decide import RuleSet
from router.engine.values import MISSING, lookup
from router.sensitive import DEFAULT_PATHS, MASK, SensitivePaths

CARD_PATH = "/agent/card/"
LocatorKind = Literal["c", "s"]

"""Paths masked on the card in every ruleset (contract §8: the caller's number)."""
SHOWN_MAX = 120
"""Most characters of one shown fact's text."""


def _signature(secret: str, decision_id: str, kind: str, locator: str, exp: int) -> str:
    message = f"{decision_id}\n{kind}:{locator}\n{exp}".encode("utf-8", "surrogateescape")
    return hmac.new(secret.encode("utf-8", "surrogateescape"), message, hashlib.sha256).hexdigest()


def card_url(
    secret: str,
    base_url: str,
    decision_id: str,
    kind: LocatorKind,
    locator: str,
    *,
    expires_at: int,
) -> str:
    """The signed link to a decision's card, valid until ``expires_at`` (Unix seconds)."""
    sig = _signature(secret, decision_id, kind, locator, expires_at)
    query = urlencode({kind: locator, "exp": str(expires_at), "sig": sig})
    return f"{base_url}{CARD_PATH}{decision_id}?{query}"


def card_link_valid(
    secret: str,
    decision_id: str,
    kind: LocatorKind,
    locator: str,
    exp: str,
    sig: str,
    *,
    now: float,
) -> bool:
    """Whether a card link's signature is right (constant-time) and it has not expired."""
    if not secret or not exp.isdigit() or len(exp) > 12:
        return False
    expected = _signature(secret, decision_id, kind, locator, int(exp))
    right = hmac.compare_digest(expected.encode(), sig.encode("ascii", "replace"))
    return right and now < int(exp)


def shown_facts(
    ruleset: RuleSet, facts: Mapping[str, Any], sensitive: SensitivePaths = DEFAULT_PATHS
) -> dict[str, str]:
    """The ruleset's ``show:`` facts as text for the card, sensitive ones masked.

    A missing value is left out; a failed source shows as ``unavailable``.
    """
    shown: dict[str, str] = {}
    for path in ruleset.show:
        namespace, *keys = path.split(".")
        source = facts.get(namespace)
        if source is None and namespace != "context":
            shown[path] = "unavailable"
            continue
        value = lookup(source or {}, tuple(keys))
        if value is MISSING or value is None:
            continue
        shown[path] = MASK if sensitive.covers(path) else _text(value)
    return shown


def _text(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        text = "…"  # lists and maps are not shown on a card
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_MAX else text[: SHOWN_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class Card:
    """What an agent card shows: read back from the stored decision."""

    decision_id: str
    label: str | None
    queue: str
    rule: str | None
    outcome: str
    ruleset: str
    reason: str | None
    """The matched rule's ``description`` (why the call came here)."""
    facts: dict[str, str]
    degraded: bool


def card_data(
    ruleset: RuleSet,
    rule: str | None,
    facts: Mapping[str, Any],
    sensitive: SensitivePaths = DEFAULT_PATHS,
) -> dict[str, Any]:
    """What is kept with a stored decision for its card: why, and the shown facts."""
    reason = _descriptions(ruleset).get(rule) if rule is not None else None
    return {"reason": reason, "facts": shown_facts(ruleset, facts, sensitive)}


_DESCRIPTIONS: dict[str, dict[str, str | None]] = {}


def _descriptions(ruleset: RuleSet) -> dict[str, str | None]:
    """Each rule's description by id, built once per ruleset version (not a scan of every
    rule per decision)."""
    found = _DESCRIPTIONS.get(ruleset.version)
    if found is None:
        if len(_DESCRIPTIONS) > 64:
            _DESCRIPTIONS.clear()
        found = _DESCRIPTIONS[ruleset.version] = {r.id: r.description for r in ruleset.rules}
    return found


def card_from_stored(stored: Mapping[str, Any]) -> Card:
    """A :class:`Card` from a stored decision (its fields plus the ``card`` entry)."""
    extra = stored.get("card") or {}
    facts = extra.get("facts") if isinstance(extra, Mapping) else None
    return Card(
        decision_id=str(stored.get("decision_id", "")),
        label=stored.get("label"),
        queue=str(stored.get("queue", "")),
        rule=stored.get("rule"),
        outcome=str(stored.get("outcome", "")),
        ruleset=str(stored.get("ruleset", "")),
        reason=extra.get("reason") if isinstance(extra, Mapping) else None,
        facts={str(k): str(v) for k, v in facts.items()} if isinstance(facts, Mapping) else {},
        degraded=bool(stored.get("degraded", False)),
    )
