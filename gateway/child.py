"""A long-lived helper interpreter for work on untrusted bytes: the e-mail parser
(mail/bounded.py) and the reply scans' reader (replies/scan_safety.py) each keep a few.

A fresh `python -c` rather than multiprocessing: no fork of a threaded Celery worker, and
a Celery prefork child is daemonic and may not have children. The child's end of a socket
pair is passed by number; the parent talks over a multiprocessing Connection on its end.
The child sets its own limits (its code's first lines), the parent kills it on a wall time."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection


class Child:
    def __init__(self, code: str, *args: object) -> None:
        """Run `code` with argv[1] = the socket's fd and argv[2:] = `args`."""
        parent, child = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, str(child.fileno()), *map(str, args)],
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.used = 0  # the owner's count of work done, to replace it after so much
        self.idle_since = 0.0  # time.monotonic() when the owner last gave it back

    def alive(self) -> bool:
        return self.process.poll() is None

    def exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class ChildPool:
    """The children of one kind a process keeps: idle ones to reuse, and every live one, so
    all are stopped at close. Thread-safe; the owner bounds how many run at once."""

    def __init__(self, code: str, uses_per_child: int) -> None:
        self._code, self._uses_per_child = code, uses_per_child
        self._idle: queue.SimpleQueue[Child] = queue.SimpleQueue()
        self._all: set[Child] = set()
        self._lock = threading.Lock()

    def take(self, *args: object) -> Child:
        """An idle child still alive, or a new one run with `args`."""
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                break
            if child.alive():
                return child
            self.discard(child)  # left while idle
        child = Child(self._code, *args)
        with self._lock:
            self._all.add(child)
        return child

    def give_back(self, child: Child, uses: int = 1, *, last: bool = False) -> bool:
        """Idle again (True), unless it is spent (`uses_per_child`), dead, or `last`."""
        child.used += uses
        if last or child.used >= self._uses_per_child or not child.alive():
            self.discard(child)
            return False
        child.idle_since = time.monotonic()
        self._idle.put(child)
        return True

    def discard(self, child: Child) -> None:
        with self._lock:
            self._all.discard(child)
        child.stop()

    def stop_idle(self, idle_s: float) -> None:
        """Stop the children idle for `idle_s` or longer."""
        kept: list[Child] = []
        while True:  # a taker that finds the queue empty meanwhile starts a child
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                break
            if time.monotonic() - child.idle_since >= idle_s:
                self.discard(child)
            else:
                kept.append(child)
        for child in kept:
            self._idle.put(child)

    def empty(self) -> bool:
        """No child at all, idle or at work."""
        with self._lock:
            return not self._all

    def children(self) -> set[Child]:
        """Every child started and not yet stopped, idle or at work."""
        with self._lock:
            return set(self._all)

    def pids(self) -> set[int]:
        """The children alive now."""
        with self._lock:
            return {c.process.pid for c in self._all if c.alive()}

    def close(self) -> None:
        with self._lock:
            children = list(self._all)
            self._all.clear()
        for child in children:
            child.stop()
