"""Decisions end in the right state, with an event naming the organizer who made them."""

from __future__ import annotations

import email
import io
from decimal import Decimal
from email import policy

import pytest
from sqlalchemy import select

from gateway.crypto import unseal_bytes
from gateway.models import AuditEntry, OutboundMail, Prisoner, Reply, ReplyPage, User, utcnow
from tests.dashboard.conftest import SECRET

from .conftest import HELD_FINDINGS, csrf_token

pytestmark = pytest.mark.dashboard


def post(client, path, **data):
    data["csrf_token"] = csrf_token(client, "/")
    return client.post(path, data=data)


def last_event(seed, letter_id):
    return seed.events(letter_id)[-1]


def test_approve_moves_to_ready_for_the_sweeper(as_user, seed):
    letter_id = seed.letter("HELD", findings=HELD_FINDINGS, next_attempt_at=None)
    response = post(as_user("moderator"), f"/moderation/{letter_id}/approve")
    assert response.status_code == 302
    letter = seed.get(letter_id)
    # Due now, so the next sweep (seconds away) submits it.
    assert letter.state == "READY" and letter.next_attempt_at <= utcnow()
    event = last_event(seed, letter_id)
    assert (event.from_state, event.to_state, event.actor) == ("HELD", "READY", "moderator")


def test_viewer_cannot_approve(as_user, seed):
    letter_id = seed.letter("HELD")
    response = post(as_user("viewer"), f"/moderation/{letter_id}/approve")
    assert response.status_code == 403
    assert seed.get(letter_id).state == "HELD"
    assert "Approve" not in as_user("viewer").get("/moderation").get_data(as_text=True)


