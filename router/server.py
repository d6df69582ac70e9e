"""One serving process: the event loop, the HTTP app, the rules watcher, signals, drain.

:func:`serve` runs in the process ``router serve`` starts, or in each worker of
:mod:`router.workers`. It listens on ``settings.host``/``settings.port`` (or on sockets a
supervisor bound), loads the rules before the port opens and then watches them;
``SIGHUP`` forces a reload. On SIGTERM/SIGINT the listening socket closes first, the
requests in flight finish (up to :data:`DRAIN_TIMEOUT_S`), then the decision service
closes its session and store.

The HTTP application and the reloader define the metric families, so they are imported
inside :func:`serve`: a supervising process that imports this module creates no metric.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import structlog
from aiohttp import web

from router.observe import flush_logs
from router.settings import Settings

log = structlog.get_logger("router.serve")

DRAIN_TIMEOUT_S = 6.0
"""Longest wait for in-flight requests at shutdown (Kubernetes' grace period is 30 s; the
contract wants an exit within 10 s)."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when it is installed, else on asyncio's loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main)


async def serve(
    settings: Settings,
    *,
    sockets: Sequence[socket.socket] = (),
    started: Callable[[asyncio.Event], None] | None = None,
    early_signals: Sequence[int] = (),
) -> int:
    """Serve in this process until SIGTERM/SIGINT, drain, and return 0.

    Listens on ``settings.host``/``settings.port``, or on ``sockets`` already bound and
    listening (a worker's share of the supervisor's socket). ``started`` is called once
    requests are being served and the signal handlers are in place, with the event that
    stops the service. ``early_signals`` holds signals that arrived before those handlers
    were in place; it is read once they are, and each is acted on as if it came now.
    """
    from router.http.app import create_app
    from router.http.protocol import install as install_protocol
    from router.reload import RulesReloader
    from router.rules_registry import RulesRegistry

    registry = RulesRegistry(settings.default_ruleset)
    reloader = RulesReloader(
        registry,
        settings.rules,
        settle_ms=settings.reload_settle_ms,
        remove_grace_s=settings.reload_remove_grace_s,
    )
    await asyncio.to_thread(reloader.reload)
    reason = registry.not_ready_reason()
    if reason is not None:
        log.warning("not_ready", reason=reason, rules=str(settings.rules))

    runner = web.AppRunner(
        create_app(settings, rules_registry=registry),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=DRAIN_TIMEOUT_S,
    )
    await runner.setup()
    install_protocol(runner, read_timeout_s=settings.read_timeout_s, route_lane=settings.route_lane)
    sites: list[web.BaseSite] = [web.SockSite(runner, sock) for sock in sockets]
    try:
        for site in sites or [web.TCPSite(runner, settings.host, settings.port)]:
            await site.start()
    except OSError as exc:
        await runner.cleanup()  # closes the service's session and store: no "Unclosed" noise
        sys.stderr.write(
            f"router serve: cannot listen on {settings.host}:{settings.port}: "
            f"{(os.strerror(exc.errno) if exc.errno else str(exc)).lower()}\n"
        )
        flush_logs()
        return EXIT_USAGE
    _freeze_startup_objects()
    log.info(
        "listening",
        host=settings.host,
        port=_bound_port(runner, settings.port),
        rules=str(settings.rules),
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request_reload, True)
    for signum in early_signals:
        if signum == signal.SIGHUP:
            reloader.request_reload(True)
        else:
            stop.set()
    watcher = asyncio.create_task(reloader.watch(stop), name="rules-watcher")
    watcher.add_done_callback(_report_watcher_end)
    if started is not None:
        started(stop)
    try:
        await stop.wait()
        log.info("shutting_down", drain_timeout_s=DRAIN_TIMEOUT_S)
    finally:
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(handled)
        await runner.cleanup()  # stop accepting, drain in-flight, close session and store
        await asyncio.gather(watcher, return_exceptions=True)
    log.info("stopped")
    flush_logs()
    return EXIT_OK


def _freeze_startup_objects() -> None:
    """Keep what start-up made (modules, rules, the app) out of the garbage collector's sight.

    Those few hundred thousand objects live as long as the process, yet every full
    collection walks them all: tens of milliseconds, a stall that turns into store and
    upstream timeouts under load. ``gc.freeze`` moves them to a generation no collection
    visits; objects made later (per request, a reloaded ruleset) are collected as usual.
    """
    gc.collect()
    gc.freeze()


def _report_watcher_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("rules_watcher_failed", exc_info=task.exception())


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    """The port actually listened on (``ROUTER_PORT=0`` picks a free one)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
