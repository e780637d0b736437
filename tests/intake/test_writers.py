"""Writers through the real checks: confirmation by answering a one-time token, trusted
Authentication-Results only, pseudonyms, STOP, per-day limits, robots never answered,
notices rate-limited, and a reply to our own notice addressed to the right prisoner."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gateway.mail.authentication import authenticate
from gateway.models import Letter, LetterEvent, Sender, Suppression
from gateway.notices import queue_late_received, queue_notice
from gateway.states import LetterState as S
from tests.intake.conftest import LETTERS, WARM, mail

pytestmark = pytest.mark.intake

OWN_ID = "mx.gw.example"


def token_of(gw, row) -> str:
    return re.search(r"\d{4}-\d{4}", str(gw.message(row)["Subject"])).group(0)


def confirmed_senders(gw) -> list[Sender]:
    with gw.sessions() as session:
        return list(session.scalars(select(Sender).where(Sender.verified_at.is_not(None))))


# -- confirmation -----------------------------------------------------------------------------

def test_a_first_letter_waits_until_the_writer_answers_the_confirm_notice(gw):
    first, second = gw.send(mail("Петровой Марии"), mail("Иванову Ивану", LETTERS[0]))
    assert gw.letter(first).state == S.AWAITING_SENDER
    assert gw.letter(second).state == S.AWAITING_SENDER
    [notice] = gw.outbox("confirm")  # one per writer per day, for both letters
    msg = gw.message(notice)
    assert gw.recipient(notice) == "anna@example.org"
    assert msg["Auto-Submitted"] == "auto-replied" and msg["In-Reply-To"]
    assert "Петровой Марии Сергеевне" in msg.get_body(("plain",)).get_content()

    reply = mail("Re: " + str(msg["Subject"]), "Да, это я.", In_Reply_To=msg["Message-ID"])
    [answer] = gw.receive(reply)
    result = gw.check([answer])
    assert gw.letter(answer).state == S.IGNORED  # a confirmation, not a letter
    assert gw.letter(first).state == S.READY and gw.letter(second).state == S.READY
    assert sorted(result.ready) == [first, second]
    assert len(confirmed_senders(gw)) == 1
    # The next letter goes straight on; nobody asks again.
    [third] = gw.send(mail("Петровой Марии", LETTERS[1]))
    assert gw.letter(third).state == S.READY, gw.letter(third).reason
    assert len(gw.outbox("confirm")) == 1


def test_the_token_in_a_new_message_confirms_too(gw):
    [waiting] = gw.send(mail("Петровой Марии"))
    token = token_of(gw, gw.outbox("confirm")[0])
    [answer] = gw.send(mail("Код", f"Мой код: {token.replace('-', ' ')}"))
    assert gw.letter(answer).state == S.IGNORED
    assert gw.letter(waiting).state == S.READY


def test_another_writers_token_or_reply_confirms_nothing(gw):
    [waiting] = gw.send(mail("Петровой Марии"))
    notice = gw.outbox("confirm")[0]
    token = token_of(gw, notice)
    stranger = "Мэллори <mallory@evil.example>"
    gw.send(mail(f"Re: код {token}", "ok", sender=stranger),
            mail("Re: ok", "ok", sender=stranger, In_Reply_To=gw.message(notice)["Message-ID"]))
    assert gw.letter(waiting).state == S.AWAITING_SENDER
    gw.send(mail("Код 0000-0000", "неверный код"))
    assert gw.letter(waiting).state == S.AWAITING_SENDER
    assert confirmed_senders(gw) == []


def test_a_used_token_does_not_work_twice(gw):
    gw.send(mail("Петровой Марии"))
    token = token_of(gw, gw.outbox("confirm")[0])
    gw.send(mail(f"код {token}", "подтверждаю"))
    with gw.sessions() as session:
        assert session.scalar(select(Sender.token_hash)) is None


def test_confirmation_can_be_switched_off(gw):
    gw.settings.confirm_senders = False
    [lid] = gw.send(mail("Петровой Марии"))
    assert gw.letter(lid).state == S.READY
    assert gw.outbox("confirm") == []


# -- Authentication-Results -------------------------------------------------------------------

PASS = f"{OWN_ID}; dkim=pass header.d=example.org; spf=pass; dmarc=pass header.from=example.org"
FAIL = f"{OWN_ID}; dkim=fail header.d=example.org; spf=fail; dmarc=fail header.from=example.org"


def test_only_our_authserv_id_is_trusted() -> None:
    forged = "evil.example; dkim=pass header.d=example.org; dmarc=pass"
    assert authenticate([forged], own_authserv_id=OWN_ID, from_domain="example.org").verdict == "fail"
    assert authenticate([PASS, forged], own_authserv_id=OWN_ID, from_domain="example.org").verdict == "pass"
    assert authenticate([FAIL, PASS], own_authserv_id=OWN_ID, from_domain="example.org").verdict == "fail"
    assert authenticate([PASS], own_authserv_id=None, from_domain="example.org").verdict == "unknown"
    # DKIM without DMARC counts only for the From domain (aligned).
    dkim_other = f"{OWN_ID}; dkim=pass header.d=mailer.example; dmarc=none"
    dkim_own = f"{OWN_ID}; dkim=pass header.d=mail.example.org; dmarc=none"
    assert authenticate([dkim_other], own_authserv_id=OWN_ID, from_domain="example.org").verdict == "fail"
    assert authenticate([dkim_own], own_authserv_id=OWN_ID, from_domain="example.org").verdict == "pass"
    assert authenticate(["garbage;;;"], own_authserv_id=OWN_ID, from_domain="x.org").verdict == "fail"


def test_a_verified_writer_confirms_again_only_when_our_mta_saw_no_pass(gw):
    gw.settings.own_authserv_id = OWN_ID
    [first] = gw.send(mail("Петровой Марии", Authentication_Results=PASS))
    assert gw.letter(first).state == S.AWAITING_SENDER  # first letter: confirm, pass or not
    gw.send(mail(f"код {token_of(gw, gw.outbox('confirm')[0])}", "да"))
    assert gw.letter(first).state == S.READY

    [passed] = gw.send(mail("Петровой Марии", LETTERS[1], Authentication_Results=PASS))
    assert gw.letter(passed).state == S.READY
    forged = "evil.example; dkim=pass header.d=example.org; dmarc=pass"
    [spoofed] = gw.send(mail("Петровой Марии", LETTERS[2], Authentication_Results=forged))
    assert gw.letter(spoofed).state == S.AWAITING_SENDER
    assert "did not vouch" in gw.letter(spoofed).reason


# -- pseudonyms, STOP, limits -----------------------------------------------------------------

def test_a_pseudonym_line_names_the_writer_and_leaves_the_letter(gw):
    gw.settings.confirm_senders = False
    unsigned = WARM.rsplit("\n\n", 1)[0]  # no sign-off: the gateway signs with the name
    [lid] = gw.send(mail("Петровой Марии", unsigned + "\n\nПодпись: Лиса"))
    letter = gw.letter(lid)
    assert letter.writer_name == "Лиса"
    assert "Подпись" not in letter.body and "Подпись" not in letter.rendered
    assert "Лиса" in letter.rendered and "Анна Смирнова" not in letter.rendered
    [later] = gw.send(mail("Петровой Марии", LETTERS[3]))
    assert gw.letter(later).writer_name == "Лиса"  # remembered


def test_stop_silences_every_notice_and_start_lifts_it(gw):
    [waiting] = gw.send(mail("Петровой Марии"))
    [stop] = gw.send(mail("СТОП", "Больше не пишите мне."))
    assert gw.letter(stop).state == S.IGNORED
    assert gw.letter(waiting).state == S.HELD  # can never confirm now: a person decides
    with gw.sessions() as session:
        assert session.scalar(select(Suppression.reason)) == "opted_out"
    before = len(gw.outbox())
    [unknown] = gw.send(mail("Кому-то", "Привет!"))
    assert gw.letter(unknown).state == S.REJECTED
    assert len(gw.outbox()) == before  # no notice, no confirm: nothing at all
    gw.send(mail("Re: START", ""))
    with gw.sessions() as session:
        assert session.scalar(select(Suppression.id)) is None


def test_letters_over_the_daily_limit_are_held_not_dropped(gw):
    gw.settings.confirm_senders = False
    ids = gw.send(*[mail("Петровой Марии", text) for text in LETTERS[:5]])
    states = [gw.letter(i).state for i in ids]
    assert states == [S.READY] * 3 + [S.HELD] * 2
    assert "daily limit" in gw.letter(ids[-1]).reason
    [held] = gw.outbox("held")  # one per writer per day
    assert "дневной предел" in gw.message(held).get_body(("plain",)).get_content()


# -- robots and rate limits -------------------------------------------------------------------

def test_robots_are_never_answered_whatever_the_path(gw):
    [lid] = gw.send(mail("Автоответ: Петровой Марии", "Я в отпуске", Auto_Submitted="auto-replied"))
    letter = gw.letter(lid)
    assert letter.state == S.IGNORED
    assert gw.outbox() == []
    with gw.sessions() as session:  # a later path (a person's action) asks for a notice
        assert queue_notice(session, gw.settings, session.get(type(letter), lid), "returned",
                            findings=[]) == []


def test_the_same_notice_goes_once_a_day_and_the_daily_cap_holds(gw):
    gw.send(mail("Кому-то", "Привет!"), mail("Ещё кому-то", "Привет ещё!"))
    assert len(gw.outbox("unknown_recipient")) == 1
    gw.settings.notices_per_writer_per_day = 1
    gw.send(mail("Иванову Иванам Иванушкам Петровой", "Здравствуйте!"))
    assert len(gw.outbox()) == 1


def test_received_is_sent_late_and_only_if_nothing_else_was(gw):
    gw.settings.confirm_senders = False
    [lid] = gw.send(mail("Петровой Марии"))
    [other] = gw.send(mail("Иванову Ивану", WARM))
    assert gw.outbox("received") == []  # nothing composed while the letters may go at once
    with gw.sessions() as session:
        assert queue_late_received(session, gw.settings) == []  # not late yet
        letter = session.get(Letter, other)
        letter.provider_number = "FSIN-1"
        assert queue_notice(session, gw.settings, letter, "sent")  # this one went
        session.commit()
    gw.settings.received_notice_after_s = 0
    with gw.sessions() as session:
        late = queue_late_received(session, gw.settings)
        session.commit()
        assert len(late) == 1 and queue_late_received(session, gw.settings) == []
    [received] = gw.outbox("received")
    assert received.letter_id == lid and received.state == "PENDING"
    assert "Петровой Марии" in gw.message(received).get_body(("plain",)).get_content()


# -- addressing by answering our notice -------------------------------------------------------

def test_a_corrected_letter_sent_as_a_reply_to_our_notice_reaches_the_same_prisoner(gw):
    gw.settings.confirm_senders = False
    [lid] = gw.send(mail("Петровой Марии", WARM))
    with gw.sessions() as session:
        letter = session.get(type(gw.letter(lid)), lid)
        [row_id] = queue_notice(session, gw.settings, letter, "returned", findings=[])
        session.commit()
    notice = [r for r in gw.outbox() if r.id == row_id][0]
    [again] = gw.send(mail("Re: Письмо нужно исправить / Your letter needs a change",
                           LETTERS[4],
                           In_Reply_To=gw.message(notice)["Message-ID"]))
    assert gw.letter(again).state == S.READY
    assert gw.letter(again).prisoner_id == gw.letter(lid).prisoner_id


def test_the_event_log_records_the_confirmation(gw):
    [lid] = gw.send(mail("Петровой Марии"))
    gw.send(mail(f"код {token_of(gw, gw.outbox('confirm')[0])}", "да"))
    with gw.sessions() as session:
        notes = [e.note for e in session.scalars(
            select(LetterEvent).where(LetterEvent.letter_id == lid).order_by(LetterEvent.id))]
    assert any("confirmed" in (n or "") for n in notes)
