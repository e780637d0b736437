"""A TCP proxy on loopback that can misbehave on command, for the chaos suite and the soak.

Put it between the gateway and Redis, IMAP, SMTP or the provider, then switch its mode at
any time from the test's thread:

- ``pass``: bytes flow both ways;
- ``delay``: every chunk waits ``delay_s`` before it is forwarded (a slow link);
- ``blackhole``: connections are accepted but nothing is forwarded or answered, like a
  dropped route; the streams that lost bytes are reset when the mode changes back;
- ``reset``: every open connection, and every new one, is closed with a TCP RST.

`TcpProxy(upstream_port=6379).start()`, point the client at ``proxy.port``, then
``proxy.set("blackhole")`` ... ``proxy.set("pass")``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

from gateway.devstack.startable import Startable

MODES = ("pass", "delay", "blackhole", "reset")
_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream connection."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    lost_bytes: bool = False  # some bytes were swallowed: the stream is corrupt
    tasks: list[asyncio.Task] = field(default_factory=list)


def _rst(writer: asyncio.StreamWriter | None) -> None:
    if writer is None or writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class TcpProxy(Startable):
    host = "127.0.0.1"

    def __init__(
        self,
        upstream_port: int,
        upstream_host: str = "127.0.0.1",
        port: int = 0,
        name: str = "proxy",
    ) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = port
        self.name = name
        self.mode = "pass"
        self.delay_s = 0.0
        self.connections_seen = 0
        self._links: set[_Link] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> TcpProxy:
        if self._thread is not None:
            raise RuntimeError("proxy already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(
            target=run, name=f"{self.name}:{self.upstream_port}", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self._links):
                self._drop(link)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = self._loop = self._server = None

    # -- control -----------------------------------------------------------------------
    def set(self, mode: str, delay_s: float = 0.0) -> None:
        """Switch mode now. Entering ``reset`` resets every open connection; leaving
        ``blackhole`` resets the connections whose bytes were swallowed."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if self._loop is None:
            raise RuntimeError("proxy not started")

        async def switch() -> None:
            self.mode, self.delay_s = mode, delay_s
            for link in list(self._links):
                if mode == "reset" or (mode != "blackhole" and link.lost_bytes):
                    self._drop(link)

        asyncio.run_coroutine_threadsafe(switch(), self._loop).result(10)

    def reset_connections(self) -> int:
        """Reset every open connection once, leaving the mode as it is."""
        if self._loop is None:
            raise RuntimeError("proxy not started")

        async def reset() -> int:
            links = list(self._links)
            for link in links:
                self._drop(link)
            return len(links)

        return asyncio.run_coroutine_threadsafe(reset(), self._loop).result(10)

    @property
    def open_connections(self) -> int:
        return len(self._links)

    # -- the event loop side -----------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        link = _Link(client=writer)
        if self.mode == "reset":
            _rst(writer)
            return
        self._links.add(link)
        try:
            if self.mode == "blackhole":
                link.lost_bytes = True
                await self._swallow(reader, link)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.upstream_host, self.upstream_port
                )
            except OSError:
                _rst(writer)
                return
            link.upstream = up_writer
            if link not in self._links:  # reset while we were connecting
                _rst(up_writer)
                return
            link.tasks = [
                asyncio.current_task(),
                asyncio.ensure_future(self._pump(up_reader, writer, link)),
            ]
            await self._pump(reader, up_writer, link)
        finally:
            self._links.discard(link)

    async def _swallow(self, reader: asyncio.StreamReader, link: _Link) -> None:
        while link in self._links:
            if not await reader.read(_CHUNK):
                break
        self._drop(link)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while True:
                data = await src.read(_CHUNK)
                if not data:
                    break
                if self.mode == "blackhole":
                    link.lost_bytes = True
                    continue
                if self.mode == "delay" and self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                if link not in self._links or dst.transport.is_closing():
                    break
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            # One side finished: close the other the way a real peer would (FIN), unless
            # the link was reset meanwhile.
            if link in self._links:
                self._links.discard(link)
                for w in (link.client, link.upstream):
                    if w is not None and not w.transport.is_closing():
                        w.close()

    def _drop(self, link: _Link) -> None:
        self._links.discard(link)
        _rst(link.client)
        _rst(link.upstream)
