"""Private Redis servers for tests: one server, a 3-master cluster, a master plus sentinel.

Each runs from the ``redis-server`` binary on free loopback ports, in its own
``tempfile.mkdtemp()`` folder, keeps nothing on disk, and is stopped by the fixture
that started it (finalizers run on failure too). A server can be killed, paused
(SIGSTOP), resumed and restarted on the same port, to show how the store behaves.

The processes are run by pytest-redis's ``RedisExecutor`` (a plain server: it builds
the ``redis-server`` command line) and, for servers that need options it cannot pass
(cluster nodes, the sentinel), by ``mirakuru.TCPExecutor``, the executor pytest-redis
is built on. Both start the process, wait until its port accepts connections, and
stop it (SIGTERM, then SIGKILL after the timeout); mirakuru also kills, at interpreter
exit, any process it started that is still running.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from mirakuru import SimpleExecutor, TCPExecutor
from mirakuru.exceptions import ProcessFinishedWithError
from pytest_redis.executor import RedisExecutor

HOW_TO_GET_REDIS = (
    "install it (apt-get install redis-server, or brew install redis) so that "
    "`redis-server` is on PATH"
)
START_TIMEOUT_S = 10.0
HOST = "127.0.0.1"


def redis_server_binary() -> str:
    """The ``redis-server`` executable, or fail the test saying how to get one."""
    path = shutil.which("redis-server")
    if path is None:
        pytest.fail(
            f"These tests start their own Redis but found no redis-server: {HOW_TO_GET_REDIS}"
        )
    return path


def free_port() -> int:
    """A loopback TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def command(client: redis.Redis, *args: Any) -> Any:
    """Send one raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _stop(executor: SimpleExecutor) -> None:
    """SIGTERM and wait (SIGKILL after the executor's timeout), whatever the exit code."""
    with contextlib.suppress(ProcessFinishedWithError):
        executor.stop()


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port (kept across restarts)."""

    def __init__(self, *extra: str, port: int | None = None, folder: Path | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = port or free_port()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="router-redis-"))
        self._own_folder = folder is None
        self.extra = extra
        self.paused = False
        self.executor: TCPExecutor = self._tcp_executor() if extra else self._redis_executor()

    def _redis_executor(self) -> RedisExecutor:
        """pytest-redis's executor: loopback, no AOF, its log, pid file and socket in
        ``folder``."""
        executor = RedisExecutor(
            self.binary,
            databases=16,
            redis_timeout=0,
            loglevel="notice",
            host=HOST,
            port=self.port,
            startup_timeout=int(START_TIMEOUT_S),
            datadir=self.folder,
        )
        # Given no ``save``, pytest-redis leaves Redis's default snapshot rules on (and
        # Redis would write a dump when stopped); turn them off: the last option wins.
        executor.command_parts = [*executor.command_parts, "--save", ""]
        executor.command = shlex.join(executor.command_parts)
        return executor

    def _tcp_executor(self) -> TCPExecutor:
        """mirakuru's TCP executor for a command line with ``extra`` options."""
        return TCPExecutor(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                str(self.folder / "redis.log"),
                *self.extra,
            ],
            HOST,
            self.port,
            timeout=START_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def process(self) -> subprocess.Popen[Any] | None:
        """The running ``redis-server`` (None before the start and after a kill or stop)."""
        return self.executor.process

    def args(self) -> list[str]:
        """The command line the executor runs."""
        return list(self.executor.command_parts)

    def start(self, *, wait: bool = True) -> RedisServer:
        """Start on ``port``; with ``wait``, return once the port accepts connections."""
        if wait:
            self.executor.start()
        else:
            SimpleExecutor.start(self.executor)  # launch only: no version or port checks
        self.paused = False
        return self

    def _signal(self, sig: signal.Signals) -> None:
        process = self.executor.process
        assert process is not None, "server never started"
        assert process.poll() is None, "server not running"
        process.send_signal(sig)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a hung Redis)."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL: connections reset, new ones are refused (a crashed Redis)."""
        self.executor.kill()  # SIGKILL (a stopped process dies too), then wait
        self.paused = False

    def restart(self) -> None:
        """Kill and start again on the same port (empty: it keeps nothing on disk)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the process (whatever its state) and remove its folder."""
        if self.paused and self.executor.running():
            self.resume()  # a stopped process would not act on SIGTERM
        _stop(self.executor)
        self.paused = False
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)


