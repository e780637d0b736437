"""The organizers' weekly digest: plural forms, the figures over a seeded database, and the
mail through the real outbox (an aiosmtpd sink) to opted-in organizers only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from gateway.config import Settings
from gateway.crypto import Keyring
from gateway.db import engine_for, session_factory
from gateway.digest.figures import week_figures
from gateway.digest.mail import queue_digests, render_digest
from gateway.digest.subscription import masked_email, set_digest
from gateway.models import (
    Base,
    CensorDecision,
    InboundMessage,
    Letter,
    LetterEvent,
    OutboundMail,
    Prisoner,
    Reply,
    User,
)
from gateway.pipeline.outbox import send_pending
from gateway.plural import ru_count

pytestmark = pytest.mark.directory

SECRET = "digest-test-secret-0123456789abcdef"
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize("n,expected", [
    (0, "0 писем"), (1, "1 письмо"), (2, "2 письма"), (4, "4 письма"), (5, "5 писем"),
    (11, "11 писем"), (12, "12 писем"), (14, "14 писем"), (21, "21 письмо"),
    (22, "22 письма"), (25, "25 писем"), (101, "101 письмо"), (111, "111 писем"),
    (1002, "1002 письма"),
])
def test_russian_plural_forms(n, expected):
    assert ru_count(n, "письмо", "письма", "писем") == expected


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/d.db"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def settings(database_url, smtp_sink):
    return Settings(database_url=database_url, secret_key=SECRET,
                    gateway_address="letters@gw.example", monthly_budget_rub=1000.0,
                    smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_security="none",
                    broker_url="redis://127.0.0.1:1/0")


@pytest.fixture
def sessions(settings):
    Base.metadata.create_all(engine_for(settings.database_url))
    yield session_factory(settings.database_url)
    engine_for(settings.database_url).dispose()


class Seed:
    def __init__(self, session):
        self.s, self.n = session, 0

    def prisoner(self, code, last, facility, **kw):
        p = Prisoner(code=code, last_name=last, first_name="Иван", facility_name=facility,
                     facility_id=code, provider=kw.pop("provider", "http"), **kw)
        self.s.add(p)
        self.s.flush()
        return p

    def letter(self, prisoner, state, created, **kw):
        self.n += 1
        inbound = InboundMessage(mailbox="INBOX", uidvalidity=1, uid=self.n,
                                 content_hash=f"{self.n:064d}", size=1, raw=b"x")
        self.s.add(inbound)
        self.s.flush()
        letter = Letter(public_id=f"p{self.n}", inbound_id=inbound.id, state=state,
                        prisoner_id=prisoner.id if prisoner else None, created_at=created,
                        provider=prisoner.provider if prisoner else None, **kw)
        self.s.add(letter)
        self.s.flush()
        return letter

    def event(self, letter, to_state, at):
        self.s.add(LetterEvent(letter_id=letter.id, from_state="RECEIVED", to_state=to_state,
                               at=at))


def seed(s) -> None:
    d = Seed(s)
    day = timedelta(days=1)
    a = d.prisoner("K1", "Иванов", "ИК-2", birth_date=date(1985, 12, 12))
    b = d.prisoner("K2", "Петров", "СИЗО-1")
    d.prisoner("K3", "Сидоров", "ИК-9", birth_date=date(1990, 12, 30))  # 23 days
    d.prisoner("K4", "Свободин", "—", status="released", can_receive=False)
    post = d.prisoner("K5", "Орлов", "ИК-5", provider="post")
    # Sent this week (3), and one last month that counts for neither the week nor the month.
    for _ in range(3):
        d.letter(a, "SUBMITTED", NOW - 2 * day, submitted_at=NOW - 2 * day, price=Decimal("110"))
    d.letter(b, "DELIVERED", NOW - 40 * day, submitted_at=NOW - 40 * day, price=Decimal("55"))
    # Six days ago is 1 December: this week and this month both.
    d.letter(b, "CENSORED", NOW - 6 * day, submitted_at=NOW - 6 * day, price=Decimal("55"))
    # Held twice (one letter) and one returned, this week; one held two weeks ago.
    held = d.letter(a, "HELD", NOW - day)
    d.event(held, "HELD", NOW - day)
    d.event(held, "HELD", NOW - day + timedelta(hours=1))
    old_held = d.letter(a, "HELD", NOW - 14 * day)
    d.event(old_held, "HELD", NOW - 14 * day)
    returned = d.letter(None, "REJECTED", NOW - day)
    d.event(returned, "REJECTED", NOW - day)
    # Censored: two at ИК-2, one at СИЗО-1 this week; one old.
    for facility, at in (("ИК-2", NOW - day), ("ИК-2", NOW - 2 * day),
                         ("СИЗО-1", NOW - 3 * day), ("СИЗО-1", NOW - 20 * day)):
        letter = d.letter(b, "CENSORED", at)
        s.add(CensorDecision(letter_id=letter.id, facility_name=facility, at=at))
    s.add_all([Reply(source="api", external_id=f"r{i}", received_at=NOW - i * 3 * day)
               for i in range(4)])  # 0, 3, 6 days ago this week; 9 days ago not
    d.letter(post, "DESK", NOW - day)
    d.letter(post, "DESK", NOW - day)
    d.letter(a, "DESK", NOW - day)
    s.flush()
    s.get(Letter, d.n).provider = "desk"


def test_figures_over_a_seeded_database(sessions, settings):
    with sessions() as s:
        seed(s)
        s.commit()
        f = week_figures(s, settings, NOW)
    assert (f.start, f.end) == (date(2026, 11, 30), date(2026, 12, 7))
    assert f.sent == 4  # three this week and the censored one of six days ago
    assert f.held == 1 and f.held_now == 2 and f.returned == 1
    assert f.censored_by_facility == [("ИК-2", 2), ("СИЗО-1", 1)]
    assert f.replies == 3
    assert f.month_spent == Decimal("385") and f.budget_share == 39  # 3×110 + 55 of 1000
    assert [b.name for b in f.birthdays] == ["Иванов Иван"]  # the 30th is 23 days away
    # No letter for 30 days: Сидоров (none ever) and Орлов (DESK counts as on its way: no).
    assert f.quiet == [("Сидоров Иван", "ИК-9")]
    assert (f.desk_backlog, f.post_backlog) == (1, 2)
    text = render_digest(f, "Письма")
    assert text.index("Отправлено: 4 письма.") < text.index("Sent: 4 letters.")
    assert "• ИК-2: 2 письма" in text and "• СИЗО-1: 1 письмо" in text
    assert "Ответы заключённых: 3 ответа." in text
    assert "385 ₽ из 1\u00a0000 ₽ (39% бюджета)" in text
    assert "12 декабря 2026 — Иванов Иван (ИК-2), 41 год" in text


def _user(s, name, *, email=None, opt_in=False, active=True):
    user = User(username=name, password_hash="x", role="viewer", active=active)
    if email:
        set_digest(user, Keyring(SECRET), email=email, opt_in=opt_in)
    else:
        user.digest_opt_in = opt_in
    s.add(user)
    return user


def test_the_digest_goes_through_the_outbox_only_to_opted_in_organizers(
        sessions, settings, smtp_sink):
    with sessions() as s:
        seed(s)
        _user(s, "olga", email="olga@org.example", opt_in=True)
        _user(s, "boris", email="boris@org.example", opt_in=False)
        _user(s, "nina", opt_in=True)  # opted in without an address (set directly): nothing
        _user(s, "gone", email="gone@org.example", opt_in=True, active=False)
        s.commit()
        ids = queue_digests(s, settings, NOW)
        s.commit()
        assert queue_digests(s, settings, NOW + timedelta(hours=2)) == []  # same week: once
        assert s.get(User, 1).email_sealed != "olga@org.example"  # sealed at rest
        assert masked_email(s.get(User, 1), Keyring(SECRET)) == "o***@o***.example"
    assert len(ids) == 1
    counts = send_pending(sessions, settings, ids)
    assert counts["sent"] == 1
    mail = smtp_sink.wait_for(lambda m: True)
    assert [m.rcpt_tos for m in smtp_sink.messages] == [["olga@org.example"]]
    body = mail.message.get_body(("plain",)).get_content()
    assert "Отправлено: 4 письма." in body and mail.message["Auto-Submitted"] == "auto-generated"
    with sessions() as s:
        assert s.get(OutboundMail, ids[0]).state == "SENT"


def test_opting_in_needs_an_address_and_a_real_one():
    user = User(username="x", password_hash="x")
    with pytest.raises(ValueError):
        set_digest(user, Keyring(SECRET), email=None, opt_in=True)
    for bad in ("not an address", "a@b", "Olga <o@org.example>", "o@org.example\r\nBcc: x@y.z"):
        with pytest.raises(ValueError):
            set_digest(user, Keyring(SECRET), email=bad, opt_in=True)
    set_digest(user, Keyring(SECRET), email="o@org.example", opt_in=True)
    assert user.digest_opt_in and user.email_sealed


def test_the_beat_schedules_the_weekly_digest():
    from celery.schedules import crontab

    from workers.sender import app
    entry = app.conf.beat_schedule["weekly-digest"]
    assert entry["task"] == "workers.tasks.send_digests"
    assert entry["schedule"] == crontab(day_of_week="mon", hour=6, minute=0)
    # That the worker registers the task is checked for every beat entry in
    # tests/test_process_footprint.py (importing workers.tasks here would change the app).
