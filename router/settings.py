"""Every ``ROUTER_*`` and ``POLYAI_*`` setting, read and validated once at start.

A bad value stops the start with one line that names the variable
(see :func:`load_settings`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.engine.model import NAME_PATTERN
from router.engine.sensitive import PathError, SensitivePaths, parse_path

REGIONS = ("us-1", "uk-1", "euw-1")
STORE_SCHEMES = (
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
    "unix",
)
"""URL schemes ``ROUTER_STORE`` accepts besides ``memory`` (``rediss``: TLS)."""
_HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


ROLES = ("route", "push", "read", "explain", "ops")
"""What a key may do (contract §8): ``route`` (``/v1/route``, the platform endpoints),
``push`` (``/v1/events/polyai``), ``read`` (decision read-back), ``explain`` (explain and
replay), ``ops`` (``/ops``, ``/v1/rulesets`` and reload errors)."""
ALL_ROLES = frozenset(ROLES)


class ApiKey:
    """One API key, the rulesets it may use (``None``: every ruleset) and its roles."""

    __slots__ = ("digest", "key", "roles", "rulesets")

    def __init__(
        self,
        key: str,
        rulesets: frozenset[str] | None,
        roles: frozenset[str] = ALL_ROLES,
    ) -> None:
        self.key = key
        self.rulesets = rulesets
        self.roles = roles
        # Compared in constant time against the digest of what a caller presents.
        self.digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()

    def allows(self, ruleset: str) -> bool:
        return self.rulesets is None or ruleset in self.rulesets

    def has(self, role: str) -> bool:
        """Whether the key may do what ``role`` stands for."""
        return role in self.roles

    @property
    def scoped(self) -> bool:
        """Whether the key is limited to some rulesets."""
        return self.rulesets is not None

    def __repr__(self) -> str:  # never show the secret
        return (
            f"ApiKey(<redacted>, rulesets={sorted(self.rulesets) if self.rulesets else '*'}, "
            f"roles={sorted(self.roles)})"
        )


KEYS_SYNTAX = "key, key=ruleset1|ruleset2, key;roles=route|read or key=ruleset1;roles=read"


def parse_api_keys(value: str) -> tuple[ApiKey, ...]:
    """The keys of a ``ROUTER_API_KEYS`` value (see :data:`KEYS_SYNTAX`; docs/api.md).

    Entries are separated by ``,``; each is ``key[=ruleset|…][;roles=role|…]``. A key
    without ``roles`` has every role (v1.1 behaviour), except that a key limited to
    rulesets never has ``push``: a push names no ruleset, and its facts serve whichever
    ruleset routes the conversation, so it cannot be kept within a key's rulesets.
    Raises ``ValueError`` with a message that never quotes a key.
    """
    keys: list[ApiKey] = []
    items = [part.strip() for part in value.split(",")]
    for position, item in enumerate(filter(None, items), start=1):
        head, *options = (part.strip() for part in item.split(";"))
        key, sep, scope = head.partition("=")
        if not key.strip():
            raise ValueError(f"entry {position} has an empty key (expected {KEYS_SYNTAX})")
        rulesets = frozenset(s.strip() for s in scope.split("|") if s.strip()) if sep else None
        if sep and not rulesets:
            raise ValueError(f"entry {position} has '=' but names no ruleset")
        roles = ALL_ROLES
        for option in options:
            name, eq, listed = option.partition("=")
            if name.strip() != "roles" or not eq:
                raise ValueError(
                    f"entry {position}: after ';' only 'roles=role|role' is understood "
                    f"(roles: {', '.join(ROLES)})"
                )
            given = [r.strip() for r in listed.split("|") if r.strip()]
            unknown = sorted(set(given) - ALL_ROLES)
            if unknown or not given:
                what = f"unknown role '{unknown[0]}'" if unknown else "'roles=' names no role"
                raise ValueError(f"entry {position}: {what}; roles are {', '.join(ROLES)}")
            roles = frozenset(given)
            if rulesets is not None and "push" in roles:
                raise ValueError(
                    f"entry {position}: a key limited to rulesets cannot have the push role "
                    "(pushed facts belong to a conversation, which every ruleset may route); "
                    "give push to a key without '=rulesets'"
                )
        if rulesets is not None:
            roles = roles - {"push"}  # see above: a push cannot be kept to some rulesets
        keys.append(ApiKey(key.strip(), rulesets, roles))
    return tuple(keys)


class Settings(BaseSettings):
    """The service's configuration (contract §5). Flags on ``router serve`` override."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    rules: Path = Field(default=Path("./rules"), alias="ROUTER_RULES")
    host: str = Field(default="127.0.0.1", alias="ROUTER_HOST")
    port: int = Field(default=8080, ge=0, le=65535, alias="ROUTER_PORT")
    workers: int = Field(default=1, ge=1, le=256, alias="ROUTER_WORKERS")
    """Serving processes sharing the port (``router serve --workers``); more than one needs
    a shared store."""
    api_keys: str = Field(default="", alias="ROUTER_API_KEYS", repr=False)
    budget_ms: int = Field(default=500, ge=1, alias="ROUTER_BUDGET_MS")
    max_budget_ms: int = Field(default=5000, ge=1, alias="ROUTER_MAX_BUDGET_MS")
    store: str = Field(default="memory", alias="ROUTER_STORE")
    cache_ttl_s: float = Field(default=600, ge=0, alias="ROUTER_CACHE_TTL_S")
    push_ttl_s: float = Field(default=3600, gt=0, alias="ROUTER_PUSH_TTL_S")
    decision_ttl_s: float = Field(default=86400, gt=0, alias="ROUTER_DECISION_TTL_S")
    webhook_secret: str = Field(default="", alias="ROUTER_WEBHOOK_SECRET", repr=False)
    webhook_tolerance_s: float = Field(default=300, gt=0, alias="ROUTER_WEBHOOK_TOLERANCE_S")
    """Largest distance of a push signature's ``t`` from the router's clock (v1.2)."""
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", alias="ROUTER_LOG_LEVEL"
    )
    log_format: Literal["json", "console"] = Field(default="json", alias="ROUTER_LOG_FORMAT")
    log_state: bool = Field(default=False, alias="ROUTER_LOG_STATE")
    polyai_region: Literal["us-1", "uk-1", "euw-1"] = Field(default="us-1", alias="POLYAI_REGION")
    polyai_account_id: str = Field(default="", alias="POLYAI_ACCOUNT_ID")
    polyai_project_id: str = Field(default="", alias="POLYAI_PROJECT_ID")
    polyai_agent_id: str = Field(default="", alias="POLYAI_AGENT_ID")
    polyai_api_key: str = Field(default="", alias="POLYAI_API_KEY", repr=False)
    polyai_handoff_url: str = Field(default="", alias="POLYAI_HANDOFF_URL")
    polyai_data_url: str = Field(default="", alias="POLYAI_DATA_URL")
    breaker_failures: int = Field(default=5, ge=1, alias="ROUTER_BREAKER_FAILURES")
    breaker_reset_s: float = Field(default=10, gt=0, alias="ROUTER_BREAKER_RESET_S")
    memory_max_entries: int = Field(default=100_000, ge=1, alias="ROUTER_MEMORY_MAX_ENTRIES")
    store_timeout_ms: float = Field(default=50, gt=0, alias="ROUTER_STORE_TIMEOUT_MS")
    store_prefix: str = Field(default="router:", max_length=64, alias="ROUTER_STORE_PREFIX")
    store_pool_size: int = Field(default=50, ge=1, le=10_000, alias="ROUTER_STORE_POOL_SIZE")
    store_outbox_max: int = Field(default=10_000, ge=0, alias="ROUTER_STORE_OUTBOX_MAX")
    upstream_max_bytes: int = Field(default=1_048_576, ge=1, alias="ROUTER_UPSTREAM_MAX_BYTES")
    max_body_bytes: int = Field(default=65_536, ge=1, alias="ROUTER_MAX_BODY_BYTES")
    read_timeout_s: float = Field(default=10, gt=0, alias="ROUTER_READ_TIMEOUT_S")
    """A request whose head, or whose body, has not arrived in this time is closed (v1.2)."""
    route_lane: bool = Field(default=True, alias="ROUTER_ROUTE_LANE")
    """Answer well-formed ``POST /v1/route`` and platform-endpoint calls on the express lane
    (:mod:`router.http.route_lane`); ``false`` sends every request through aiohttp."""
    default_ruleset: str = Field(default="default", alias="ROUTER_DEFAULT_RULESET")
    """The ruleset readiness depends on (and requests use when they name none)."""
    reload_settle_ms: int = Field(default=500, ge=0, le=600_000, alias="ROUTER_RELOAD_SETTLE_MS")
    """How long a changed rule file's bytes must stay the same before they are activated."""
    sensitive_paths: str = Field(default="", alias="ROUTER_SENSITIVE_PATHS")
    """Comma-separated paths sensitive in every ruleset, besides each file's own (v1.2)."""
    store_secret: str = Field(default="", alias="ROUTER_STORE_SECRET", repr=False)
    """Encrypts sensitive values kept in a shared store; without it they are not kept
    there (v1.2)."""
    reload_remove_grace_s: float = Field(
        default=10, ge=0, le=86_400, alias="ROUTER_RELOAD_REMOVE_GRACE_S"
    )
    """How long a ruleset whose file disappeared keeps serving, waiting for it to return."""
    record_max: int = Field(default=100_000, ge=0, le=10_000_000, alias="ROUTER_RECORD_MAX")
    """Decision records kept for replay (contract §8): the in-memory ring's length, or the
    shared store's stream's (approximate) maximum length; 0 records none."""
    record_file: Path | None = Field(default=None, alias="ROUTER_RECORD_FILE")
    """A JSON-lines file every decision record is also appended to (by a background writer)."""
    record_file_buffer: int = Field(
        default=10_000, ge=1, le=1_000_000, alias="ROUTER_RECORD_FILE_BUFFER"
    )
    """Records waiting for the file writer; past this, new ones are dropped (and counted)."""
    replay_timeout_s: float = Field(default=30, gt=0, le=3600, alias="ROUTER_REPLAY_TIMEOUT_S")
    """Longest ``POST /v1/replay`` works before answering with what it has replayed."""
    card_secret: str = Field(default="", alias="ROUTER_CARD_SECRET", repr=False)
    """Signs agent card links (contract §9); empty: answers carry no ``card_url``."""
    card_ttl_s: int = Field(default=3600, ge=1, le=31 * 86_400, alias="ROUTER_CARD_TTL_S")
    """How long a card link stays valid."""
    card_frame_ancestors: str = Field(default="'self'", alias="ROUTER_CARD_FRAME_ANCESTORS")
    """The card's CSP ``frame-ancestors`` sources: the agent desktops that may embed it."""
    card_base_url: str = Field(default="", alias="ROUTER_CARD_BASE_URL")
    """The router's URL as agent desktops reach it, prefixed to ``card_url`` (empty: the
    link is a path, ``/agent/card/…``, relative to the router)."""
    twilio_auth_token: str = Field(default="", alias="ROUTER_TWILIO_AUTH_TOKEN", repr=False)
    """Checks ``X-Twilio-Signature`` on the Twilio endpoints (contract §7.2)."""
    sip_conversation_header: str = Field(
        default="X-Conversation-Id", alias="ROUTER_SIP_CONVERSATION_HEADER"
    )
    sip_shared_header: str = Field(default="X-Shared-Id", alias="ROUTER_SIP_SHARED_HEADER")
    trust_proxy: bool = Field(default=False, alias="ROUTER_TRUST_PROXY")
    """Trust ``X-Forwarded-Proto``/``X-Forwarded-Host`` for the URL Twilio signed."""
    emergency_queue: str = Field(
        default="fallback", min_length=1, max_length=64, alias="ROUTER_EMERGENCY_QUEUE"
    )
    """The queue the platform endpoints name when no ruleset can decide (none loaded)."""

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: object) -> object:
        if isinstance(value, str) and value.startswith("tcp://"):
            raise ValueError(
                f"'{value}' looks like a Kubernetes service link for a Service named 'router': "
                "set ROUTER_PORT to a number in the pod spec, or enableServiceLinks: false"
            )
        return value

    @field_validator("polyai_handoff_url", "polyai_data_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("card_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                "must be an http:// or https:// URL with no query, e.g. https://router.example.com"
            )
        return value.rstrip("/")

    @field_validator("card_frame_ancestors")
    @classmethod
    def _frame_ancestors(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value or not re.fullmatch(r"[^;,\x00-\x1f\x7f]+", value):
            raise ValueError(
                "must be CSP frame-ancestors sources separated by spaces, e.g. "
                "\"'self' https://*.my.connect.aws https://flex.twilio.com\" (no ';' or ',')"
            )
        return value

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        if value == "memory":
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in STORE_SCHEMES:
            raise ValueError(
                "must be 'memory' or a redis://, rediss://, redis+cluster:// "
                "or redis+sentinel:// URL"
            )
        # The messages below never echo the URL: it may hold a password.
        if scheme.lower() != "unix":
            hosts = rest.split("?", 1)[0].split("/", 1)[0].rpartition("@")[2]
            if not hosts:
                raise ValueError(f"a {scheme}:// URL needs a host (and port)")
        if scheme.lower().endswith("+sentinel"):
            path = rest.split("?", 1)[0].partition("/")[2]
            if not path.split("/", 1)[0]:
                raise ValueError(
                    "a redis+sentinel:// URL names the master: "
                    "redis+sentinel://host:26379/master-name"
                )
        return value

    @field_validator("default_ruleset")
    @classmethod
    def _ruleset_name(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(
                "must be a ruleset name: letters, digits, '_', '-' and '.', starting with a "
                "letter or a digit, at most 128 characters"
            )
        return value

    @field_validator("record_file", mode="before")
    @classmethod
    def _record_file(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("sip_conversation_header", "sip_shared_header")
    @classmethod
    def _sip_header(cls, value: str) -> str:
        if not _HEADER_NAME.fullmatch(value):
            raise ValueError(
                "must be a SIP header name: letters, digits and '-' (e.g. X-Conversation-Id)"
            )
        return value

    @field_validator("emergency_queue")
    @classmethod
    def _emergency_queue(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("must be a queue name of printable characters, without spaces around")
        return value

    @field_validator("store_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if "{" in value or "}" in value:
            raise ValueError("must not hold '{' or '}' (they would change the Redis hash tag)")
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, value: str) -> str:
        parse_api_keys(value)
        return value

    @field_validator("sensitive_paths")
    @classmethod
    def _sensitive(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                parse_path(part)
            except PathError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("store_secret")
    @classmethod
    def _store_secret(cls, value: str) -> str:
        if value and len(value) < 16:
            raise ValueError(
                "must be at least 16 characters (use a long random value, e.g. "
                "`openssl rand -base64 32`)"
            )
        return value

    @model_validator(mode="after")
    def _budgets(self) -> Settings:
        if self.budget_ms > self.max_budget_ms:
            raise ValueError("ROUTER_BUDGET_MS must not exceed ROUTER_MAX_BUDGET_MS")
        return self

    # Derived values -------------------------------------------------------

    @property
    def handoff_base_url(self) -> str:
        return self.polyai_handoff_url or f"https://api.{self.polyai_region}.platform.polyai.app"

    @property
    def data_base_url(self) -> str:
        return self.polyai_data_url or f"https://api.{self.polyai_region}.poly.ai"

    @property
    def agent_id(self) -> str:
        return self.polyai_agent_id or self.polyai_project_id

    @property
    def lookups_enabled(self) -> bool:
        return bool(self.polyai_api_key)

    def parsed_api_keys(self) -> tuple[ApiKey, ...]:
        return parse_api_keys(self.api_keys)

    def sensitive(self) -> SensitivePaths:
        """``ROUTER_SENSITIVE_PATHS`` and the paths always sensitive (``context.ani``)."""
        return SensitivePaths.compile(
            p.strip() for p in self.sensitive_paths.split(",") if p.strip()
        )

    def host_is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


_FIELD_TO_ENV = {name: (field.alias or name) for name, field in Settings.model_fields.items()}


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and ``overrides``, e.g. from flags) into :class:`Settings`.

    Raises :class:`SettingsError` whose message names the variable at fault.
    """
    try:
        return Settings(**{_FIELD_TO_ENV.get(k, k): v for k, v in overrides.items()})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][0] if first["loc"] else ""
        name = _FIELD_TO_ENV.get(str(loc), str(loc)) or "configuration"
        raise SettingsError(f"{name}: {first['msg']}") from None
