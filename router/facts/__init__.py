"""Where a decision's facts come from: PolyAI lookups, pushed state, inline data.

The public surface is :class:`FactGatherer` and :class:`GatheredFacts`; the
HTTP client (:mod:`router.facts.polyai`), the circuit breakers
(:mod:`router.breaker`, shared with the store) and single-flight are its parts.
"""

from router.facts.gather import FactGatherer, GatheredFacts
from router.facts.polyai import make_client_session

__all__ = ["FactGatherer", "GatheredFacts", "make_client_session"]