class RedisCluster:
    """Three masters (no replicas) sharing the 16384 slots, made with CLUSTER commands."""

    def __init__(self, masters: int = 3) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="router-redis-cluster-"))
        self.nodes: list[RedisServer] = []
        self.buses: list[int] = []
        for n in range(masters):
            folder = self.folder / f"node{n}"
            folder.mkdir()
            port, bus = free_port(), free_port()
            self.buses.append(bus)
            self.nodes.append(
                RedisServer(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(folder / "nodes.conf"),
                    "--cluster-port",
                    str(bus),
                    "--cluster-node-timeout",
                    # Long enough that a node a loaded machine leaves unscheduled for a
                    # while is not voted down (which would take the whole cluster down).
                    "10000",
                    port=port,
                    folder=folder,
                )
            )

    @property
    def url(self) -> str:
        seeds = ",".join(f"{HOST}:{node.port}" for node in self.nodes)
        return f"redis+cluster://{seeds}"

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=node.port, socket_timeout=2) for node in self.nodes]
        try:
            per_node = 16384 // len(self.nodes)
            for n, client in enumerate(clients):
                first = n * per_node
                last = 16383 if n == len(self.nodes) - 1 else first + per_node - 1
                command(client, "CLUSTER", "ADDSLOTSRANGE", first, last)
            for node, bus in zip(self.nodes[1:], self.buses[1:], strict=True):
                command(clients[0], "CLUSTER", "MEET", HOST, node.port, bus)
            deadline = time.monotonic() + 20
            while not all(_cluster_ok(client, len(self.nodes)) for client in clients):
                if time.monotonic() > deadline:
                    raise AssertionError("the test cluster did not reach cluster_state:ok")
                time.sleep(0.05)
        finally:
            for client in clients:
                client.close()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _cluster_ok(client: redis.Redis, nodes: int) -> bool:
    info = command(client, "CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return (
        fields.get("cluster_state") == "ok" and int(fields.get("cluster_known_nodes", 0)) == nodes
    )


class RedisSentinel:
    """A master and one sentinel watching it (quorum 1) under the name ``mymaster``."""

    MASTER_NAME = "mymaster"

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="router-redis-sentinel-"))
        (self.folder / "master").mkdir()
        self.master = RedisServer(folder=self.folder / "master")
        self.port = free_port()
        self.conf = self.folder / "sentinel.conf"
        self.executor = TCPExecutor(
            [self.master.binary, str(self.conf), "--sentinel"],
            HOST,
            self.port,
            timeout=START_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @property
    def url(self) -> str:
        return f"redis+sentinel://{HOST}:{self.port}/{self.MASTER_NAME}"

    @property
    def process(self) -> subprocess.Popen[Any] | None:
        """The running sentinel (None before the start and after the stop)."""
        return self.executor.process

    def start(self) -> RedisSentinel:
        self.master.start()
        self.conf.write_text(
            f"port {self.port}\n"
            f"bind {HOST}\n"
            f"dir {self.folder}\n"
            f"logfile {self.folder / 'sentinel.log'}\n"
            f"sentinel monitor {self.MASTER_NAME} {HOST} {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER_NAME} 5000\n"
        )
        self.executor.start()
        client = redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while command(client, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.MASTER_NAME) is None:
                if time.monotonic() > deadline:
                    raise AssertionError("the sentinel does not know its master")
                time.sleep(0.05)
        finally:
            client.close()
        return self

    def stop(self) -> None:
        _stop(self.executor)
        self.master.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
