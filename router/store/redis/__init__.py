"""The shared store: pushed facts, the lookup cache and decisions in Redis, for every replica.

Selected by ``ROUTER_STORE=redis://…`` (also ``rediss://``, ``unix://``,
``redis+cluster://``, ``redis+sentinel://``). It keeps the
:class:`~router.store.base.Store` contract of the memory store, and adds what a network
store needs: every round trip is bounded, failures are counted by a circuit breaker,
and decisions are never silently lost (see docs/scaling.md, "When Redis is down").

Its parts, in the order a call meets them:

- :mod:`~router.store.redis.store`: :class:`RedisStore`, the store's operations, and
  :func:`open_redis_store`, which makes one from the settings;
- :mod:`~router.store.redis.keys`: where each value lives (prefix, hash tags, TTLs);
- :mod:`~router.store.redis.pipeline`: round trips, auto-pipelined, bounded by the
  store timeout and counted by the breaker;
- :mod:`~router.store.redis.outbox`: decisions waiting for Redis to answer again;
- :mod:`~router.store.redis.url`: from a ``ROUTER_STORE`` URL to a redis-py client,
  and passwords kept out of logs.
"""

from router.store.redis.store import RedisStore, open_redis_store

__all__ = ["RedisStore", "open_redis_store"]
