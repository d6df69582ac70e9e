"""Logging set-up: one JSON object per line on stdout, secrets and state values kept out.

Every module logs through ``structlog.get_logger()``; :func:`configure_logging` decides
once, at start, how those lines look (JSON by default, ``ROUTER_LOG_FORMAT=console`` for
humans), which level passes, and what is redacted. Lines logged through the standard
library (aiohttp's own loggers, for instance) are rendered the same way, so stdout holds
nothing but JSON lines.

    >>> configure_logging(load_settings())
    >>> structlog.get_logger().info("decision", queue="billing")
    {"event": "decision", "queue": "billing", "level": "info", "timestamp": "2026-…Z"}
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from router.settings import Settings

REDACTED = "[redacted]"

# Key names (any depth, case-insensitive substring) that may hold a credential.
_SECRET_KEY_PARTS = (
    "authorization",
    "api_key",
    "apikey",
    "api-key",
    "password",
    "secret",
    "token",
    "signature",
    "cookie",
    "credential",
)

# Top-level keys whose values are conversation data (state, handoff data, the caller's
# context, rendered labels): logged only with ROUTER_LOG_STATE=true.
STATE_KEYS = frozenset(
    {"state", "handoff", "data", "conversation", "facts", "context", "attributes", "label", "body"}
)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_MAX_DEPTH = 6


def _is_secret_key(key: object) -> bool:
    lowered = str(key).lower()
    return any(part in lowered for part in _SECRET_KEY_PARTS)


def _scrub_secrets(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with every credential-looking key's value replaced, at any depth."""
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if _is_secret_key(k) else _scrub_secrets(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub_secrets(v, depth + 1) for v in value]
    return value


class Redactor:
    """structlog processor: credentials never reach a log; state values only when allowed.

    Credentials (API keys, ``Authorization``, signatures, secrets) are redacted at any
    depth whatever the settings. Conversation data (``state``, ``handoff``, ``context``
    …) is redacted at the top level of an event unless ``log_state`` is true.
    """

    def __init__(self, *, log_state: bool) -> None:
        self.log_state = log_state

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        for key in list(event_dict):
            if _is_secret_key(key) or (not self.log_state and key in STATE_KEYS):
                event_dict[key] = REDACTED
            else:
                event_dict[key] = _scrub_secrets(event_dict[key])
        return event_dict


_LEADING_KEYS = ("timestamp", "level", "event", "request_id")


def _leading_keys_first(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Put when, how bad, what and which request at the start of each line (for humans)."""
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _orjson_text(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=repr).decode()


def _orjson_bytes(value: Any, **_: Any) -> bytes:
    return orjson.dumps(value, default=repr)


def _shared_processors(settings: Settings) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        Redactor(log_state=settings.log_state),
        _leading_keys_first,
    ]


def configure_logging(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Configure structlog (and the standard library's root logger) for this process.

    ``stream`` defaults to the ``sys.stdout`` of the moment of the call (tests that
    capture stdout call this after capturing starts).
    """
    out = stream if stream is not None else sys.stdout
    level = _LEVELS[settings.log_level]
    shared = _shared_processors(settings)
    exception_renderer: Processor = structlog.processors.format_exc_info
    final: Processor
    logger_factory: Any
    if settings.log_format == "console":
        final = structlog.dev.ConsoleRenderer(colors=False)
        logger_factory = structlog.PrintLoggerFactory(file=out)
        stdlib_renderer: Processor = structlog.dev.ConsoleRenderer(colors=False)
    else:
        final = structlog.processors.JSONRenderer(serializer=_orjson_bytes)
        buffer = getattr(out, "buffer", None)
        if buffer is not None:
            logger_factory = structlog.BytesLoggerFactory(file=buffer)
        else:  # a plain text stream (io.StringIO in tests): render text instead of bytes
            final = structlog.processors.JSONRenderer(serializer=_orjson_text)
            logger_factory = structlog.PrintLoggerFactory(file=out)
        stdlib_renderer = structlog.processors.JSONRenderer(serializer=_orjson_text)
    structlog.configure(
        processors=[*shared, exception_renderer, final],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,  # tests reconfigure logging per case
    )
    _route_stdlib_logging(out, level, shared, stdlib_renderer)


class _RouterLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler :func:`configure_logging` installs (so a second call replaces it)."""


def remove_logging_handler() -> None:
    """Take the handler :func:`configure_logging` installed off the root logger (tests)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _RouterLogHandler)]:
        root.removeHandler(handler)


def _route_stdlib_logging(
    out: TextIO, level: int, shared: list[Processor], renderer: Processor
) -> None:
    """Send standard-library log records (aiohttp, asyncio) through the same processors."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _RouterLogHandler(out)
    handler.setFormatter(formatter)
    remove_logging_handler()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log is replaced by the request middleware's own line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
