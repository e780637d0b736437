"""Replies home: by API and by e-mail (real Dovecot), deduplicated into one forward sent over
real SMTP (aiosmtpd) with a VERP return path; triage with suggestions; SMTP 451 retried
from the database, 550 recorded as a bounce that keeps later replies for organizers."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage, Message
from email.mime.message import MIMEMessage

import pytest
from sqlalchemy import func, select

from gateway.mail.bounces import handle_bounce, outbound_id_from, verp_address
from gateway.models import (
    Cursor,
    Letter,
    LetterEvent,
    OutboundMail,
    Reply,
    Suppression,
    utcnow,
)
from gateway.pipeline.outbox import send_pending
from gateway.pipeline.statuses import poll_statuses
from gateway.pipeline.submission import submit_many
from gateway.replies.intake import confirm_match, poll_mailbox, poll_provider, store_upload
from gateway.states import LetterState as S

pytestmark = [pytest.mark.providers, pytest.mark.timeout(90)]

WRITER = "anna@example.org"


def submit(sessions, http, settings, policy, letters, n=1, **kw) -> list[Letter]:
    ids = letters(n, **kw)
    assert submit_many(sessions, http, ids, settings, policy).submitted == ids
    with sessions() as session:
        return [session.get(Letter, i) for i in ids]


def pending_mail(sessions, kind: str | None = None) -> list[int]:
    with sessions() as session:
        query = select(OutboundMail.id).where(OutboundMail.state == "PENDING")
        if kind:
            query = query.where(OutboundMail.kind == kind)
        return list(session.scalars(query))


def make_due(sessions) -> None:
    with sessions() as session:
        for row in session.scalars(select(OutboundMail).where(OutboundMail.state == "PENDING")):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)
        session.commit()


def to_writer(sink, writer=WRITER) -> list:
    return [m for m in sink.messages if writer in m.rcpt_tos]


def forwards(sink, writer=WRITER) -> list:
    return [m for m in to_writer(sink, writer)
            if any(p.get_content_type() == "image/jpeg" for p in m.message.iter_attachments())]


def test_same_reply_by_api_and_email_forwards_once_with_pages_name_date_and_verp(
        sessions, http, settings, policy, control, letters, sink, reply_mailbox):
    [letter] = submit(sessions, http, settings, policy, letters, code="K102")
    made = control.post(f"/_sim/letters/{letter.provider_number}/reply",
                        {"pages": 2, "by_email": True})
    assert made["emailed"], made
    mail = poll_provider(sessions, http, settings)
    mail += poll_mailbox(sessions, reply_mailbox, settings)
    assert len(mail) == 1
    with sessions() as session:
        states = sorted((r.source, r.state) for r in session.scalars(select(Reply)))
        assert states == [("api", "FORWARDED"), ("email", "DUPLICATE")]
        assert session.get(Cursor, "replies:http") is not None
    sink.clear()
    counts = send_pending(sessions, settings, pending_mail(sessions))
    assert counts["sent"] >= 1
    [forward] = forwards(sink)
    pages = list(forward.message.iter_attachments())
    assert len(pages) == 2 and all(p.get_content()[:3] == b"\xff\xd8\xff" for p in pages)
    body = forward.message.get_body(("plain",)).get_content()
    assert "Петрова Мария" in body and letter.provider_number in body
    assert str(letter.created_at.year) in body  # the letter's date
    assert forward.message["Auto-Submitted"].startswith("auto-")
    # VERP: the envelope sender names this outbound row, and only with our tag.
    with sessions() as session:
        row = session.scalar(select(OutboundMail).where(OutboundMail.kind == "reply"))
    assert forward.mail_from == verp_address(settings, row.id)
    assert outbound_id_from(forward.mail_from, settings) == row.id
    assert outbound_id_from(forward.mail_from.replace("-", "-9", 1), settings) is None
    # Polling again (cursor saved, mailbox moved) brings nothing new.
    assert poll_provider(sessions, http, settings) == []
    assert poll_mailbox(sessions, reply_mailbox, settings) == []
    assert len(forwards(sink)) == 1


def test_a_reply_marks_its_letter_delivered_and_no_delivered_notice_follows(
        sessions, http, settings, policy, control, letters):
    [letter, other] = submit(sessions, http, settings, policy, letters, n=2, code="K102")
    control.post(f"/_sim/letters/{letter.provider_number}/reply", {"pages": 1})
    assert len(poll_provider(sessions, http, settings)) == 1
    with sessions() as session:
        replied = session.get(Letter, letter.id)
        assert replied.state == S.DELIVERED and replied.next_attempt_at is None
        notes = session.scalars(select(LetterEvent.note).where(
            LetterEvent.letter_id == letter.id, LetterEvent.to_state == S.DELIVERED)).all()
        assert notes == ["delivered: the prisoner's reply came back"]
        assert session.get(Letter, other.id).state == S.SUBMITTED  # only the one answered
    # The service reports it delivered later: nothing more for the writer, no second event.
    control.post(f"/_sim/letters/{letter.provider_number}/status", {"status": "delivered"})
    assert poll_statuses(sessions, http, [letter.id], settings)["mail"] == []
    with sessions() as session:
        kinds = session.scalars(select(OutboundMail.kind).where(
            OutboundMail.letter_id == letter.id)).all()
        assert "reply" in kinds and "delivered" not in kinds
        assert session.scalar(select(func.count()).select_from(LetterEvent).where(
            LetterEvent.letter_id == letter.id, LetterEvent.to_state == S.DELIVERED)) == 1


def test_unknown_letter_number_goes_to_triage_with_a_suggestion_a_person_confirms(
        sessions, http, settings, policy, control, letters):
    [letter] = submit(sessions, http, settings, policy, letters, code="K102")
    misread = letter.provider_number[:-1] + str((int(letter.provider_number[-1]) + 1) % 10)
    control.post(f"/_sim/letters/{letter.provider_number}/reply",
                 {"pages": 1, "letter_number": misread})
    assert poll_provider(sessions, http, settings) == []  # nothing forwarded on a guess
    with sessions() as session:
        reply = session.scalar(select(Reply))
        assert reply.state == "UNMATCHED" and reply.letter_id is None
        assert reply.suggested_letter_id == letter.id
        assert "one digit" in reply.suggestion
        assert not session.scalars(select(OutboundMail).where(OutboundMail.kind == "reply")).all()
        ids = confirm_match(session, settings, reply.id, reply.suggested_letter_id, "moderator")
        session.commit()
        assert ids and session.get(Reply, reply.id).state == "FORWARDED"


def test_a_blank_number_with_the_prisoner_known_suggests_their_latest_letter(
        sessions, http, settings, policy, control, letters):
    older, newer = submit(sessions, http, settings, policy, letters, n=2, code="K101")
    with sessions() as session:
        session.get(Letter, older.id).submitted_at = utcnow() - timedelta(days=5)
        session.commit()
        reply, mail = store_upload(session, settings, pages=[("application/pdf", b"%PDF-1.4 x")],
                                   letter_number=None, uploaded_by="volunteer",
                                   prisoner_id=newer.prisoner_id)
        session.commit()
        assert mail == [] and reply.state == "UNMATCHED"
        assert reply.suggested_letter_id == newer.id


def test_smtp_451_then_success_delivers_once(sessions, http, settings, policy, letters, sink):
    submit(sessions, http, settings, policy, letters)
    [notice] = pending_mail(sessions, "sent")
    sink.fail_codes = {WRITER: "451 4.3.0 try again later"}
    assert send_pending(sessions, settings, [notice])["retry"] == 1
    with sessions() as session:
        row = session.get(OutboundMail, notice)
        assert row.state == "PENDING" and row.next_attempt_at > utcnow()
        assert row.last_error.startswith("451")
    assert send_pending(sessions, settings, [notice]) == {"sent": 0, "retry": 0, "bounced": 0,
                                                          "released": 0}
    sink.fail_codes = None
    make_due(sessions)
    assert send_pending(sessions, settings, [notice])["sent"] == 1
    assert send_pending(sessions, settings, [notice])["sent"] == 0  # sent is final
    assert len(to_writer(sink)) == 1


def test_550_records_a_bounce_suppresses_the_writer_and_keeps_their_reply(
        sessions, http, settings, policy, control, letters, sink):
    [letter] = submit(sessions, http, settings, policy, letters, writer="gone@example.org")
    [notice] = pending_mail(sessions, "sent")
    sink.fail_codes = {"gone@example.org": "550 5.1.1 no such user"}
    assert send_pending(sessions, settings, [notice])["bounced"] == 1
    with sessions() as session:
        row = session.get(OutboundMail, notice)
        assert row.state == "FAILED" and "5.1.1" in row.last_error
        assert session.scalar(select(Suppression.reason)) == "bounced"
        assert session.scalar(select(Cursor).where(Cursor.name.like("alert:mail:bounce:%")))
    control.post(f"/_sim/letters/{letter.provider_number}/reply", {"pages": 1})
    assert poll_provider(sessions, http, settings) == []
    with sessions() as session:
        reply = session.scalar(select(Reply))
        assert reply.state == "KEPT" and reply.letter_id == letter.id
        assert "bounced" in reply.note


def test_a_dsn_to_the_verp_address_records_the_bounce(sessions, http, settings, policy,
                                                      letters):
    submit(sessions, http, settings, policy, letters)
    [notice] = pending_mail(sessions, "sent")
    dsn = EmailMessage()
    dsn["From"] = "MAILER-DAEMON@mx.example.org"
    dsn["To"] = verp_address(settings, notice)
    dsn["Subject"] = "Undelivered Mail Returned to Sender"
    dsn.set_content("This is the mail system.")
    dsn.make_mixed()
    per_recipient = Message()
    per_recipient["Final-Recipient"] = "rfc822; anna@example.org"
    per_recipient["Action"] = "failed"
    per_recipient["Status"] = "5.1.1"
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 user unknown"
    part = MIMEMessage(per_recipient, "delivery-status")  # per-message, then per-recipient
    part.set_payload([Message(), per_recipient])
    dsn.attach(part)
    with sessions() as session:
        assert handle_bounce(session, dsn.as_bytes(), settings) == notice
        session.commit()
        assert session.get(OutboundMail, notice).state == "FAILED"
        assert session.scalar(select(Suppression.reason)) == "bounced"
        forged = dsn.as_bytes().replace(b"+bounce-", b"+bounce-1")
        assert handle_bounce(session, forged, settings) is None


def test_a_page_failing_mid_poll_keeps_the_replies_before_it_and_fetches_nothing_twice(
        sessions, http, settings, policy, control, letters):
    from gateway.providers.base import ProviderError

    submitted = submit(sessions, http, settings, policy, letters, n=3, code="K102")
    for letter in submitted:
        control.post(f"/_sim/letters/{letter.provider_number}/reply", {"pages": 1})
    fetched: list[str] = []
    real_page = http.reply_page

    class FlakyPages:  # the real adapter, with the second reply's page failing once
        def __getattr__(self, name):
            return getattr(http, name)

        def reply_page(self, page):
            fetched.append(page.url)
            if len(fetched) == 2:
                raise ProviderError("HTTP 500 (injected)")
            return real_page(page)

    sent: list[int] = []
    with pytest.raises(ProviderError):
        poll_provider(sessions, FlakyPages(), settings, on_stored=sent.extend)
    with sessions() as session:
        assert [r.state for r in session.scalars(select(Reply))] == ["FORWARDED"]
        assert session.get(Cursor, "replies:http") is None  # the page is listed again
    assert len(sent) == 1  # the first reply's forward is not held back by the failure
    more = poll_provider(sessions, FlakyPages(), settings)
    assert len(more) == 2 and not set(more) & set(sent)
    assert len(fetched) == 4 and len(set(fetched)) == 3  # only the failed page twice
    with sessions() as session:
        assert [r.state for r in session.scalars(select(Reply))] == ["FORWARDED"] * 3
        assert session.get(Cursor, "replies:http") is not None


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_batch_of_mixed_outcomes_records_each_and_leaves_the_connection_transactional(
        sessions, http, settings, policy, letters, sink):
    """A sent mail is marked in autocommit on PostgreSQL (one round trip); a bounce between
    two sent ones still writes its row, suppression and alert in one transaction, and the
    pooled connection goes back in its usual transactional mode."""
    writers = ["a@example.org", "gone@example.org", "b@example.org", "later@example.org",
               "c@example.org"]
    for writer in writers:
        submit(sessions, http, settings, policy, letters, writer=writer)
    notices = pending_mail(sessions, "sent")
    sink.fail_codes = {"gone@example.org": "550 5.1.1 no such user",
                       "later@example.org": "451 4.3.0 try again later"}
    counts = send_pending(sessions, settings, notices)
    assert (counts["sent"], counts["bounced"], counts["retry"]) == (3, 1, 1)
    with sessions() as session:
        states = [session.get(OutboundMail, i).state for i in notices]
        assert states == ["SENT", "FAILED", "SENT", "PENDING", "SENT"]
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
        assert session.scalar(select(Cursor).where(Cursor.name.like("alert:mail:bounce:%")))
        connection = session.connection()
        if connection.dialect.name == "postgresql":
            assert connection.connection.driver_connection.autocommit is False
    assert send_pending(sessions, settings, notices)["sent"] == 0  # each sent once
    assert sorted(r for m in sink.messages for r in m.rcpt_tos) == [
        "a@example.org", "b@example.org", "c@example.org"]


@pytest.mark.postgres
def test_marking_a_sent_mail_fails_with_the_databases_own_error_and_leaves_no_autocommit(
        pg_url, monkeypatch):
    """The autocommit mark (outbox._mark_sent) must not hide what went wrong: a statement
    that fails leaves the connection transactional and usable, and a lost connection raises
    the driver's error (the mail, sent but not marked, is re-sent after its lease, as after
    a crash), not a complaint about the isolation level."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm import Session

    from gateway.db import make_engine
    from gateway.migrate import upgrade
    from gateway.pipeline import outbox

    upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection, Session(bind=connection) as session:
            with monkeypatch.context() as patch:
                patch.setattr(outbox, "_SENT", text("SELECT 1 / (:row_id - :row_id) "
                                                     "WHERE :sent_at IS NOT NULL"))
                with pytest.raises(DBAPIError, match="division by zero"):
                    outbox._mark_sent(session, 1)
            assert connection.connection.driver_connection.autocommit is False
            assert session.scalar(text("SELECT 2")) == 2  # usable, in a transaction again
            assert connection.in_transaction()
            session.commit()

            backend = connection.scalar(text("SELECT pg_backend_pid()"))
            connection.commit()
            with engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
                other.commit()
            with pytest.raises(DBAPIError, match="terminat|closed"):
                outbox._mark_sent(session, 1)
    finally:
        engine.dispose()


