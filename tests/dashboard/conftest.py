"""Dashboard fixtures: a real SQLite file with the real schema, the real Flask app, seeded
letters in every state the pages care about, and logged-in test clients."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.crypto import address_hash, seal
from gateway.db import engine_for, session_factory
from gateway.models import (
    Base,
    InboundMessage,
    Letter,
    LetterEvent,
    Prisoner,
    Reply,
    ReplyPage,
    utcnow,
)
from gateway.web import accounts
from gateway.web.accounts import create_user
from gateway.web.app import create_app

SECRET = "dashboard-test-secret-0123456789abcdef"
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch):
    """Still argon2id, at the lowest cost: the suite hashes dozens of passwords on a shared
    machine. The production parameters are argon2-cffi's defaults."""
    fast = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", fast)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", fast.hash("dummy"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/gateway.db", secret_key=SECRET,
                    broker_url="redis://127.0.0.1:1/0", monthly_budget_rub=5000.0)


@pytest.fixture
def sessions(settings: Settings) -> Callable[[], Session]:
    Base.metadata.create_all(engine_for(settings.database_url))
    return session_factory(settings.database_url)


@pytest.fixture
def app(settings: Settings, sessions):
    app = create_app(settings)
    # These tests read English texts: the dashboard's default (Russian) and both languages
    # are covered by tests/dashboard/test_i18n.py.
    app.config.update(TESTING=True, OVERVIEW_SETTLED_SECONDS=0, DASHBOARD_DEFAULT_LOCALE="en")
    with sessions() as session:
        for role in ("admin", "moderator", "viewer", "volunteer"):
            create_user(session, role, PASSWORD, role)
        session.commit()
    yield app
    engine_for(settings.database_url).dispose()


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client)})


@pytest.fixture
def as_user(app) -> Callable[[str], FlaskClient]:
    def make(username: str) -> FlaskClient:
        client = app.test_client()
        response = login(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client
    return make


class Seeder:
    """Letters in given states, with the inbound message, sealed writer and event log the
    pipeline would have left."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self.sessions = sessions
        with sessions() as session:
            prisoner = Prisoner(code="IVA1", last_name="Иванов", first_name="Иван",
                                middle_name="Иванович", birth_year=1980, region="Москва",
                                facility_name="ИК-1 Москва", facility_id="FAC-1")
            session.add(prisoner)
            session.commit()
            self.prisoner_id = prisoner.id

    def letter(self, state: str, *, body: str = "Держитесь! Мы с вами.", **values) -> int:
        with self.sessions() as session:
            raw = f"Message-ID: <{uuid.uuid4()}@test>\r\n\r\n{body}".encode()
            inbound = InboundMessage(mailbox="INBOX", uidvalidity=1,
                                     uid=uuid.uuid4().int % 10**9,
                                     content_hash=uuid.uuid4().hex, size=len(raw), raw=raw)
            session.add(inbound)
            session.flush()
            writer = values.pop("writer", "maria.writer@example.org")
            fields = dict(
                public_id=uuid.uuid4().hex, inbound_id=inbound.id, state=state,
                prisoner_id=self.prisoner_id, sender_sealed=seal(SECRET, writer),
                sender_hash=address_hash(SECRET, writer), writer_name="Мария",
                subject="Иванову Ивану", body=body, rendered=f"Здравствуйте!\n\n{body}\n\nМария",
                provider="http", pages=1)
            fields.update(values)
            letter = Letter(**fields)
            session.add(letter)
            session.flush()
            session.add(LetterEvent(letter_id=letter.id, from_state=None, to_state="RECEIVED",
                                    at=utcnow() - timedelta(hours=1)))
            if state != "RECEIVED":
                session.add(LetterEvent(letter_id=letter.id, from_state="RECEIVED",
                                        to_state=state, note=values.get("reason")))
            session.commit()
            return letter.id

    def submitted(self, number: str, price: str = "312.50") -> int:
        return self.letter("SUBMITTED", provider_number=number, price=Decimal(price),
                           currency="RUB", submitted_at=utcnow())

    def unmatched_reply(self, number: str | None, page: bytes,
                        content_type: str = "image/png") -> int:
        with self.sessions() as session:
            reply = Reply(source="email", external_id=f"<{uuid.uuid4()}@scan>",
                          letter_number=number, state="UNMATCHED",
                          note="no letter with this number; a person decides")
            session.add(reply)
            session.flush()
            session.add(ReplyPage(reply_id=reply.id, n=1, content_type=content_type, data=page))
            session.commit()
            return reply.id

    def get(self, letter_id: int) -> Letter:
        with self.sessions() as session:
            letter = session.get(Letter, letter_id)
            session.expunge(letter)
            return letter

    def events(self, letter_id: int) -> list[LetterEvent]:
        with self.sessions() as session:
            return list(session.query(LetterEvent).filter_by(letter_id=letter_id)
                        .order_by(LetterEvent.id))


@pytest.fixture
def seed(sessions) -> Seeder:
    return Seeder(sessions)


HELD_FINDINGS = [{"rule": "topics", "code": "politics", "severity": "hold",
                  "passages": ["митинг"], "reason_ru": "Политика", "reason_en": "Politics",
                  "reason_organizer": "mentions a rally"}]
