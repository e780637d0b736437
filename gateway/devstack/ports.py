"""Loopback ports for throwaway local servers."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    The kernel picks it; there is a small race until the server binds it, which is
    acceptable for tests and the demo.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_free(host: str, port: int) -> None:
    """Raise OSError if something already listens on host:port.

    Checked before starting a server: otherwise waiting for the port would succeed
    against the other process while ours fails to bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the servers themselves: ignore TIME_WAIT leftovers, still fail on a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, f"port {host}:{port} is already in use") from exc


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port.

    Raises TimeoutError naming the address and the last connection error.
    """
    deadline = time.monotonic() + timeout
    last_error: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last_error = exc
            time.sleep(0.02)
    raise TimeoutError(
        f"nothing accepted connections on {host}:{port} within {timeout:.1f}s "
        f"(last error: {last_error}); did the server fail to start? check its log"
    )
