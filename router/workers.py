"""Several worker processes serving one port: ``router serve --workers N``.

A supervising process binds the listening socket once and starts N workers; each runs
:func:`router.server.serve` (its own uvloop loop, app, store client and rules watcher) on
its inherited copy of that socket, and the kernel hands each new connection to whichever
worker accepts it first. The supervisor serves nothing itself: it forwards signals,
replaces workers that die, and exits once they have all stopped.

Why one socket bound by the supervisor rather than ``SO_REUSEPORT`` (one socket per
worker): the port is held for the supervisor's whole life, so it cannot be taken by
another program while a worker restarts, and ``--port 0`` needs no trick to give every
worker the same port; a worker that dies loses no connection (with ``SO_REUSEPORT`` the
connections queued on its own socket are reset); and it behaves the same on Linux and
macOS, where ``SO_REUSEPORT`` does not balance. Connections still spread evenly: 200
``wrk`` connections to two idle workers split 106/94 in a trial run.

Why the ``spawn`` start method: each worker begins in a fresh interpreter, so it shares
no event loop, lock, thread or logging handler with the supervisor, and it picks
prometheus-client's multiprocess value class from ``PROMETHEUS_MULTIPROC_DIR``, set
before the first worker starts. The cost, about a second of imports, is paid only when a
worker starts.

Metrics: every worker writes its series to files in ``PROMETHEUS_MULTIPROC_DIR`` (a
fresh temporary folder, removed at exit, unless the variable is set; a folder given that
way is emptied of ``*.db`` files at start, as prometheus-client requires), and every
worker's ``/metrics`` adds up all of them. Counters and histograms of a worker that died
stay counted; its live gauges are dropped (``mark_process_dead``).

Signals: SIGTERM and SIGINT are passed on to every worker, which drains and exits 0;
a worker still running :data:`STOP_TIMEOUT_S` after the first one is killed (exit 1).
SIGHUP is passed on to every worker (each forces a reload). The signals are blocked
while a worker process is being created and it unblocks them once it can record them,
so a signal sent while a worker starts is acted on, never lost or fatal to it.

Restarts: a worker that dies is replaced after a delay that doubles with each death in
a row (:data:`FIRST_RESTART_DELAY_S` up to :data:`MAX_RESTART_DELAY_S`). A worker slot
whose process dies :data:`MAX_START_FAILURES` times in a row before serving stops
everything with exit status 1: a worker that cannot start will not start next time.
A worker notices the supervisor's death (its link to it closes) and stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import structlog

from router.observe import bind_process_fields, configure_logging
from router.server import EXIT_FAILED, EXIT_OK, EXIT_USAGE, run_loop, serve
from router.settings import Settings

log = structlog.get_logger("router.workers")

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_TIMEOUT_S = 9.5
"""Longest wait for the workers after the first SIGTERM/SIGINT (each drains for up to
``router.server.DRAIN_TIMEOUT_S``); past it they are killed, to be gone within 10 s."""
FIRST_RESTART_DELAY_S = 0.5
MAX_RESTART_DELAY_S = 10.0
STABLE_AFTER_S = 30.0
"""A worker that served this long before dying starts the restart delays afresh."""
MAX_START_FAILURES = 3
BACKLOG = 128
"""The listening socket's queue of connections not yet accepted (aiohttp's default)."""
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_READY = b"ready"


# The supervisor ----------------------------------------------------------------------


def supervise(settings: Settings) -> int:
    """Serve ``settings.workers`` processes on one port until SIGTERM/SIGINT.

    The exit status is 0 when every worker stopped cleanly; 1 when the port cannot be
    bound, when workers keep dying before they serve, or when a worker did not stop
    cleanly; 2 when ``PROMETHEUS_MULTIPROC_DIR`` names a folder that cannot be used.
    """
    try:
        sockets = bind_sockets(settings.host, settings.port)
    except OSError as exc:
        log.error(
            "cannot_listen",
            host=settings.host,
            port=settings.port,
            message=exc.strerror or str(exc),
        )
        return EXIT_FAILED
    try:
        with multiprocess_metrics_dir() as metrics_dir:
            port = sockets[0].getsockname()[1]
            log.info(
                "workers_starting",
                host=settings.host,
                port=port,
                workers=settings.workers,
                metrics_dir=str(metrics_dir),
            )
            return _Supervisor(settings, sockets, port).run()
    except MetricsDirError as exc:
        sys.stderr.write(f"router serve: {exc}\n")
        return EXIT_USAGE
    finally:
        for sock in sockets:
            sock.close()


def bind_sockets(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` resolves to, all on one port.

    Like asyncio's ``create_server``, a name such as ``localhost`` gets a socket per
    address; port 0 takes the free port the first bind was given for all of them.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class MetricsDirError(Exception):
    """No folder for the workers' metrics: the one named cannot be used, or none can be made."""


