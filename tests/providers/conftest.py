"""Provider tests: a migrated SQLite database per test, the simulator over HTTP, letters
built through the models, and the e2e `make_stack` for the run through real Celery."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.config import Settings
from gateway.crypto import address_hash, seal
from gateway.db import make_engine
from gateway.devstack.smtp import SmtpSink
from gateway.directory import DEMO_CSV, import_rows, read_rows
from gateway.formatting import render_letter
from gateway.migrate import upgrade
from gateway.models import InboundMessage, Letter, LetterEvent, Prisoner
from gateway.pipeline.intake import Mailbox
from gateway.pricing import quote
from gateway.providers.http import HttpProvider
from gateway.providers.policy import SubmissionPolicy
from gateway.providers.profiles import load_profiles
from gateway.simulator.server import SimulatorServer
from gateway.states import LetterState as S
from tests.e2e.conftest import make_stack  # noqa: F401 - the fixture, reused as is

TOKEN = "providers-token"
REPLIES = "replies@gateway.local"
SECRET = "providers-secret-0123456789abcdef01234"
WARM = ("Здравствуйте, Мария!\n\nПишу вам из Петербурга. У нас выпал первый снег, и город "
        "стал тихим и светлым. Мы все помним о вас и ждём.\n\nОбнимаю,\nАнна")


@pytest.fixture
def db_url(request, tmp_path: Path) -> str:
    """SQLite by default; `@pytest.mark.parametrize("db_url", ["sqlite", "postgres"],
    indirect=True)` runs a test on a throwaway PostgreSQL database too."""
    if getattr(request, "param", "sqlite") == "postgres":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        import_rows(session, read_rows(DEMO_CSV))
        session.commit()
    yield factory
    engine.dispose()


@pytest.fixture
def sink(mailboxes) -> Iterator[SmtpSink]:
    """Outgoing SMTP: the reply mailbox's address delivers into Dovecot, the rest is kept."""
    with SmtpSink(deliver={REPLIES: (mailboxes, "replies")}) as server:
        yield server


@pytest.fixture
def sim(request, tmp_path: Path) -> Iterator[SimulatorServer]:
    server = SimulatorServer(str(tmp_path / "sim.db"), token=TOKEN)
    if "sink" in request.fixturenames:  # the service mails scans to the reply mailbox too
        smtp = request.getfixturevalue("sink")
        server.smtp_host, server.smtp_port = smtp.host, smtp.port
    with server:
        yield server


@pytest.fixture
def reply_mailbox(mailboxes) -> Mailbox:
    return Mailbox(mailboxes.host, mailboxes.port, "replies", "secret")


@pytest.fixture
def settings(request, db_url: str, sim: SimulatorServer) -> Settings:
    smtp = request.getfixturevalue("sink") if "sink" in request.fixturenames else None
    return Settings(database_url=db_url, provider_url=sim.url, provider_token=TOKEN,
                    provider_timeout=1.0, secret_key=SECRET, max_submit_attempts=30,
                    org_reply_email=REPLIES, smtp_host="127.0.0.1",
                    smtp_port=smtp.port if smtp else 1, smtp_timeout=5.0,
                    max_send_attempts=5, _env_file=None)


@pytest.fixture
def policy() -> SubmissionPolicy:
    # Fast retries so a test of many faults runs in seconds; the breaker stays realistic.
    return SubmissionPolicy(retry_base_s=0.05, retry_cap_s=0.2, breaker_threshold=5,
                            breaker_cooldown_s=0.3, breaker_max_cooldown_s=1.0)


@pytest.fixture
def http(settings: Settings) -> Iterator[HttpProvider]:
    provider = HttpProvider.from_settings(settings)
    yield provider
    provider.close()


class SimControl:
    def __init__(self, server: SimulatorServer):
        self.url = server.url

    def post(self, path: str, body: dict) -> dict:
        r = httpx.post(self.url + path, json=body, timeout=10)
        assert r.status_code < 300, r.text
        return r.json()

    def faults(self, **plan) -> None:
        self.post("/_sim/faults", plan)

    def letters(self) -> list[dict]:
        return httpx.get(self.url + "/_sim/letters", timeout=10).json()["letters"]

    def ledger(self) -> list[dict]:
        return httpx.get(self.url + "/_sim/ledger", timeout=10).json()["charges"]


@pytest.fixture
def control(sim: SimulatorServer) -> SimControl:
    return SimControl(sim)


_serial = itertools.count(1)


def make_letter(session: Session, *, code: str = "K102", state: S = S.READY,
                body: str = WARM, writer: str = "anna@example.org",
                provider: str | None = None) -> Letter:
    """A checked letter as checking.py leaves it, built through the models."""
    n = next(_serial)
    prisoner = session.scalar(select(Prisoner).where(Prisoner.code == code))
    if provider is not None:
        prisoner.provider = provider
    raw = f"Subject: test {n}\n\n{body}".encode()
    inbound = InboundMessage(mailbox="INBOX", uidvalidity=1, uid=n,
                             content_hash=uuid.uuid4().hex, size=len(raw), raw=raw)
    session.add(inbound)
    session.flush()
    rendered = render_letter(prisoner.provider, prisoner=prisoner, writer_name="Анна", body=body)
    profile = load_profiles().get(prisoner.provider) or load_profiles()["http"]
    q = quote(rendered, 0, True, profile)
    letter = Letter(public_id=str(uuid.uuid4()), inbound_id=inbound.id, state=state,
                    prisoner_id=prisoner.id, sender_sealed=seal(SECRET, writer),
                    sender_hash=address_hash(SECRET, writer), writer_name="Анна",
                    subject=f"test {n}", body=body, rendered=rendered,
                    provider=prisoner.provider, pages=q.pages, price=q.amount,
                    currency=q.currency)
    session.add(letter)
    session.flush()
    session.add(LetterEvent(letter_id=letter.id, from_state=None, to_state=state))
    return letter


@pytest.fixture
def letters(sessions) -> Callable[..., list[int]]:
    def make(n: int = 1, **kw) -> list[int]:
        with sessions() as session:
            ids = [make_letter(session, **kw).id for _ in range(n)]
            session.commit()
        return ids
    return make


def states(sessions, ids: list[int]) -> list[str]:
    with sessions() as session:
        return [session.get(Letter, i).state for i in ids]


def price_of(sessions, letter_id: int) -> Decimal:
    with sessions() as session:
        return session.get(Letter, letter_id).price
