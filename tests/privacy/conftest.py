"""Privacy tests: a throwaway CA and TLS mail servers (aiosmtpd, Dovecot) using it, and a
migrated SQLite database per test."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import make_engine
from gateway.devstack.dovecot import DovecotServer
from gateway.devstack.ports import free_port
from gateway.directory import DEMO_CSV, import_rows, read_rows
from gateway.migrate import upgrade
from tests.privacy.certs import Issued, TestCA

SMTP_USER, SMTP_PASSWORD = "gateway", "smtp-pass-123"


@pytest.fixture(scope="session")
def pki() -> Iterator[dict]:
    """The trusted test CA, a stranger CA, and server certificates for 127.0.0.1."""
    folder = Path(tempfile.mkdtemp(prefix="gw-pki-"))
    ca, stranger = TestCA(folder / "ca"), TestCA(folder / "stranger", "Stranger CA")
    yield {"ca": ca, "stranger": stranger,
           # valid for the IP only: connecting as "localhost" is a wrong host name
           "good": ca.issue("127.0.0.1"), "foreign": stranger.issue("127.0.0.1")}
    shutil.rmtree(folder, ignore_errors=True)


class _Recorder:
    """aiosmtpd handler + authenticator that keeps what it saw."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes, bool]] = []  # (rcpts, data, over TLS)
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):
        over_tls = (session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None)
        self.messages.append((list(envelope.rcpt_tos), envelope.content, over_tls))
        return "250 OK"

    def __call__(self, server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == (SMTP_USER, SMTP_PASSWORD))


class TlsSmtp:
    def __init__(self, issued: Issued | None, implicit: bool) -> None:
        self.host, self.port, self.seen = "127.0.0.1", free_port(), _Recorder()
        # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is TLS from the start
        kw: dict = {"authenticator": self.seen, "auth_require_tls": not implicit}
        if issued is not None:
            kw["ssl_context" if implicit else "tls_context"] = issued.server_context()
            if not implicit:
                kw["require_starttls"] = True
        self.controller = Controller(self.seen, hostname=self.host, port=self.port,
                                     ready_timeout=10, **kw)

    def __enter__(self) -> TlsSmtp:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@pytest.fixture
def tls_smtp():
    """tls_smtp(issued, implicit=False): a running aiosmtpd with that certificate."""
    servers: list[TlsSmtp] = []

    def start(issued: Issued | None, implicit: bool = False) -> TlsSmtp:
        server = TlsSmtp(issued, implicit).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


@pytest.fixture(scope="module")
def tls_dovecot(pki) -> Iterator[DovecotServer]:
    """Dovecot offering STARTTLS on `port` and implicit TLS on `tls_port`."""
    root = Path(tempfile.mkdtemp(prefix="gw-dovecot-tls-"))
    server = DovecotServer(root, tls=(pki["good"].cert, pki["good"].key)).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


class Listener:
    """A bare TCP listener on every interface that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("0.0.0.0", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def own_public_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: no packet is sent
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        import_rows(session, read_rows(DEMO_CSV))
        session.commit()
    yield factory
    engine.dispose()
