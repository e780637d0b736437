"""Running the simulator: in a background thread for tests, or in the foreground for the CLI."""

from __future__ import annotations

import logging
import signal
import socket
import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from gateway.devstack.startable import Startable

from .app import create_app

DEFAULT_REPLY_FROM = "noreply@fsin-pismo.example"
log = logging.getLogger(__name__)


class _TrackedHandler(WSGIRequestHandler):
    """Keeps the server's set of open connections, so that `stop()` cuts the requests in
    flight as a crash would; no access log, as tests make thousands of requests."""

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:  # type: ignore[attr-defined]
            self.server.open_connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        with self.server.connections_lock:  # type: ignore[attr-defined]
            self.server.open_connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class SimulatorServer(Startable):
    """The simulator on 127.0.0.1 in a daemon thread; port 0 picks a free port.

    After `stop()`, `start()` serves again on the same port (and the same state file), so
    a client keeps its URL across a simulated restart.
    """

    def __init__(
        self,
        state_path: str,
        port: int = 0,
        token: str = "sim-token",
        smtp_host: str | None = None,
        smtp_port: int = 25,
        reply_from: str = DEFAULT_REPLY_FROM,
        facilities: list[dict] | None = None,
    ) -> None:
        self.state_path = state_path
        self.port = port
        self.token = token
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.reply_from = reply_from
        self.facilities = facilities
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimulatorServer:
        if self._server is not None:
            return self
        app = create_app(
            self.state_path,
            self.token,
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            reply_from=self.reply_from,
            facilities=self.facilities,
        )
        server = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=_TrackedHandler
        )
        server.open_connections = set()  # type: ignore[attr-defined]
        server.connections_lock = threading.Lock()  # type: ignore[attr-defined]
        self._server = server
        self.port = self._server.port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"simulator:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._server.connections_lock:  # type: ignore[attr-defined]
            open_connections = list(self._server.open_connections)  # type: ignore[attr-defined]
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None


def serve_forever(
    host: str,
    port: int,
    state_path: str,
    token: str = "sim-token",
    smtp_host: str | None = None,
    smtp_port: int = 25,
    reply_from: str = DEFAULT_REPLY_FROM,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM's KeyboardInterrupt)."""
    app = create_app(
        state_path, token, smtp_host=smtp_host, smtp_port=smtp_port, reply_from=reply_from
    )
    server = make_server(host, port, app, threaded=True)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a supervisor stopping us) closes the socket like Ctrl-C does.
        signal.signal(signal.SIGTERM, lambda *_: _raise_interrupt())
    log.info("simulator on http://%s:%s, state in %s", host, server.port, state_path)
    print(f"simulator listening on http://{host}:{server.port} (state: {state_path})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _raise_interrupt() -> None:
    raise KeyboardInterrupt
