"""A throwaway redis-server on a free loopback port, without persistence."""

from __future__ import annotations

import shutil
import tempfile
import time
from itertools import chain
from pathlib import Path

import redis

from gateway.devstack.ports import ensure_free, free_port
from gateway.devstack.process_group import GroupServer, ProcessGroup


def redis_binary() -> str:
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin:/usr/sbin")
    if not found:
        raise FileNotFoundError(
            "redis-server not found; install it with: apt-get install -y redis-server"
        )
    return found


class RedisServer(GroupServer):
    """Own redis-server: `RedisServer().start()`, then use `.url`.

    Nothing is saved to disk, so `restart_empty()` simulates a Redis that lost its data
    (broker restart without AOF) on the same port.
    """
    label = "redis-server"

    host = "127.0.0.1"

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._dir: Path | None = None
        self._process: ProcessGroup | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port, db=db, socket_timeout=5)

    def start(self) -> RedisServer:
        if self._process is not None:
            raise RuntimeError("redis-server already started")
        if not self.port:
            self.port = free_port()
        ensure_free(self.host, self.port)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="gw-redis-"))
        options = {
            "bind": self.host,
            "port": str(self.port),
            "save": "",  # no RDB snapshots
            "appendonly": "no",
            "dir": str(self._dir),
            "daemonize": "no",
            "protected-mode": "no",
            "logfile": "",  # stdout, captured below
        }
        argv = [redis_binary(), *chain.from_iterable((f"--{k}", v) for k, v in options.items())]
        self._process = ProcessGroup(argv, self._dir / "redis.log")
        self._process.start()
        try:
            self._wait_for_ping(timeout=10.0)
        except TimeoutError:
            log = self._process.tail()
            self.stop()
            raise TimeoutError(
                f"redis-server did not answer PING on {self.host}:{self.port}\n{log}"
            ) from None
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def restart_empty(self) -> None:
        """Stop and start again on the same port; every key is gone."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop and remove the working directory (logs)."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def _wait_for_ping(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.exited() is not None:
                    raise TimeoutError("redis-server exited")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.02)
            raise TimeoutError
        finally:
            client.close()
