"""``router serve``: run the HTTP service until SIGTERM/SIGINT, then drain and exit 0.

Refuses to listen beyond loopback without API keys (an open router on a network would
let anyone read decisions and push state). Rules are loaded before the port opens, then
watched; ``SIGHUP`` forces a reload. On SIGTERM the listening socket closes first, the
requests in flight finish (up to :data:`DRAIN_TIMEOUT_S`), then the session and the store
are closed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from aiohttp import web

from router.http.app import create_app
from router.observe import configure_logging
from router.reload import RulesReloader
from router.rules_registry import RulesRegistry
from router.settings import Settings

log = structlog.get_logger("router.serve")

DRAIN_TIMEOUT_S = 8.0
"""Longest wait for in-flight requests at shutdown (Kubernetes' grace period is 30 s; the
contract wants an exit within 10 s)."""

EXIT_OK = 0
EXIT_USAGE = 2


def run(settings: Settings, *, workers: int = 1) -> int:
    """Serve until told to stop; the process's exit status (0 clean, 2 refused to start)."""
    if workers != 1:
        sys.stderr.write("router serve: --workers other than 1 is not supported yet\n")
        return EXIT_USAGE
    if not settings.parsed_api_keys() and not settings.host_is_loopback():
        sys.stderr.write(
            f"router serve: refusing to listen on {settings.host} without API keys; "
            "set ROUTER_API_KEYS, or listen on 127.0.0.1\n"
        )
        return EXIT_USAGE
    configure_logging(settings)
    return _run_loop(_serve(settings))


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
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


async def _serve(settings: Settings) -> int:
    registry = RulesRegistry()
    reloader = RulesReloader(registry, settings.rules)
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
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
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
    watcher = asyncio.create_task(reloader.watch(stop), name="rules-watcher")
    watcher.add_done_callback(_report_watcher_end)
    try:
        await stop.wait()
        log.info("shutting_down", drain_timeout_s=DRAIN_TIMEOUT_S)
    finally:
        for handled in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(handled)
        await runner.cleanup()  # stop accepting, drain in-flight, close session and store
        await asyncio.gather(watcher, return_exceptions=True)
    log.info("stopped")
    return EXIT_OK


def _report_watcher_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("rules_watcher_failed", exc_info=task.exception())


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    """The port actually listened on (``ROUTER_PORT=0`` picks a free one)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
