"""Parse hostile mail where it cannot hurt: persistent parser subprocesses with an
address-space limit and a wall-time limit. A hung or dead parser is killed and replaced,
and its message becomes UnparseableMessage (quarantine), never a crash loop.

Plain subprocesses speaking length-prefixed pickle over pipes, not multiprocessing: they
work the same under Celery's prefork children (daemonic, billiard), threads, or a CLI."""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import resource
import select
import struct
import subprocess
import sys
import threading

from gateway.mail.parse import ParsedLetter, ParseLimits, UnparseableMessage, parse_message

_HEADER = struct.Struct("!I")


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, n - got)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


class _Parser:
    def __init__(self, memory_bytes: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.mail.bounded", str(memory_bytes)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self.used = 0

    def ask(self, raw: bytes, own: frozenset[str], limits: ParseLimits):
        _send(self.proc.stdin, (raw, own, limits))
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], limits.wall_seconds)
        if not ready:
            raise TimeoutError
        (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size))
        return pickle.loads(_read_exact(fd, size))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


class BoundedParser:
    """Thread-safe pool of parser subprocesses, started lazily."""

    def __init__(self, size: int = 1, *, recycle_after: int = 5000):
        self._slots = threading.BoundedSemaphore(size)
        self._idle: queue.SimpleQueue[_Parser] = queue.SimpleQueue()
        self._recycle_after = recycle_after
        self._pid = os.getpid()

    def parse(self, raw: bytes, *, own_addresses: frozenset[str] = frozenset(),
              limits: ParseLimits = ParseLimits()) -> ParsedLetter:
        with self._slots:
            parser = self._take(limits.memory_bytes)
            try:
                kind, value = parser.ask(bytes(raw), frozenset(own_addresses), limits)
            except TimeoutError:
                parser.stop()
                raise UnparseableMessage(
                    f"reading the message took longer than {limits.wall_seconds:g} s") from None
            except (EOFError, OSError, pickle.UnpicklingError, struct.error):
                parser.stop()
                raise UnparseableMessage(
                    f"the parser process died reading the message "
                    f"(exit code {parser.proc.returncode})") from None
            parser.used += 1
            if parser.used >= self._recycle_after:
                parser.stop()
            else:
                self._idle.put(parser)
        if kind == "err":
            raise UnparseableMessage(value)
        return value

    def _take(self, memory_bytes: int) -> _Parser:
        if os.getpid() != self._pid:  # inherited across a fork: those pipes are not ours
            self._idle = queue.SimpleQueue()
            self._pid = os.getpid()
        while True:
            try:
                parser = self._idle.get_nowait()
            except queue.Empty:
                return _Parser(memory_bytes)
            if parser.proc.poll() is None:
                return parser

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


_default = BoundedParser()
atexit.register(_default.close)


def parse_bounded(raw: bytes, *, own_addresses: frozenset[str] = frozenset(),
                  limits: ParseLimits = ParseLimits()) -> ParsedLetter:
    return _default.parse(raw, own_addresses=own_addresses, limits=limits)


def _serve(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        (size,) = _HEADER.unpack(header)
        raw, own, limits = pickle.loads(stdin.read(size))
        try:
            answer = ("ok", parse_message(raw, own_addresses=own, limits=limits))
        except UnparseableMessage as exc:
            answer = ("err", exc.reason)
        except BaseException as exc:  # noqa: BLE001 - MemoryError, RecursionError, ...
            answer = ("err", f"the message could not be read ({type(exc).__name__})")
        _send(stdout, answer)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
