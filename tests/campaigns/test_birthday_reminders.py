"""Birthday reminders, double opt-in, through the real checks: asking sends a code and
nothing else; no reminder before the code comes back; then one per birthday campaign,
once, Russian first with the STOP line; replying to it greets that prisoner; STOP ends it
and the subscriber is forgotten."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from gateway import birthday_reminders, birthdays
from gateway.models import BirthdaySubscriber, Letter, Prisoner
from tests.intake.conftest import GATEWAY, WARM, mail

pytestmark = pytest.mark.campaigns

ANNA = "Анна Смирнова <anna@example.org>"


def to_birthdays(subject: str, body: str = "Хочу поздравлять!", **headers) -> bytes:
    return mail(subject, body, sender=ANNA, **headers).replace(
        f"To: {GATEWAY}".encode(), b"To: letters+birthdays@gw.example")


def test_double_opt_in_reminders_reply_and_stop(gw):
    gw.settings.confirm_senders = False
    today = date.today()
    with gw.sessions() as session:
        k101 = session.scalar(select(Prisoner).where(Prisoner.code == "K101"))
        k101.birth_date = date(1980, 1, 1).replace(month=today.month, day=min(today.day, 28))
        session.commit()

    gw.check(gw.receive(to_birthdays("Подписка")))
    [ask] = gw.outbox("birthdays_confirm")
    assert gw.recipient(ask) == "anna@example.org"
    asked = gw.message(ask)
    body = asked.get_content()
    assert body.index("Здравствуйте") < body.index("Hello") and "СТОП" in body
    code = re.search(r"\d{4}-\d{4}", asked["Subject"]).group(0)

    with gw.sessions() as session:
        made = birthdays.run_daily(session, 14, today=today)
        session.commit()
        assert birthday_reminders.queue_reminders(session, gw.settings, today) == []
        session.commit()  # not confirmed: no reminder

    gw.check(gw.receive(mail(f"Re: {asked['Subject']}", "Да!", sender=ANNA,
                             In_Reply_To=asked["Message-ID"])))
    assert len(gw.outbox("birthdays_subscribed")) == 1
    with gw.sessions() as session:
        assert session.scalar(select(BirthdaySubscriber.confirmed_at)) is not None
        ids = birthday_reminders.queue_reminders(session, gw.settings, today)
        session.commit()
        assert len(ids) == len(made) >= 1
        assert birthday_reminders.queue_reminders(session, gw.settings, today) == []  # once
    [reminder] = gw.outbox("birthday_reminder")
    assert gw.recipient(reminder) == "anna@example.org"
    sent = gw.message(reminder)
    tag = made[0].tag
    assert sent["Subject"].startswith(f"[{tag}]")
    text = sent.get_content()
    assert text.index("Здравствуйте") < text.index("Hello") and "STOP" in text
    assert code not in text and "у Иванова Ивана Ивановича" in text, text

    # "Reply to this mail with your greeting" works: the reply greets that prisoner.
    greeting = gw.receive(mail(f"Re: {sent['Subject']}", WARM, sender=ANNA,
                               In_Reply_To=sent["Message-ID"]))
    gw.check(greeting)
    with gw.sessions() as session:
        letter = session.get(Letter, greeting[0])
        assert letter.prisoner_id == k101.id and letter.campaign_id is not None, letter.reason

    gw.check(gw.receive(mail("STOP", "", sender=ANNA)))
    with gw.sessions() as session:
        k102 = session.scalar(select(Prisoner).where(Prisoner.code == "K102"))
        k102.birth_date = k101.birth_date
        session.commit()
        assert birthdays.make_campaigns(session, today, 14)
        assert birthday_reminders.queue_reminders(session, gw.settings, today) == []
        session.commit()
        assert session.scalar(select(BirthdaySubscriber)) is None  # forgotten


def test_nobody_who_did_not_ask_gets_a_reminder(gw):
    gw.settings.confirm_senders = False
    gw.check(gw.receive(mail("Иванову Ивану", WARM, sender=ANNA)))
    today = date.today()
    with gw.sessions() as session:
        session.scalar(select(Prisoner).where(Prisoner.code == "K101")).birth_date = \
            date(1980, today.month, min(today.day, 28))
        session.commit()
        assert birthdays.make_campaigns(session, today, 14)
        assert birthday_reminders.queue_reminders(session, gw.settings, today) == []


def test_key_rotation_re_keys_subscribers_so_stop_still_finds_them(gw):
    from gateway.config import Settings
    from gateway.crypto import Keyring, keyring
    from gateway.rotation import rotate
    from tests.intake.conftest import SECRET
    gw.settings.confirm_senders = False
    gw.check(gw.receive(to_birthdays("Подписка")))
    new = "a-new-secret-for-this-test-0123456789abcdef"
    rotated = Settings(**{**gw.settings.model_dump(), "secret_key": new,
                          "old_secret_keys": SECRET})
    rotate(gw.sessions, keyring(rotated))
    only_new = Keyring(new)
    with gw.sessions() as session:
        sub = session.scalar(select(BirthdaySubscriber))
        assert only_new.unseal(sub.address_sealed) == "anna@example.org"
        assert sub.address_hash == only_new.address_hash("anna@example.org")


def test_an_unconfirmed_request_is_forgotten_when_its_code_expires(gw):
    from datetime import timedelta

    from gateway.models import utcnow
    gw.settings.confirm_senders = False
    gw.check(gw.receive(to_birthdays("Подписка")))
    with gw.sessions() as session:
        birthday_reminders.queue_reminders(session, gw.settings, date.today())
        session.commit()
        sub = session.scalar(select(BirthdaySubscriber))
        assert sub is not None and sub.confirmed_at is None  # still within its week
        sub.token_expires_at = utcnow() - timedelta(minutes=1)
        session.commit()
        birthday_reminders.queue_reminders(session, gw.settings, date.today())
        session.commit()
        assert session.scalar(select(BirthdaySubscriber)) is None