@contextlib.contextmanager
def multiprocess_metrics_dir() -> Iterator[Path]:
    """The folder prometheus-client's multiprocess mode keeps every worker's series in.

    ``PROMETHEUS_MULTIPROC_DIR`` when set (emptied of earlier runs' ``*.db`` files, which
    would otherwise add to this run's totals); else a new temporary folder, named in the
    environment the workers inherit, and removed once they have all stopped.
    """
    given = os.environ.get(METRICS_DIR_VARIABLE)
    if given:
        folder = Path(given)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stale = list(folder.glob("*.db"))
            for path in stale:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise MetricsDirError(
                f"{METRICS_DIR_VARIABLE}: cannot use {given} as the workers' metrics folder: "
                f"{exc.strerror or exc}"
            ) from None
        if stale:
            log.info("stale_metric_files_removed", metrics_dir=given, files=len(stale))
        yield folder
        return
    try:
        folder = Path(tempfile.mkdtemp(prefix="router-metrics-"))
    except OSError as exc:
        raise MetricsDirError(
            f"cannot make a temporary folder for the workers' metrics ({exc.strerror or exc}); "
            f"set {METRICS_DIR_VARIABLE} to a writable folder"
        ) from None
    os.environ[METRICS_DIR_VARIABLE] = str(folder)
    try:
        yield folder
    finally:
        del os.environ[METRICS_DIR_VARIABLE]
        try:
            shutil.rmtree(folder)
        except OSError as exc:
            log.warning("metrics_dir_not_removed", metrics_dir=str(folder), message=str(exc))


@dataclass(slots=True)
class _Worker:
    """One worker process, and the supervisor's end of its link (closing it stops it)."""

    process: BaseProcess
    link: Connection
    ready_at: float | None = None
    """When it said it serves; ``None`` until then."""
    awaiting_ready: bool = True


@dataclass(slots=True)
class _Slot:
    """A place for one worker: the one running now, and how its predecessors fared."""

    index: int
    worker: _Worker | None = None
    restart_at: float | None = None
    deaths_in_a_row: int = 0
    start_failures: int = 0
    """Workers of this slot that died before serving, in a row."""


