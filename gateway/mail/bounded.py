"""The parse run in persistent worker processes with an address-space limit and a wall time.

A hostile message (parser recursion, quadratic headers, a decompression bomb, a crash)
costs at most one worker, which is replaced; the message becomes UnparseableMessage and
the caller goes on. A batch of messages goes in one round trip, each timed on its own.
"""

from __future__ import annotations

import atexit
import resource
import threading
from multiprocessing.connection import Connection

from gateway.child import Child, ChildPool
from gateway.mail.parse import (
    ParsedLetter,
    ParseLimits,
    UnparseableMessage,
    check_raw_size,
    parse_message,
)


def _worker_main(conn, memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    while True:
        try:
            raws, own, limits = conn.recv()
        except (EOFError, OSError):
            return
        # One result per message, each sent as soon as it is ready: the caller times each
        # message on its own and knows which one a hang or a crash belongs to.
        for i, raw in enumerate(raws):
            raws[i] = None  # the message's bytes need not outlive its parse
            try:
                result = ("ok", parse_message(raw, own_addresses=own, limits=limits))
            except UnparseableMessage as exc:
                result = ("err", exc.reason)
            except BaseException as exc:  # MemoryError while building the result, etc.
                result = ("err", f"the message could not be read ({type(exc).__name__})")
            del raw
            try:
                conn.send(result)
            except Exception as exc:
                conn.send(("err", f"the parsed message could not be returned ({type(exc).__name__})"))


def serve_fd(fd: int, memory_bytes: int) -> None:
    """Entry point of a worker process: serve parse requests on an inherited socket."""
    _worker_main(Connection(fd), memory_bytes)


# A fresh interpreter (gateway/child.py says why not multiprocessing).
_WORKER_CODE = "import sys; from gateway.mail.bounded import serve_fd; serve_fd(int(sys.argv[1]), int(sys.argv[2]))"


class BoundedParser:
    """A pool of persistent parse workers. Thread-safe; a hung or dead worker is killed and
    replaced, and its message becomes UnparseableMessage."""

    def __init__(self, workers: int = 2, *, memory_bytes: int | None = None,
                 letters_per_worker: int = 5000, batch_bytes: int = 4 * 1024 * 1024,
                 idle_stop_s: float | None = 60.0):
        self._memory = memory_bytes
        self._slots = threading.BoundedSemaphore(workers)
        self._pool = ChildPool(_WORKER_CODE, letters_per_worker)
        # parse_many ships at most this many bytes of messages in one request (one larger
        # message goes alone): the worker holds them all under its address-space limit.
        self._batch_bytes = batch_bytes
        self._lock = threading.Lock()  # the reaper's start
        # A worker idle this long is stopped (its ~25 MB PSS handed back while no mail
        # comes: an evening's lull, the hours between letters); the next parse starts one.
        # The parent decides, not the worker, so no request is ever sent to one that left.
        self._idle_stop_s = idle_stop_s
        self._reaper: threading.Thread | None = None
        self._closed = threading.Event()

    def parse(self, raw: bytes, *, own_addresses: frozenset[str] = frozenset(),
              limits: ParseLimits = ParseLimits()) -> ParsedLetter:
        (result,) = self.parse_many([raw], own_addresses=own_addresses, limits=limits)
        if isinstance(result, UnparseableMessage):
            raise result
        return result

    def parse_many(self, raws: list[bytes], *, own_addresses: frozenset[str] = frozenset(),
                   limits: ParseLimits = ParseLimits()) -> list[ParsedLetter | UnparseableMessage]:
        """One result per message, in order: its ParsedLetter or its UnparseableMessage.

        Messages go to a worker together (one round trip, not one each), and each keeps its
        own bounds: its wall time runs from the previous result, and a message that hangs
        or kills the worker is the only one that fails; the ones after it go to a fresh
        worker."""
        results: list[ParsedLetter | UnparseableMessage | None] = [None] * len(raws)
        own = frozenset(own_addresses)
        chunk: list[tuple[int, bytes]] = []
        size = 0
        for i, raw in enumerate(raws):
            raw = bytes(raw)
            try:
                # Saves shipping a 40 MB message; the worker checks lines and boundaries
                # (parse_message), off the calling process's GIL.
                check_raw_size(raw, limits)
            except UnparseableMessage as exc:
                results[i] = exc
                continue
            if chunk and size + len(raw) > self._batch_bytes:
                self._parse_chunk(chunk, own, limits, results)
                chunk, size = [], 0
            chunk.append((i, raw))
            size += len(raw)
        if chunk:
            self._parse_chunk(chunk, own, limits, results)
        return results  # type: ignore[return-value]

    def _parse_chunk(self, chunk: list[tuple[int, bytes]], own: frozenset[str],
                     limits: ParseLimits, results: list) -> None:
        while chunk:
            done = 0
            with self._slots:
                worker = self._pool.take(self._memory or limits.memory_bytes)
                try:
                    worker.conn.send(([raw for _, raw in chunk], own, limits))
                    for i, _ in chunk:
                        if not worker.conn.poll(limits.wall_seconds):
                            self._pool.discard(worker)
                            worker = None
                            results[i] = UnparseableMessage(
                                f"reading the message took longer than {limits.wall_seconds:g} s"
                            )
                            done += 1
                            break
                        kind, value = worker.conn.recv()
                        results[i] = UnparseableMessage(value) if kind == "err" else value
                        done += 1
                except (EOFError, OSError):
                    code = worker.exit_code() if worker else None
                    if worker:
                        self._pool.discard(worker)
                    worker = None
                    results[chunk[done][0]] = UnparseableMessage(
                        f"the parser process died reading the message (exit code {code})"
                    )
                    done += 1
                finally:
                    if worker is not None and self._pool.give_back(worker, done):
                        self._start_reaper()
            chunk = chunk[done:]

    @property
    def workers(self) -> set[Child]:
        """The parse workers started and not yet stopped (for tests)."""
        return self._pool.children()

    def _start_reaper(self) -> None:
        if self._idle_stop_s is None:
            return
        with self._lock:
            if self._reaper is None or not self._reaper.is_alive():
                self._reaper = threading.Thread(target=self._reap, name="parse-reaper",
                                                daemon=True)
                self._reaper.start()

    def _reap(self) -> None:
        assert self._idle_stop_s is not None
        while not self._closed.wait(min(self._idle_stop_s / 4, 15.0)):
            self._pool.stop_idle(self._idle_stop_s)
            with self._lock:  # a worker taken from now on starts a new reaper when given back
                if self._pool.empty():
                    self._reaper = None  # nothing to watch
                    return

    def close(self) -> None:
        self._closed.set()
        self._pool.close()


_default: BoundedParser | None = None
_default_lock = threading.Lock()


def _default_parser() -> BoundedParser:
    global _default
    with _default_lock:
        if _default is None:
            # One parse worker a process: a letter's parse is ~1-1.5 ms of its ~8 ms, so one
            # serves the threads of a worker with room to spare (bench run 9), and each more
            # held ~25 MB PSS for nothing.
            _default = BoundedParser(workers=1)
            atexit.register(_default.close)
        return _default


def parse_message_bounded(raw: bytes, **kw) -> ParsedLetter:
    """parse_message in a worker process with wall-time and memory limits (from ``limits``).
    Raises UnparseableMessage on a limit, a timeout or a dead worker."""
    return _default_parser().parse(raw, **kw)


def parse_many_bounded(raws: list[bytes], **kw) -> list[ParsedLetter | UnparseableMessage]:
    """parse_message_bounded for several messages in one round trip (BoundedParser.parse_many):
    a result per message, the UnparseableMessage in place of a letter that could not be read."""
    return _default_parser().parse_many(raws, **kw)
