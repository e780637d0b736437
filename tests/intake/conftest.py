"""Intake pipeline fixtures: a real SQLite database with the real schema, a directory of
prisoners, and helpers that put raw mail through store_messages and check_letters exactly
as the workers do (with the bounded parser)."""

from __future__ import annotations

import email
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.crypto import keyring, unseal, unseal_bytes
from gateway.db import engine_for, session_factory
from gateway.models import Base, Letter, OutboundMail, Prisoner
from gateway.pipeline.checking import CheckResult, check_letters
from gateway.pipeline.intake import Mailbox, store_messages

GATEWAY = "letters@gw.example"
SECRET = "intake-test-secret-0123456789abcdef012"
WARM = ("Здравствуйте, Мария!\n\nПишу вам из Петербурга. У нас выпал первый снег, и город стал "
        "тихим и светлым. Мы все помним о вас и ждём.\n\nОбнимаю,\nАнна")

# Different ordinary letters (the rules' warm corpus), so the duplicate rule stays quiet.
LETTERS = [p.read_text(encoding="utf-8") for p in
           sorted((Path(__file__).resolve().parents[1] / "rules" / "letters").glob("*.txt"))]

PRISONERS = [
    dict(code="K101", last_name="Иванов", first_name="Иван", middle_name="Иванович",
         birth_year=1980, facility_name="ИК-2 Мордовия", facility_id="13-ik-2"),
    dict(code="K102", last_name="Петрова", first_name="Мария", middle_name="Сергеевна",
         birth_year=1990, facility_name="СИЗО-2 Москва", facility_id="77-sizo-2"),
]


def mail(subject: str, body: str = WARM, sender: str = "Анна Смирнова <anna@example.org>",
         **headers: str) -> bytes:
    msg = EmailMessage()
    msg["Return-Path"] = "<" + sender.rpartition("<")[2].rstrip(">") + ">" \
        if "<" in sender else f"<{sender}>"
    msg["From"] = sender
    msg["To"] = GATEWAY
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="example.org")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return bytes(msg)


@dataclass
class Gateway:
    settings: Settings
    sessions: Callable[[], Session]
    _uids: itertools.count

    def receive(self, *raws: bytes) -> list[int]:
        mailbox = Mailbox("127.0.0.1", 1, "letters", "x")
        with self.sessions() as session:
            ids = []
            for raw in raws:
                ids += store_messages(session, mailbox, 1, {next(self._uids): raw}, {},
                                      keys=keyring(self.settings))
            session.commit()
        return ids

    def check(self, ids: list[int]) -> CheckResult:
        with self.sessions() as session:
            result = check_letters(session, ids, self.settings)
            session.commit()
        return result

    def send(self, *raws: bytes) -> list[int]:
        """Receive and check: the letter ids."""
        ids = self.receive(*raws)
        self.check(ids)
        return ids

    def letter(self, letter_id: int) -> Letter:
        with self.sessions() as session:
            return session.get(Letter, letter_id)

    def outbox(self, kind: str | None = None) -> list[OutboundMail]:
        with self.sessions() as session:
            query = select(OutboundMail).order_by(OutboundMail.id)
            if kind:
                query = query.where(OutboundMail.kind == kind)
            return list(session.scalars(query))

    def message(self, row: OutboundMail) -> EmailMessage:
        return email.message_from_bytes(unseal_bytes(SECRET, row.message), policy=policy.default)

    def recipient(self, row: OutboundMail) -> str:
        return unseal(SECRET, row.recipient_sealed)


@pytest.fixture
def gateway_settings(tmp_path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/gateway.db", secret_key=SECRET,
                    gateway_address=GATEWAY, org_reply_email="replies@gw.example",
                    broker_url="redis://127.0.0.1:1/0", confirm_senders=True,
                    sender_daily_limit=3)


def seeded_gateway(settings: Settings) -> Gateway:
    """The schema and the test directory in settings' database, and a Gateway on it."""
    Base.metadata.create_all(engine_for(settings.database_url))
    sessions = session_factory(settings.database_url)
    with sessions() as session:
        for p in PRISONERS:
            session.add(Prisoner(**p))
        session.commit()
    return Gateway(settings, sessions, itertools.count(1))


@pytest.fixture
def gw(gateway_settings: Settings) -> Gateway:
    yield seeded_gateway(gateway_settings)
    engine_for(gateway_settings.database_url).dispose()