@dataclass(slots=True)
class _Supervisor:
    """Starts the workers, passes signals on, replaces the dead, waits for the last."""

    settings: Settings
    sockets: Sequence[socket.socket]
    port: int
    slots: list[_Slot] = field(default_factory=list)
    stopping_since: float | None = None
    exit_code: int = EXIT_OK
    announced: bool = False
    killed_late: bool = False

    def run(self) -> int:
        """Supervise until every worker has stopped; the exit status."""
        self.slots = [_Slot(index) for index in range(self.settings.workers)]
        # The first spawn would start this helper, and starting it unblocks SIGTERM and
        # SIGINT, which must stay blocked while a worker is created (_signals_blocked).
        resource_tracker.ensure_running()
        with _signals_to_socket() as wakeup:
            try:
                for slot in self.slots:
                    self._start(slot)
                while self.stopping_since is None or self._running():
                    self._step(wakeup)
            finally:
                self._stop_leftovers()
        log.info("workers_stopped", exit_code=self.exit_code)
        return self.exit_code

    def _running(self) -> list[_Worker]:
        return [slot.worker for slot in self.slots if slot.worker is not None]

    def _step(self, wakeup: socket.socket) -> None:
        """Wait for a signal, a worker ready or dead, or a timer; deal with what came."""
        links: dict[Connection | socket.socket | int, _Slot] = {}
        sentinels: dict[Connection | socket.socket | int, _Slot] = {}
        for slot in self.slots:
            if slot.worker is not None:
                sentinels[slot.worker.process.sentinel] = slot
                if slot.worker.awaiting_ready:
                    links[slot.worker.link] = slot
        happened = wait([wakeup, *links, *sentinels], timeout=self._next_timer())
        if wakeup in happened:
            for signum in _drain(wakeup):
                self._on_signal(signum)
        for item in happened:  # "ready" before "exited": a worker may say both at once
            if item in links:
                self._on_ready(links[item])
        for item in happened:
            if item in sentinels:
                self._on_exit(sentinels[item])
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and now >= slot.restart_at:
                self._start(slot)
        late = self.stopping_since is not None and now - self.stopping_since >= STOP_TIMEOUT_S
        if late and not self.killed_late:
            self._kill_the_late()

    def _next_timer(self) -> float | None:
        due = [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        if self.stopping_since is not None and not self.killed_late:
            due.append(self.stopping_since + STOP_TIMEOUT_S)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _start(self, slot: _Slot) -> None:
        ours, theirs = multiprocessing.get_context("spawn").Pipe(duplex=True)
        process = multiprocessing.get_context("spawn").Process(
            target=_worker_main,
            args=(self.settings, list(self.sockets), theirs),
            name=f"router-worker-{slot.index}",
            daemon=True,  # should the supervisor crash, its exit still stops the workers
        )
        with _signals_blocked():
            process.start()
        theirs.close()
        slot.worker = _Worker(process, ours)
        slot.restart_at = None
        log.info("worker_started", slot=slot.index, pid=process.pid)

    def _on_ready(self, slot: _Slot) -> None:
        worker = slot.worker
        assert worker is not None
        worker.awaiting_ready = False
        try:
            message = worker.link.recv_bytes()
        except (EOFError, OSError):  # it died before it served: its sentinel reports that
            return
        if message != _READY:
            log.warning("worker_said_something_unexpected", slot=slot.index, message=message)
            return
        worker.ready_at = time.monotonic()
        slot.start_failures = 0
        if self.announced:  # a replacement
            log.info("worker_ready", slot=slot.index, pid=worker.process.pid)
        elif all(s.worker is not None and s.worker.ready_at is not None for s in self.slots):
            self.announced = True
            log.info(
                "workers_ready",
                host=self.settings.host,
                port=self.port,
                pids=[w.process.pid for w in self._running()],
            )

    def _on_exit(self, slot: _Slot) -> None:
        worker = slot.worker
        assert worker is not None
        worker.process.join()
        worker.link.close()
        slot.worker = None
        pid, code = worker.process.pid, worker.process.exitcode
        if pid is not None:
            _mark_dead(pid)
        if self.stopping_since is not None:
            if code == 0:
                log.info("worker_stopped", pid=pid, exit_code=code)
            else:
                log.error("worker_stopped", pid=pid, exit_code=code)
                self.exit_code = EXIT_FAILED
            return
        served = worker.ready_at is not None
        now = time.monotonic()
        if worker.ready_at is None:
            slot.start_failures += 1
        elif now - worker.ready_at >= STABLE_AFTER_S:
            slot.deaths_in_a_row = 0
        slot.deaths_in_a_row += 1
        if slot.start_failures >= MAX_START_FAILURES:
            log.error(
                "workers_keep_failing",
                slot=slot.index,
                pid=pid,
                exit_code=code,
                failures=slot.start_failures,
                message="a worker died before serving, again and again: see its stderr",
            )
            self.exit_code = EXIT_FAILED
            self._begin_stop(signal.SIGTERM)
            return
        delay = min(MAX_RESTART_DELAY_S, FIRST_RESTART_DELAY_S * 2 ** (slot.deaths_in_a_row - 1))
        slot.restart_at = now + delay
        log.error(
            "worker_died",
            slot=slot.index,
            pid=pid,
            exit_code=code,
            served=served,
            restart_in_s=delay,
        )

    def _on_signal(self, signum: int) -> None:
        if signum not in FORWARDED_SIGNALS:
            return
        name = signal.Signals(signum).name
        if signum == signal.SIGHUP:
            if self.stopping_since is None:
                log.info("signal_forwarded", signal=name, workers=len(self._running()))
                self._send_all(signal.SIGHUP)
            return
        if self.stopping_since is None:
            log.info("shutting_down", signal=name, stop_timeout_s=STOP_TIMEOUT_S)
            self._begin_stop(signal.Signals(signum))
        else:
            self._send_all(signal.Signals(signum))

    def _begin_stop(self, signum: signal.Signals) -> None:
        """Stop accepting, cancel pending restarts, and pass ``signum`` to every worker."""
        self.stopping_since = time.monotonic()
        for sock in self.sockets:  # the workers' copies close as each one stops accepting
            sock.close()
        for slot in self.slots:
            slot.restart_at = None
        self._send_all(signum)

    def _send_all(self, signum: signal.Signals) -> None:
        for worker in self._running():
            if worker.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):  # exiting: its sentinel says so
                    os.kill(worker.process.pid, signum)

    def _kill_the_late(self) -> None:
        self.killed_late = True
        for worker in self._running():
            if worker.process.is_alive():
                log.error("worker_killed", pid=worker.process.pid, after_s=STOP_TIMEOUT_S)
                worker.process.kill()
        self.exit_code = EXIT_FAILED

    def _stop_leftovers(self) -> None:
        """On the way out after a fault in the supervisor: stop what still runs."""
        if self._running():
            log.error(
                "stopping_workers_after_a_fault", pids=[w.process.pid for w in self._running()]
            )
        for worker in self._running():
            worker.process.terminate()
        for worker in self._running():
            worker.process.join(STOP_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.link.close()
            if worker.process.pid is not None:
                _mark_dead(worker.process.pid)
            self.exit_code = EXIT_FAILED


def _mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges from the totals (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _signals_to_socket() -> Iterator[socket.socket]:
    """While open, the forwarded signals arrive as bytes on the socket yielded.

    (``signal.set_wakeup_fd`` writes each signal's number; the handlers do nothing else,
    so the supervisor's wait wakes for a signal as it does for a worker.)
    """
    receive, send = socket.socketpair()
    receive.setblocking(False)
    send.setblocking(False)
    previous = {signum: signal.getsignal(signum) for signum in FORWARDED_SIGNALS}
    old_fd = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
    try:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, _ignore_here)
        yield receive
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(old_fd)
        receive.close()
        send.close()


def _ignore_here(signum: int, frame: FrameType | None) -> None:
    """Python-level handler: the number reaches the wakeup socket, which is what counts."""


def _drain(wakeup: socket.socket) -> list[int]:
    """The signal numbers waiting on the wakeup socket (non-blocking: read until empty)."""
    received = b""
    with contextlib.suppress(BlockingIOError):  # nothing more to read
        while chunk := wakeup.recv(64):
            received += chunk
    return list(received)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold the forwarded signals back; a process created meanwhile starts with them held."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# A worker ----------------------------------------------------------------------------


def _worker_main(settings: Settings, sockets: list[socket.socket], link: Connection) -> None:
    """A worker process: serve on the supervisor's sockets until told to stop.

    It starts with the forwarded signals held (see :func:`_signals_blocked`): they are
    recorded from here until the event loop's own handlers take over, then acted on.
    """
    early: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        early.append(signum)

    for signum in FORWARDED_SIGNALS:
        signal.signal(signum, record)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
    configure_logging(settings, cache_loggers=True)
    bind_process_fields(worker=os.getpid())

    def started(stop: asyncio.Event) -> None:
        try:
            link.send_bytes(_READY)
        except OSError:
            _supervisor_gone(link, stop, watched=False)
            return
        asyncio.get_running_loop().add_reader(link.fileno(), _supervisor_gone, link, stop)

    raise SystemExit(
        run_loop(serve(settings, sockets=sockets, started=started, early_signals=early))
    )


def _supervisor_gone(link: Connection, stop: asyncio.Event, *, watched: bool = True) -> None:
    """The link to the supervisor closed (it never writes): it died, so stop serving."""
    if watched:
        asyncio.get_running_loop().remove_reader(link.fileno())
    log.warning("supervisor_gone", message="the supervising process ended; stopping")
    stop.set()
