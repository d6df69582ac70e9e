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

import asyncio
import atexit
import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from router.jsonsafe import CUT_MARK, TOO_DEEP, jsonable
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

_MAX_DEPTH = 32
"""Log values nested deeper than this are replaced by a marker (a line stays bounded)."""
MAX_LOG_STRING = 8192
"""Strings inside logged values longer than this are cut, with a marker."""
_THROTTLE_MAX_KEYS = 1024


_SECRET_KEY = re.compile("|".join(re.escape(part) for part in _SECRET_KEY_PARTS))
_SECRET_KEY_MEMO: dict[str, bool] = {}
_SECRET_KEY_MEMO_MAX = 4096
"""Log keys are mostly the code's own few dozen names; data keys (nested state, attributes)
can be many, so the memo stops growing at this size and the rest are checked each time."""

_SCALARS = frozenset({str, int, float, bool, type(None)})


def _is_secret_key(key: object) -> bool:
    if type(key) is str:
        known = _SECRET_KEY_MEMO.get(key)
        if known is not None:
            return known
    secret = _SECRET_KEY.search(str(key).lower()) is not None
    if type(key) is str and len(_SECRET_KEY_MEMO) < _SECRET_KEY_MEMO_MAX:
        _SECRET_KEY_MEMO[key] = secret
    return secret


def _scrub_secrets(value: Any, depth: int = 0) -> Any:
    """Return ``value`` with every credential-looking key's value replaced, at any depth;
    a long string is cut and nesting deeper than :data:`_MAX_DEPTH` replaced by a marker."""
    if type(value) is str:
        return value if len(value) <= MAX_LOG_STRING else value[:MAX_LOG_STRING] + CUT_MARK
    if type(value) in _SCALARS:
        return value
    if depth > _MAX_DEPTH:
        return TOO_DEEP
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
        for key, value in event_dict.items():
            if _is_secret_key(key) or (not self.log_state and key in STATE_KEYS):
                event_dict[key] = REDACTED
            elif type(value) not in _SCALARS:
                event_dict[key] = _scrub_secrets(value)
        return event_dict


_LEADING_KEYS = ("timestamp", "level", "event", "request_id")


