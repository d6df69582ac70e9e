"""From a ``ROUTER_STORE`` URL to a redis-py asyncio client (standalone, Cluster or Sentinel).

Accepted forms (contract §5); query parameters are redis-py's own URL options
(``?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required``) and win over the
defaults set here:

- ``redis://[user:password@]host:6379[/db]``, ``rediss://…`` (TLS), ``unix:///path.sock``
- ``redis+cluster://[user:password@]host:7000[,host2:7001…]`` (``rediss+cluster://``: TLS);
  the hosts are seeds, the rest of the cluster is discovered
- ``redis+sentinel://[user:password@]host:26379[,host2:26379…]/master-name[/db]``
  (``rediss+sentinel://``: TLS to the master and the sentinels); the credentials are
  the master's, ``?sentinel_username=…&sentinel_password=…`` the sentinels' own

Every client gets the settings that keep a call bounded and a restart survivable:
socket timeouts as a backstop only (the store bounds each call itself with
``ROUTER_STORE_TIMEOUT_MS``; the backstop covers what runs outside a call, such as a
cluster client learning its slots), one immediate retry on a dropped connection (so
a connection that a Redis restart closed is redialled within the same call), and a
pool of ``ROUTER_STORE_POOL_SIZE`` connections per server (standalone waits up to the
store timeout for a free connection rather than failing at once).

Nothing here logs or raises a URL that still holds its password: see :func:`redact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

RedisMode = Literal["standalone", "cluster", "sentinel"]
RedisClient = Redis | RedisCluster

SOCKET_BACKSTOP_S = 1.0
"""Smallest socket timeout given to redis-py (calls are bounded more tightly by the store)."""

_CREDENTIALS = re.compile(r"(?P<scheme>[a-z+]+://)(?P<userinfo>[^@/?#]*)@", re.IGNORECASE)
_SECRET_QUERY = re.compile(r"(?P<name>(?:sentinel_)?password=)[^&#\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the password of any URL in it (and ``password=`` values) masked.

    >>> redact("redis+sentinel://app:s3cret@10.0.0.5:26379/main?sentinel_password=x")
    'redis+sentinel://app:***@10.0.0.5:26379/main?sentinel_password=***'
    """

    def mask(match: re.Match[str]) -> str:
        user, colon, _ = match["userinfo"].partition(":")
        # Without a colon the one field may be a bare password (``redis://token@host``).
        return f"{match['scheme']}{user + ':***' if colon else '***'}@"

    return _SECRET_QUERY.sub(r"\g<name>***", _CREDENTIALS.sub(mask, text))


@dataclass(frozen=True, slots=True)
class Connected:
    """A client for the store and what it is connected to (for logs: no secrets)."""

    client: RedisClient
    mode: RedisMode
    where: str
    """The URL with its password masked."""
    helpers: tuple[Redis, ...] = ()
    """Other clients to close with it (the Sentinel clients)."""


def connect(url: str, *, pool_size: int, timeout_s: float) -> Connected:
    """A client for ``url`` (nothing is dialled yet: connections open on first use).

    Raises ``ValueError`` for a URL that cannot be used (the message holds no secret).
    """
    scheme = url.partition("://")[0].lower()
    backstop = max(timeout_s * 10, SOCKET_BACKSTOP_S)
    defaults: dict[str, Any] = {
        "socket_timeout": backstop,
        "socket_connect_timeout": backstop,
        "retry": Retry(NoBackoff(), 1),
    }
    where = redact(url)
    if scheme in ("redis", "rediss", "unix"):
        return Connected(_standalone(url, pool_size, timeout_s, defaults), "standalone", where)
    base, _, kind = scheme.partition("+")
    if kind == "cluster":
        return Connected(_cluster(url, base, pool_size, defaults), "cluster", where)
    if kind == "sentinel":
        client, sentinels = _sentinel(url, base, pool_size, defaults)
        return Connected(client, "sentinel", where, tuple(sentinels))
    raise ValueError(f"ROUTER_STORE: unsupported scheme {scheme!r}")


