"""``router serve``: run the HTTP service until SIGTERM/SIGINT, then drain and exit 0.

Refuses to listen beyond loopback without API keys (an open router on a network would
let anyone read decisions and push state), and refuses several workers over the memory
store (they would not share pushed state, the lookup cache or decisions). One process
serves (:func:`router.server.serve`), or, with ``--workers N``, the supervisor of
:mod:`router.workers` runs N of them on one listening socket. That supervising process
must never create a metric (in prometheus-client's multiprocess mode it would write
series of its own), which is why neither this module nor :mod:`router.server` imports
the HTTP application at import time.
"""

from __future__ import annotations

import sys

from router.observe import configure_logging
from router.server import EXIT_USAGE, run_loop, serve
from router.settings import Settings


def run(settings: Settings) -> int:
    """Serve until told to stop; the process's exit status (0 clean, 1 failed, 2 refused).

    ``settings.workers`` processes serve the port: one runs right here, several run under
    the supervisor of :mod:`router.workers`.
    """
    refusal = _refusal(settings)
    if refusal is not None:
        sys.stderr.write(f"router serve: {refusal}\n")
        return EXIT_USAGE
    configure_logging(settings, cache_loggers=True)
    if settings.workers > 1:
        from router.workers import supervise  # multiprocessing only when asked for

        return supervise(settings)
    return run_loop(serve(settings))


def _refusal(settings: Settings) -> str | None:
    """Why these settings must not start the service (one line), or ``None``."""
    if not settings.parsed_api_keys() and not settings.host_is_loopback():
        return (
            f"refusing to listen on {settings.host} without API keys; "
            "set ROUTER_API_KEYS, or listen on 127.0.0.1"
        )
    if settings.workers > 1 and settings.store == "memory":
        return (
            f"refusing {settings.workers} workers with ROUTER_STORE=memory: workers would not "
            "share pushed state, the lookup cache or decisions; "
            "use ROUTER_STORE=redis://… or --workers 1"
        )
    return None
