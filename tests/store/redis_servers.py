"""Private Redis servers for tests: one server, a 3-master cluster, a master plus sentinel.

Each runs from the ``redis-server`` binary on free loopback ports, in its own
``tempfile.mkdtemp()`` folder, keeps nothing on disk, and is stopped by the fixture
that started it (finalizers run on failure too). A server can be killed, paused
(SIGSTOP), resumed and restarted on the same port, to show how the store behaves.
"""

from __future__ import annotations

import contextlib
import os
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

HOW_TO_GET_REDIS = (
    "install it (apt-get install redis-server, or brew install redis) so that "
    "`redis-server` is on PATH"
)
START_TIMEOUT_S = 10.0


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
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(client: redis.Redis, *args: Any) -> Any:
    """Send one raw command (redis-py leaves ``execute_command`` untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def wait_for_ping(port: int, *, within: float = START_TIMEOUT_S) -> None:
    """Return once the server on ``port`` answers PING; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            if client.ping():
                return
        except redis.RedisError as exc:
            last = exc
        finally:
            client.close()
        time.sleep(0.02)
    raise AssertionError(f"redis-server on port {port} did not answer PING: {last!r}")


class RedisServer:
    """One ``redis-server`` process on a fixed loopback port (kept across restarts)."""

    def __init__(self, *extra: str, port: int | None = None, folder: Path | None = None) -> None:
        self.binary = redis_server_binary()
        self.port = port or free_port()
        self.folder = folder or Path(tempfile.mkdtemp(prefix="router-redis-"))
        self._own_folder = folder is None
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def args(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
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
        ]

    def start(self, *, wait: bool = True) -> RedisServer:
        self.process = subprocess.Popen(
            self.args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.paused = False
        if wait:
            wait_for_ping(self.port)
        return self

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None, "server never started"
        assert self.process.poll() is None, "server not running"
        os.kill(self.process.pid, sig)

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing answers (a hung Redis)."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        """SIGKILL: connections reset, new ones are refused (a crashed Redis)."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.process.kill()
        self.process.wait(timeout=START_TIMEOUT_S)

    def restart(self) -> None:
        """Kill and start again on the same port (empty: it keeps nothing on disk)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        """Stop the process (whatever its state) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            if self.paused:
                self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=START_TIMEOUT_S)
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
                    "2000",
                    port=port,
                    folder=folder,
                )
            )

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
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
                command(clients[0], "CLUSTER", "MEET", "127.0.0.1", node.port, bus)
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
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.MASTER_NAME}"

    def start(self) -> RedisSentinel:
        self.master.start()
        conf = self.folder / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.folder}\n"
            f"logfile {self.folder / 'sentinel.log'}\n"
            f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER_NAME} 5000\n"
        )
        self.process = subprocess.Popen(
            [self.master.binary, str(conf), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_ping(self.port)
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
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=START_TIMEOUT_S)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=START_TIMEOUT_S)
        self.master.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
