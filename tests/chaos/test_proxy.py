"""The chaos proxy itself, against a local echo server: each mode does what it says."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

import pytest

from gateway.devstack.proxy import TcpProxy

pytestmark = pytest.mark.chaos


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with TcpProxy(server.server_address[1]) as p:
        yield p
    server.shutdown()
    server.server_close()


def _connect(proxy: TcpProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)


def test_pass_and_delay(proxy):
    with _connect(proxy) as s:
        s.sendall(b"hello")
        assert s.recv(100) == b"hello"
        proxy.set("delay", 0.3)
        started = time.monotonic()
        s.sendall(b"slow")
        assert s.recv(100) == b"slow"
        assert time.monotonic() - started >= 0.55  # delayed both ways


def test_blackhole_swallows_then_resets_the_corrupted_stream(proxy):
    s = _connect(proxy, timeout=0.5)
    proxy.set("blackhole")
    s.sendall(b"lost")
    with pytest.raises(TimeoutError):
        s.recv(100)
    with _connect(proxy, timeout=0.5) as fresh:  # accepted, never answered
        fresh.sendall(b"x")
        with pytest.raises(TimeoutError):
            fresh.recv(100)
    proxy.set("pass")
    with pytest.raises(ConnectionResetError):
        s.recv(100)
    s.close()
    with _connect(proxy) as again:
        again.sendall(b"back")
        assert again.recv(100) == b"back"


def test_reset_kills_open_and_new_connections(proxy):
    s = _connect(proxy)
    s.sendall(b"a")
    assert s.recv(10) == b"a"
    proxy.set("reset")
    with pytest.raises(ConnectionResetError):
        s.sendall(b"b")
        s.recv(10)
    s.close()
    # The RST may come as soon as the connect itself, or at the first send or read.
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        with _connect(proxy) as fresh:
            fresh.sendall(b"c")
            fresh.recv(10)
    proxy.set("pass")
    with _connect(proxy) as ok:
        ok.sendall(b"d")
        assert ok.recv(10) == b"d"