def _leading_keys_first(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Put when, how bad, what and which request at the start of each line (for humans)."""
    ordered = {key: event_dict[key] for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


def render_line(line: Mapping[str, Any]) -> bytes:
    """One log line's JSON; never raises, so that logging cannot fail a request.

    orjson first, as it is; a value it cannot write (an integer beyond 64 bits, nesting
    past its limit) is written in :func:`router.jsonsafe.jsonable`'s bounded form; if even
    that fails, a minimal line says which event could not be rendered.
    """
    with contextlib.suppress(Exception):
        return orjson.dumps(line, default=repr)
    try:
        return orjson.dumps(
            jsonable(line, max_depth=_MAX_DEPTH, max_string=MAX_LOG_STRING), default=repr
        )
    except Exception as exc:
        minimal = {key: str(line.get(key, ""))[:256] for key in _LEADING_KEYS if key in line}
        minimal["log_error"] = f"the line could not be rendered ({type(exc).__name__})"
        return orjson.dumps(minimal)


def _orjson_text(value: Any, **_: Any) -> str:
    return render_line(value).decode()


def _orjson_bytes(value: Any, **_: Any) -> bytes:
    return render_line(value)


_REQUEST_ID: ContextVar[str | None] = ContextVar("router_request_id", default=None)
_process_fields: dict[str, Any] = {}


def bind_request_id(request_id: str) -> Token[str | None]:
    """Put ``request_id`` on every line logged in this context (a request's task) until
    :func:`unbind_request_id` with the token returned."""
    return _REQUEST_ID.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _REQUEST_ID.reset(token)


def bind_process_fields(**fields: Any) -> None:
    """Put ``fields`` on every line this process logs from now on (a worker's pid)."""
    _process_fields.update(fields)


def _merge_bound(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """The request id and the process's fields, under what the call itself gives."""
    request_id = _REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    for key, value in _process_fields.items():
        event_dict.setdefault(key, value)
    return event_dict


def _shared_processors(settings: Settings) -> list[Processor]:
    return [
        _merge_bound,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        Redactor(log_state=settings.log_state),
        _leading_keys_first,
    ]


class LineWriter:
    """Writes log lines to a stream: inside an event loop, all the lines of one loop
    iteration in one write, at the end of that iteration; elsewhere, each at once.

    A busy service logs a line or two per request; one ``write`` + ``flush`` per line is
    a system call each, and a JSON log line costs less to render than to write alone.
    Lines keep their order; none waits longer than one turn of the loop, and
    :meth:`flush` (called at exit and by ``router serve`` when it stops) writes the rest.
    """

    def __init__(self, stream: TextIO) -> None:
        self._binary: BinaryIO | None = getattr(stream, "buffer", None)
        self._text = stream
        self._pending: list[bytes] = []
        self._scheduled = False
        self._lock = threading.Lock()

    def write_line(self, line: str | bytes) -> None:
        data = line.encode("utf-8", "replace") if isinstance(line, str) else line
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: write now
            loop = None
        with self._lock:
            self._pending.append(data)
            if self._scheduled or loop is None:
                write_now = loop is None
            else:
                self._scheduled = True
                loop.call_soon(self.flush)
                write_now = False
        if write_now:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            self._scheduled = False
            if not self._pending:
                return
            data = b"\n".join(self._pending) + b"\n"
            self._pending.clear()
            try:
                if self._binary is not None:
                    self._binary.write(data)
                    self._binary.flush()
                else:
                    self._text.write(data.decode("utf-8", "replace"))
                    self._text.flush()
            except (OSError, ValueError):  # stdout closed or gone: nowhere left to log
                pass


class _LineLogger:
    """The structlog logger: hands each rendered line to the :class:`LineWriter`."""

    def __init__(self, writer: LineWriter) -> None:
        self.msg = writer.write_line
        self.log = self.debug = self.info = self.warn = self.warning = self.msg
        self.err = self.error = self.critical = self.exception = self.fatal = self.msg


_writer: LineWriter | None = None
_fast_level: int | None = None
"""The level :func:`event_line` writes from, when lines are JSON (``None``: use structlog)."""


def flush_logs() -> None:
    """Write out log lines still waiting for their loop iteration to end."""
    if _writer is not None:
        _writer.flush()


atexit.register(flush_logs)


def configure_logging(
    settings: Settings, *, stream: TextIO | None = None, cache_loggers: bool = False
) -> None:
    """Configure structlog (and the standard library's root logger) for this process.

    ``stream`` defaults to the ``sys.stdout`` of the moment of the call (tests that
    capture stdout call this after capturing starts). ``cache_loggers`` lets each logger
    bind its configuration once, on first use (``router serve``): it saves a rebind per
    line, but then a later call here no longer reaches loggers already used, so tests,
    which reconfigure per case, leave it off.
    """
    global _writer, _fast_level
    flush_logs()
    out = stream if stream is not None else sys.stdout
    _writer = writer = LineWriter(out)
    level = _LEVELS[settings.log_level]
    _fast_level = level if settings.log_format == "json" else None
    shared = _shared_processors(settings)
    final: Processor
    stdlib_renderer: Processor
    if settings.log_format == "console":
        final = stdlib_renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        final = structlog.processors.JSONRenderer(serializer=_orjson_bytes)
        stdlib_renderer = structlog.processors.JSONRenderer(serializer=_orjson_text)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, final],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: _LineLogger(writer),
        cache_logger_on_first_use=cache_loggers,
    )
    _route_stdlib_logging(writer, level, shared, stdlib_renderer)


_second_text: tuple[int, str] = (-1, "")


def _utc_timestamp() -> str:
    """Now as structlog's ISO timestamp writes it (``2026-12-07T11:34:42.123456Z``), with
    the date and time of day formatted once a second."""
    global _second_text
    now = time.time_ns() // 1000
    second, micro = divmod(now, 1_000_000)
    if _second_text[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_text = (second, text)
    return f"{_second_text[1]}.{micro:06d}Z"


def event_line(
    logger: structlog.typing.FilteringBoundLogger, level: int, event: str, fields: dict[str, Any]
) -> None:
    """Log ``event`` with ``fields`` as structlog would, cheaper: a line the hot path writes
    once per request (the ``decision`` line) skips the processor chain when lines are JSON.

    Only for fields the caller knows hold no credential and no conversation data (ids,
    names, statuses, numbers): they are not redacted. The line has the same shape as any
    other: timestamp, level, event and the request id first.
    """
    if _fast_level is None or _writer is None:
        logger.log(level, event, **fields)
        return
    if level < _fast_level:
        return
    line: dict[str, Any] = {
        "timestamp": _utc_timestamp(),
        "level": logging.getLevelName(level).lower(),
        "event": event,
    }
    request_id = _REQUEST_ID.get()
    if request_id is not None:
        line["request_id"] = request_id
    if _process_fields:
        line.update(_process_fields)
    line.update(fields)
    _writer.write_line(render_line(line))


class _RouterLogHandler(logging.Handler):
    """The root handler :func:`configure_logging` installs (so a second call replaces it):
    standard-library records, formatted by structlog, through the same :class:`LineWriter`."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line: str | bytes = self.format(record)
        except Exception:  # a record that cannot be formatted must not break the caller
            self.handleError(record)
            return
        self._writer.write_line(line)


def remove_logging_handler() -> None:
    """Take the handler :func:`configure_logging` installed off the root logger (tests)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _RouterLogHandler)]:
        root.removeHandler(handler)


def _route_stdlib_logging(
    writer: LineWriter, level: int, shared: list[Processor], renderer: Processor
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
    handler = _RouterLogHandler(writer)
    handler.setFormatter(formatter)
    remove_logging_handler()
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log is replaced by the request middleware's own line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class Throttle:
    """At most one log line per key and interval; the lines held back are counted.

    An upstream that hangs fails every lookup of a burst at once: one warning each would
    be hundreds of identical lines written in the milliseconds the answers need. The
    first line of an interval goes out at once; the next one after it says how many were
    held back (``suppressed``), so nothing is hidden, only folded.

        >>> throttle = Throttle(1.0)
        >>> throttle.allow(("upstream_lookup_failed", "handoff", "timeout"))
        0
    """

    __slots__ = ("_clock", "_held", "_interval_s", "_last")

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, key: Hashable) -> int | None:
        """``None`` to hold this line back, else how many lines of ``key`` were held back
        since the last one let through."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) > _THROTTLE_MAX_KEYS:
            self._last.clear()
        self._last[key] = now
        return self._held.pop(key, 0)
