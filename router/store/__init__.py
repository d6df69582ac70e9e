"""Where pushed facts, the lookup cache and decisions are kept (see :mod:`router.store.base`)."""

from __future__ import annotations

from collections.abc import Callable

from router.sensitive import SensitivePaths
from router.settings import Settings
from router.store.base import Known, Pushed, Store, StoreError, StoreStatus
from router.store.memory import MemoryStore

__all__ = [
    "Known",
    "MemoryStore",
    "Pushed",
    "Store",
    "StoreError",
    "StoreStatus",
    "open_store",
]


def open_store(
    settings: Settings, *, sensitive: Callable[[], SensitivePaths] | None = None
) -> Store:
    """The store ``ROUTER_STORE`` names: ``memory`` (this process only) or a shared Redis
    (``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``, ``redis+sentinel://``).

    Nothing is dialled yet. Raises ``ValueError`` naming ``ROUTER_STORE`` for a Redis URL
    redis-py cannot use (the message never holds the URL's password). ``sensitive`` gives
    the paths a shared store keeps only encrypted (:mod:`router.store.seal`).
    """
    if settings.store == "memory":
        return MemoryStore(settings.memory_max_entries, record_max=settings.record_max)
    from router.store.redis import open_redis_store  # imports redis-py only when used

    return open_redis_store(settings, sensitive=sensitive)
