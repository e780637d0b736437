"""The sweeper finds in SQL whatever a lost task left behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.models import Base, InboundMessage, Letter, utcnow
from gateway.pipeline.sweeper import sweep
from gateway.states import LetterState as S


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'sweep.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def _letter(session, state, age_s, **kw):
    n = session.query(Letter).count() + 1
    inbound = InboundMessage(mailbox="m", uidvalidity=1, uid=n, content_hash=f"h{n}", size=1,
                             raw=b"x")
    session.add(inbound)
    session.flush()
    letter = Letter(public_id=f"L-{n}", inbound_id=inbound.id, state=state,
                    updated_at=utcnow() - timedelta(seconds=age_s), **kw)
    session.add(letter)
    session.flush()
    return letter.id


def test_each_kind_of_stuck_work_is_found_and_fresh_work_is_left(session):
    lost_check = _letter(session, S.RECEIVED, 120)
    fresh_check = _letter(session, S.RECEIVED, 1)
    lost_ready = _letter(session, S.READY, 120)
    due_retry = _letter(session, S.READY, 1, next_attempt_at=utcnow() - timedelta(seconds=1))
    later_retry = _letter(session, S.READY, 120, next_attempt_at=utcnow() + timedelta(hours=1))
    dead_worker = _letter(session, S.SUBMITTING, 120)
    for_a_person = _letter(session, S.UNKNOWN, 120)  # gave up: next_attempt_at is None
    unconfirmed = _letter(session, S.AWAITING_SENDER, 8 * 86400)
    waiting = _letter(session, S.AWAITING_SENDER, 3600)

    found = sweep(session, stuck_after_s=60, unconfirmed_after_s=7 * 86400)

    assert found.check == [lost_check]
    assert sorted(found.submit) == sorted([lost_ready, due_retry, dead_worker])
    assert found.lost_submissions == [dead_worker]
    assert session.get(Letter, dead_worker).state == S.UNKNOWN  # replays the same key
    assert found.expired == [unconfirmed]
    assert session.get(Letter, unconfirmed).state == S.DISCARDED
    assert session.get(Letter, waiting).state == S.AWAITING_SENDER
    assert fresh_check not in found.check and later_retry not in found.submit
    assert for_a_person not in found.submit