def test_return_rejects_and_queues_the_writers_notice(as_user, seed, sessions):
    letter_id = seed.letter("HELD", body="Пишу про митинг.", findings=HELD_FINDINGS)
    post(as_user("moderator"), f"/moderation/{letter_id}/return", template="politics",
         own_words="Уберите абзац про митинг.")
    assert seed.get(letter_id).state == "REJECTED"
    event = last_event(seed, letter_id)
    assert event.actor == "moderator" and "Political content" in event.note
    with sessions() as session:
        mail = session.scalar(select(OutboundMail).where(OutboundMail.letter_id == letter_id))
    assert mail.kind == "returned"
    message = email.message_from_bytes(unseal_bytes(SECRET, mail.message), policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    reason_line = next(line for line in text.splitlines()
                       if "В письме есть политические темы" in line)  # the chosen template
    assert "митинг" in reason_line  # with the flagged passage quoted
    assert "Уберите абзац про митинг." in text  # and the organizer's own words


def test_return_needs_a_reason(as_user, seed):
    letter_id = seed.letter("HELD")
    post(as_user("moderator"), f"/moderation/{letter_id}/return", template="", own_words="")
    assert seed.get(letter_id).state == "HELD"


def test_discard_and_defer(as_user, seed):
    client = as_user("moderator")
    discarded, deferred = seed.letter("HELD"), seed.letter("HELD")
    post(client, f"/moderation/{discarded}/discard", note="spam")
    post(client, f"/moderation/{deferred}/defer", note="ask the lawyer first")
    assert seed.get(discarded).state == "DISCARDED"
    assert last_event(seed, discarded).actor == "moderator"
    letter = seed.get(deferred)
    assert letter.state == "HELD" and letter.reason == "deferred: ask the lawyer first"
    event = last_event(seed, deferred)
    assert (event.from_state, event.to_state, event.actor) == ("HELD", "HELD", "moderator")


def test_second_decision_on_the_same_letter_is_refused(as_user, seed):
    letter_id = seed.letter("HELD")
    client = as_user("moderator")
    post(client, f"/moderation/{letter_id}/approve")
    post(client, f"/moderation/{letter_id}/discard")
    assert seed.get(letter_id).state == "READY"
    assert [e.to_state for e in seed.events(letter_id)] == ["RECEIVED", "HELD", "READY"]


def test_unknown_resolved_as_submitted_records_number_and_price(as_user, seed, sessions):
    letter_id = seed.letter("UNKNOWN")
    post(as_user("moderator"), f"/failures/{letter_id}/resolve", outcome="submitted",
         number="FP-2026-000777", price="250,00")
    letter = seed.get(letter_id)
    assert letter.state == "SUBMITTED" and letter.provider_number == "FP-2026-000777"
    assert str(letter.price) == "250.00" and letter.submitted_at is not None
    assert last_event(seed, letter_id).actor == "moderator"
    with sessions() as session:
        assert session.scalar(select(OutboundMail.kind)
                              .where(OutboundMail.letter_id == letter_id)) == "sent"


def test_unknown_resolved_as_not_submitted_goes_back_to_ready(as_user, seed):
    letter_id = seed.letter("UNKNOWN")
    post(as_user("moderator"), f"/failures/{letter_id}/resolve", outcome="not_submitted")
    assert seed.get(letter_id).state == "READY"


def test_failed_and_quarantined_retry_return_discard(as_user, seed, sessions):
    client = as_user("moderator")
    failed_retry, failed_return, failed_discard = (seed.letter("FAILED") for _ in range(3))
    quarantined = seed.letter("QUARANTINED")
    post(client, f"/failures/{failed_retry}/retry")
    post(client, f"/failures/{failed_return}/return", reason="Учреждение закрыто.")
    post(client, f"/failures/{failed_discard}/discard")
    post(client, f"/failures/{quarantined}/retry")
    assert seed.get(failed_retry).state == "READY"
    assert seed.get(failed_return).state == "REJECTED"
    assert seed.get(failed_discard).state == "DISCARDED"
    assert seed.get(quarantined).state == "RECEIVED"
    for letter_id in (failed_retry, failed_return, failed_discard, quarantined):
        assert last_event(seed, letter_id).actor == "moderator"
    with sessions() as session:
        assert session.scalar(select(OutboundMail.kind)
                              .where(OutboundMail.letter_id == failed_return)) == "returned"


def test_desk_submission_records_the_number(as_user, seed):
    letter_id = seed.letter("DESK", provider="desk", price=Decimal("55.00"), currency="RUB")
    client = as_user("moderator")
    post(client, f"/desk/{letter_id}/submitted", number="ФП-55", price="99")
    assert seed.get(letter_id).state == "DESK"  # not taken: nobody's to record
    post(client, "/desk/take")
    assert seed.get(letter_id).leased_by == "moderator"
    assert "Recipient surname" in client.get(f"/desk/{letter_id}").get_data(as_text=True)
    post(client, f"/desk/{letter_id}/submitted", number="ФП-55", price="99")
    letter = seed.get(letter_id)
    assert letter.state == "SUBMITTED" and letter.provider_number == "ФП-55"
    assert letter.price == Decimal("99.00")
    codes = [e.reason_code for e in seed.events(letter_id)]
    assert "submitted" in codes and "price_differs" in codes  # flagged, not refused
    page = client.get("/desk/volunteers").get_data(as_text=True)
    assert "paid 99.00 where 55.00 was quoted" in page


def test_matching_an_unmatched_reply_forwards_it(as_user, seed, sessions):
    letter_id = seed.submitted("FP-2026-000123")
    with sessions() as session:
        reply = Reply(source="email", external_id="<scan@x>", letter_number="FP 2026 I23",
                      state="UNMATCHED")
        session.add(reply)
        session.flush()
        session.add(ReplyPage(reply_id=reply.id, n=1, content_type="image/jpeg",
                              data=b"\xff\xd8\xff\xe0fake-jpeg"))
        session.commit()
        reply_id = reply.id
    post(as_user("moderator"), f"/replies/{reply_id}/match", number="fp-2026-123")
    with sessions() as session:
        reply = session.get(Reply, reply_id)
        assert (reply.state, reply.letter_id) == ("FORWARDED", letter_id)
        mail = session.scalar(select(OutboundMail).where(OutboundMail.reply_id == reply_id))
        # base64-encoded, and sealed at rest
        assert mail.kind == "reply" and b"fake-jpeg" not in unseal_bytes(SECRET, mail.message)
        assert session.scalar(select(AuditEntry.username).where(
            AuditEntry.action == "match_reply")) == "moderator"


def test_prisoner_csv_import_previews_then_applies(as_user, seed, sessions):
    client = as_user("moderator")
    csv_text = ("code,last_name,first_name,middle_name,birth_year,region,facility_name,"
                "facility_id,provider\n"
                "IVA1,Иванов,Иван,Иванович,1981,Москва,ИК-1 Москва,FAC-1,http\n"
                "PET2,Петров,Пётр,,1990,Тверь,ИК-4 Тверь,FAC-4,http\n"
                "BAD3,,Безымянный,,,,,,\n")
    token = csrf_token(client, "/prisoners/import")
    preview = client.post("/prisoners/import", data={
        "csrf_token": token, "file": (io.BytesIO(csv_text.encode("utf-8-sig")), "p.csv")},
        content_type="multipart/form-data").get_data(as_text=True)
    assert "to add: <strong>1</strong>" in preview and "to update: <strong>1</strong>" in preview
    assert "birth year:</span> 1980 → <strong>1981</strong>" in preview
    assert "line 4: missing" in preview
    with sessions() as session:  # the preview changed nothing
        assert session.scalar(select(Prisoner).where(Prisoner.code == "PET2")) is None
        assert session.scalar(select(Prisoner.birth_year).where(Prisoner.code == "IVA1")) == 1980
    client.post("/prisoners/import", data={"csrf_token": token, "apply": "1",
                                           "csv_text": csv_text})
    with sessions() as session:
        assert session.scalar(select(Prisoner.facility_name)
                              .where(Prisoner.code == "PET2")) == "ИК-4 Тверь"
        assert session.scalar(select(Prisoner.birth_year).where(Prisoner.code == "IVA1")) == 1981


def test_prisoner_add_edit_retire(as_user, seed, sessions):
    client = as_user("moderator")
    fields = dict(code="SID9", last_name="Сидорова", first_name="Анна", middle_name="",
                  birth_year="1995", region="Пермь", facility_name="ИК-28", facility_id="F28",
                  provider="http")
    post(client, "/prisoners/new", **fields)
    with sessions() as session:
        prisoner = session.scalar(select(Prisoner).where(Prisoner.code == "SID9"))
        assert prisoner.full_name == "Сидорова Анна"
    post(client, f"/prisoners/{prisoner.id}/edit", **{**fields, "facility_name": "ИК-32"})
    post(client, f"/prisoners/{prisoner.id}/retire")
    with sessions() as session:
        prisoner = session.get(Prisoner, prisoner.id)
        assert (prisoner.facility_name, prisoner.status, prisoner.can_receive) == (
            "ИК-32", "retired", False)
    html = client.get("/prisoners?q=сидорова").get_data(as_text=True)
    assert "Сидорова Анна" in html


def test_admin_adds_a_user_and_changes_a_role(as_user, sessions):
    client = as_user("admin")
    post(client, "/users", username="nina", password="a long password", role="viewer")
    with sessions() as session:
        nina = session.scalar(select(User).where(User.username == "nina"))
        assert nina.role == "viewer"
    post(client, f"/users/{nina.id}", role="moderator", active="1")
    with sessions() as session:
        assert session.get(User, nina.id).role == "moderator"
    assert post(as_user("moderator"), "/users", username="x", password="y" * 10,
                role="admin").status_code == 403


def test_confirm_writer_on_a_held_letter_releases_their_waiting_letters(as_user, seed, sessions):
    from gateway.models import Sender

    held = seed.letter("HELD", findings=HELD_FINDINGS, writer="known@example.org")
    waiting = seed.letter("AWAITING_SENDER", writer="known@example.org")
    other = seed.letter("AWAITING_SENDER", writer="someone.else@example.org")
    page = as_user("moderator").get("/moderation").get_data(as_text=True)
    assert f"/moderation/{held}/confirm-writer" in page
    assert post(as_user("viewer"), f"/moderation/{held}/confirm-writer").status_code == 403

    response = post(as_user("moderator"), f"/moderation/{held}/confirm-writer")
    assert response.status_code == 302
    assert [seed.get(i).state for i in (held, waiting, other)] == \
        ["HELD", "RECEIVED", "AWAITING_SENDER"]
    event = last_event(seed, waiting)
    assert (event.to_state, event.actor) == ("RECEIVED", "moderator")
    with sessions() as session:
        sender = session.scalar(select(Sender).where(
            Sender.address_hash == seed.get(held).sender_hash))
        assert sender.verified_at is not None
        audit = session.scalar(select(AuditEntry).where(AuditEntry.action == "confirm_writer"))
        assert audit.letter_id == held and audit.username == "moderator"
    page = as_user("moderator").get("/moderation").get_data(as_text=True)
    assert f"/moderation/{held}/confirm-writer" not in page and "confirmed writer" in page
