"""Where the Redis store keeps each value: key names, hash tags, and what a write touches.

Keys (``P`` is ``ROUTER_STORE_PREFIX``, default ``router:``)::

    P{c:<conversation id>}:link              [conversation id, shared id] of the last push
    P{c:<conversation id>}:push:<namespace>  pushed handoff / state / conversation
    P{c:<conversation id>}:cache:<name>      cached lookup (handoff, state)
    P{c:<conversation id>}:decision          the latest decision
    P{s:<shared id>}:cid                     the conversation id this shared id belongs to
    P{s:<shared id>}:…                       the same fields, for writes that knew no
                                             conversation id (a push or decision by shared id)
    Precords                                 the decision records (a stream, MAXLEN ~
                                             ROUTER_RECORD_MAX), read by replay

Everything written for one conversation shares the hash tag ``{c:<id>}``, so it lives
on one Redis Cluster slot and a pipeline for it goes to one node. Ids are
percent-escaped for ``%``, ``{`` and ``}`` so the tag is always the whole id. Every key
has its own TTL (``PX``), so TTLs behave as in the memory store: each namespace, cached
lookup and decision expires on its own.

A write that knows both ids is kept under the conversation id, links the shared id to
it (``…:cid``, kept as long as the longest TTL so a decision stays findable by shared
id), and deletes what the shared id's own keys hold for the same fields (they are
older). So a read by conversation id prefers the conversation's keys, and a read by
shared id alone prefers the shared id's keys and then follows the link.

The ``queue_*`` methods add commands to a redis-py pipeline (``pipe``); they never send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from router.store.base import CACHE_NAMES

PUSHED_NAMES = ("handoff", "state", "conversation")
"""The pushed namespaces, each its own key."""
READ_FIELDS = (
    "link",
    *(f"push:{name}" for name in PUSHED_NAMES),
    *(f"cache:{name}" for name in CACHE_NAMES),
)
"""What a read of one id fetches, in ``MGET`` order."""


def escape(value: str) -> str:
    """Keep ``{``/``}`` out of an id so the hash tag is the whole id (and keys stay unique)."""
    return value.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def ms(seconds: float) -> int:
    """A TTL for ``PX``: whole milliseconds, at least 1 (Redis refuses 0)."""
    return max(int(seconds * 1000), 1)


def queue_mget(pipe: Any, keys: Sequence[str]) -> None:
    """Queue one ``MGET`` of keys that share a hash tag (one slot, so one cluster node).

    redis-py's cluster pipeline refuses its ``mget`` helper (it cannot know the keys
    share a slot); the raw command is routed by its keys' slot, which is the same.
    """
    pipe.execute_command("MGET", *keys)


class Keys:
    """The key layout of one store: its prefix, and how long a shared id stays linked to
    its conversation (``link_ttl_s``: the longest TTL configured)."""

    __slots__ = ("_link_ttl_s", "_prefix")

    def __init__(self, prefix: str, link_ttl_s: float) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold '{' or '}'")
        self._prefix = prefix
        self._link_ttl_s = link_ttl_s

    @property
    def records(self) -> str:
        """The stream of decision records, shared by every replica: ``<prefix>records``."""
        return f"{self._prefix}records"

    def owner(self, kind: Literal["c", "s"], value: str) -> str:
        """The common start of one id's keys: ``<prefix>{c:<id>}:`` or ``<prefix>{s:<id>}:``."""
        return f"{self._prefix}{{{kind}:{escape(value)}}}:"

    def home(self, cid: str | None, sid: str | None) -> str | None:
        """Where a write goes: the conversation id's keys, else the shared id's."""
        if cid is not None:
            return self.owner("c", cid)
        if sid is not None:
            return self.owner("s", sid)
        return None

    def queue_read(self, pipe: Any, owner: str) -> None:
        """Queue the ``MGET`` of one id's :data:`READ_FIELDS`."""
        queue_mget(pipe, [owner + field for field in READ_FIELDS])

    def queue_link(
        self, pipe: Any, cid: str, sid: str, ttl_s: float, fields: Sequence[str]
    ) -> None:
        """Queue: link ``sid`` to ``cid``; drop the shared id's own (older) ``fields``."""
        shared = self.owner("s", sid)
        pipe.set(shared + "cid", cid.encode(), px=ms(max(ttl_s, self._link_ttl_s)))
        if fields:
            pipe.delete(*(shared + field for field in fields))

    def queue_push(
        self,
        pipe: Any,
        home: str,
        cid: str | None,
        sid: str | None,
        link: bytes,
        values: Mapping[str, bytes],
        ttl_s: float,
    ) -> None:
        """Queue a push: the ids it named (``link``) and each pushed namespace's body."""
        ttl_ms = ms(ttl_s)
        pipe.set(home + "link", link, px=ttl_ms)
        for name, body in values.items():
            pipe.set(f"{home}push:{name}", body, px=ttl_ms)
        if cid is not None and sid is not None:
            self.queue_link(pipe, cid, sid, ttl_s, [f"push:{name}" for name in values])

    def queue_cache(
        self,
        pipe: Any,
        home: str,
        cid: str | None,
        sid: str | None,
        values: Mapping[str, bytes],
        ttl_s: float,
    ) -> None:
        """Queue cached lookups (by name)."""
        for name, body in values.items():
            pipe.set(f"{home}cache:{name}", body, px=ms(ttl_s))
        if cid is not None and sid is not None:
            self.queue_link(pipe, cid, sid, ttl_s, [f"cache:{name}" for name in values])

    def queue_decision(
        self, pipe: Any, cid: str | None, sid: str | None, body: bytes, ttl_s: float
    ) -> None:
        """Queue a decision kept under its ids (at least one of them is given)."""
        home = self.home(cid, sid)
        assert home is not None
        pipe.set(home + "decision", body, px=ms(ttl_s))
        if cid is not None and sid is not None:
            self.queue_link(pipe, cid, sid, ttl_s, ["decision"])