def test_a_batch_sends_each_mail_once_and_gives_back_what_its_lease_no_longer_covers(
        sessions, http, settings, policy, letters, sink, monkeypatch):
    from gateway.pipeline import outbox

    writers = [f"w{i}@example.org" for i in range(3)] + ["анна@пример.рф"]
    for writer in writers:
        submit(sessions, http, settings, policy, letters, writer=writer)
    notices = pending_mail(sessions, "sent")
    assert len(notices) == 4
    # A lease shorter than one SMTP conversation: nothing may be sent under it.
    monkeypatch.setattr(outbox, "send_lease",
                        lambda s: timedelta(seconds=s.smtp_timeout - 1))
    sink.clear()
    assert send_pending(sessions, settings, notices)["released"] == 4
    assert sink.messages == []
    with sessions() as session:
        rows = [session.get(OutboundMail, i) for i in notices]
        assert all(r.state == "PENDING" and r.attempts == 0 for r in rows)
        assert all(r.next_attempt_at <= utcnow() for r in rows)  # due again now
    monkeypatch.undo()
    monkeypatch.setattr(outbox, "CLAIM_AT_ONCE", 3)  # claimed 3 and 1: chunks join up
    counts = send_pending(sessions, settings, notices)
    assert counts["sent"] == 4 and counts["released"] == 0
    assert send_pending(sessions, settings, notices)["sent"] == 0  # claimed and sent once
    for writer in writers:
        [mail] = to_writer(sink, writer)
        assert mail.message["To"] == writer  # the address added at send time, also IDN
        assert mail.message["Subject"]
