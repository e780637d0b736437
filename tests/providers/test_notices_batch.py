"""queue_notices(): the 'sent' notices of a batch, with the rules of queue_notice (robots,
opted-out writers, one per letter, the daily cap per writer) applied exactly, and each
notice serialized once: the stored bytes are the verified ones."""

from __future__ import annotations

import email
from email import policy

import pytest
from sqlalchemy import select

from gateway.crypto import address_hash, unseal_bytes
from gateway.models import Letter, OutboundMail, Suppression
from gateway.notices import queue_notice, queue_notices
from tests.providers.conftest import SECRET, make_letter

pytestmark = [pytest.mark.providers]


def batch(sessions, settings, writers: list[str]) -> tuple[list[int], dict[int, list[int]]]:
    with sessions() as session:
        letters = [make_letter(session, writer=w) for w in writers]
        session.commit()
        queued = queue_notices(session, settings, letters, "sent")
        session.commit()
        return [le.id for le in letters], queued


def test_the_daily_cap_counts_within_the_batch(sessions, settings):
    settings = settings.model_copy(update={"notices_per_writer_per_day": 2})
    ids, queued = batch(sessions, settings, ["anna@example.org"] * 3 + ["boris@example.org"])
    assert sorted(queued) == [ids[0], ids[1], ids[3]]
    with sessions() as session:
        rows = session.scalars(select(OutboundMail).order_by(OutboundMail.id)).all()
    assert [r.letter_id for r in rows] == [ids[0], ids[1], ids[3]]
    assert [[r.id] for r in rows] == [queued[i] for i in (ids[0], ids[1], ids[3])]


def test_opted_out_writers_and_robots_get_nothing(sessions, settings):
    with sessions() as session:
        session.add(Suppression(address_hash=address_hash(SECRET, "boris@example.org"),
                                reason="opted_out"))
        robot = make_letter(session, writer="robot@example.org")
        robot.state = "IGNORED"
        session.commit()
        assert queue_notices(session, settings, [robot], "sent") == {}
    ids, queued = batch(sessions, settings, ["anna@example.org", "boris@example.org"])
    assert list(queued) == [ids[0]]


def test_a_notice_already_queued_is_skipped_and_the_cap_counts_only_what_went(
        sessions, settings):
    settings = settings.model_copy(update={"notices_per_writer_per_day": 2})
    with sessions() as session:
        letters = [make_letter(session) for _ in range(3)]
        session.commit()
        [first] = queue_notice(session, settings, letters[0], "sent")
        session.commit()
        # letters[0] has its notice: its row is refused by the unique key, letters[1]
        # takes the writer's second and last slot of the day, letters[2] is over the cap.
        queued = queue_notices(session, settings, letters, "sent")
        session.commit()
        assert list(queued) == [letters[1].id]
        assert session.scalar(select(OutboundMail.id).where(
            OutboundMail.letter_id == letters[0].id)) == first
        assert len(session.scalars(select(OutboundMail)).all()) == 2


def test_the_stored_bytes_are_the_verified_notice_without_an_address(sessions, settings):
    ids, queued = batch(sessions, settings, ["anna@example.org"])
    with sessions() as session:
        row = session.get(OutboundMail, queued[ids[0]][0])
        letter = session.get(Letter, ids[0])
    assert b"Subject:" not in row.message  # sealed at rest
    data = unseal_bytes(SECRET, row.message)
    msg = email.message_from_bytes(data, policy=policy.default)
    assert f"<{row.message_id}>" == msg["Message-ID"]
    assert msg["To"] is None and b"anna@example.org" not in data
    assert letter.subject and msg["Subject"] == "Письмо отправлено / Your letter has been sent"
