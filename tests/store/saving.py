"""Keeping a decision with the lookups gathered for it, as the decision service does."""

from __future__ import annotations

from typing import Any

from router.budget import Deadline
from router.facts import GatheredFacts
from router.store import Store


async def save_with_lookups(
    store: Store, decision: dict[str, Any], gathered: GatheredFacts, *, deadline: Deadline
) -> None:
    """``store.save_decision`` with ``gathered``'s new lookups, in one round trip."""
    await store.save_decision(
        decision,
        ttl_s=86400,
        lookups=dict(gathered.uncached) or None,
        cache_ttl_s=600,
        timeout_s=deadline.remaining(),
    )
