"""A long-lived helper interpreter for work on untrusted bytes: the e-mail parser
(mail/bounded.py) and the reply scans' reader (replies/scan_safety.py) each keep a few.

A fresh `python -c` rather than multiprocessing: no fork of a threaded Celery worker, and
a Celery prefork child is daemonic and may not have children. The child's end of a socket
pair is passed by number; the parent talks over a multiprocessing Connection on its end.
The child sets its own limits (its code's first lines), the parent kills it on a wall time."""

from __future__ import annotations

import socket
import subprocess
import sys
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