def _standalone(url: str, pool_size: int, timeout_s: float, defaults: dict[str, Any]) -> Redis:
    try:
        pool = BlockingConnectionPool.from_url(
            url, max_connections=pool_size, timeout=timeout_s, **defaults
        )
    except ValueError as exc:  # redis-py's messages name the bad option, not the URL
        raise ValueError(f"ROUTER_STORE: {exc}") from None
    return Redis.from_pool(pool)


@dataclass(frozen=True, slots=True)
class _Parts:
    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: list[str]
    query: str


def _split(url: str, default_port: int) -> _Parts:
    """Split a URL whose host part may list several ``host:port`` (which urllib refuses)."""
    parts = urlsplit(url)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts: list[tuple[str, int]] = []
    for item in filter(None, hostlist.split(",")):
        host, colon, port = item.rpartition(":") if not item.endswith("]") else (item, "", "")
        if not colon:
            host, port = item, ""
        host = host.strip("[]")
        try:
            hosts.append((host, int(port) if port else default_port))
        except ValueError:
            raise ValueError(f"ROUTER_STORE: bad port in {redact(item)!r}") from None
    if not hosts:
        raise ValueError("ROUTER_STORE: the URL names no host")
    path = [unquote(p) for p in parts.path.split("/") if p]
    return _Parts(hosts, username, password, path, parts.query)


def _query_options(query: str) -> dict[str, Any]:
    """redis-py's typed reading of URL query options (``socket_timeout=0.2`` -> 0.2)."""
    if not query:
        return {}
    try:
        options: dict[str, Any] = dict(parse_url(f"redis://localhost/?{query}"))
    except ValueError as exc:
        raise ValueError(f"ROUTER_STORE: {exc}") from None
    options.pop("host", None)
    return options


def _cluster(url: str, base: str, pool_size: int, defaults: dict[str, Any]) -> RedisCluster:
    parts = _split(url, 6379)
    if parts.path and parts.path != ["0"]:
        raise ValueError("ROUTER_STORE: Redis Cluster has only database 0")
    options = {**defaults, "max_connections": pool_size, **_query_options(parts.query)}
    options.pop("db", None)
    if base == "rediss":
        options["ssl"] = True
    nodes = [ClusterNode(host, port) for host, port in parts.hosts]
    return RedisCluster(
        startup_nodes=nodes, username=parts.username, password=parts.password, **options
    )


def _sentinel(
    url: str, base: str, pool_size: int, defaults: dict[str, Any]
) -> tuple[Redis, list[Redis]]:
    parts = _split(url, 26379)
    if not parts.path:
        raise ValueError("ROUTER_STORE: redis+sentinel:// needs /master-name after the hosts")
    service, db = parts.path[0], 0
    if len(parts.path) > 1:
        try:
            db = int(parts.path[1])
        except ValueError:
            raise ValueError(
                "ROUTER_STORE: the database after the master name is a number"
            ) from None
    options = {**defaults, **_query_options(parts.query)}
    options.pop("db", None)
    sentinel_auth = {
        key: options.pop(f"sentinel_{key}")
        for key in ("username", "password")
        if f"sentinel_{key}" in options
    }
    tls = {k: v for k, v in options.items() if k.startswith("ssl")}
    if base == "rediss":
        options["ssl"] = True
        tls["ssl"] = True
    sentinel_kwargs = {
        **{k: v for k, v in options.items() if k.startswith("socket_")},
        "retry": options["retry"],
        **tls,
        **sentinel_auth,
    }
    sentinel = Sentinel(parts.hosts, sentinel_kwargs=sentinel_kwargs)
    client: Redis = sentinel.master_for(
        service,
        db=db,
        username=parts.username,
        password=parts.password,
        max_connections=pool_size,
        **options,
    )
    return client, list(sentinel.sentinels)
