"""Status polling over HTTP: DELIVERED and CENSORED recorded, told to the writer, censor
reasons kept per facility; look-ups back off with age and stop when the provider struggles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.crypto import unseal_bytes
from gateway.models import CensorDecision, Letter, OutboundMail, utcnow
from gateway.pipeline.statuses import censor_reasons, due_for_status, next_look, poll_statuses
from gateway.pipeline.submission import submit_many
from gateway.states import LetterState as S
from tests.providers.conftest import SECRET

pytestmark = [pytest.mark.providers, pytest.mark.timeout(60)]


def submitted(sessions, http, settings, policy, letters, n=3, **kw) -> list[Letter]:
    """The letters, submitted (the set-up of a status test, not its subject)."""
    ids = letters(n, **kw)
    done: set[int] = set()
    for _ in range(5):
        # A call can outlast the fixture's 1 s provider timeout on a busy machine (seen
        # once in CI): the letter waits to be tried again, as the sweeper would, and is.
        done.update(submit_many(sessions, http, [i for i in ids if i not in done],
                                settings, policy).submitted)
        if done == set(ids):
            break
        with sessions() as session:
            for letter in session.scalars(select(Letter).where(Letter.id.in_(ids))):
                if letter.id not in done:
                    letter.next_attempt_at = utcnow() - timedelta(seconds=1)
            session.commit()
    assert done == set(ids)
    with sessions() as session:
        for letter in session.scalars(select(Letter).where(Letter.id.in_(ids))):
            letter.next_attempt_at = utcnow() - timedelta(seconds=1)  # due now
        session.commit()
        return list(session.scalars(select(Letter).where(Letter.id.in_(ids)).order_by(Letter.id)))


def test_delivered_and_censored_are_recorded_told_and_kept_per_facility(
        sessions, http, settings, policy, control, letters):
    a, b, c = submitted(sessions, http, settings, policy, letters)
    control.post(f"/_sim/letters/{a.provider_number}/status", {"status": "delivered"})
    control.post(f"/_sim/letters/{b.provider_number}/status",
                 {"status": "rejected", "reason": "упоминание уголовного дела"})
    control.post(f"/_sim/letters/{c.provider_number}/status", {"status": "in_censorship"})
    with sessions() as session:
        due = due_for_status(session, "http")
    assert sorted(due) == [a.id, b.id, c.id]
    counts = poll_statuses(sessions, http, due, settings)
    assert (counts["delivered"], counts["censored"], counts["unchanged"]) == (1, 1, 1)
    with sessions() as session:
        assert session.get(Letter, a.id).state == S.DELIVERED
        censored = session.get(Letter, b.id)
        assert censored.state == S.CENSORED and "уголовного дела" in censored.reason
        waiting = session.get(Letter, c.id)
        assert waiting.state == S.SUBMITTED and waiting.provider_status == "in_censorship"
        assert waiting.next_attempt_at > utcnow() + timedelta(minutes=25)
        kinds = {m.kind: m for m in session.scalars(select(OutboundMail))
                 if m.kind in ("delivered", "censored")}
        assert set(kinds) == {"delivered", "censored"}
        assert sorted(counts["mail"]) == sorted(m.id for m in kinds.values())
        text = unseal_bytes(SECRET, kinds["censored"].message).decode("ascii", "replace")
        assert "Subject:" in text
        decision = session.scalar(select(CensorDecision))
        assert (decision.letter_id, decision.facility_id) == (b.id, "77-sizo-2")
        assert decision.reason == "упоминание уголовного дела"
        [reason] = censor_reasons(session)
        assert (reason.facility_name, reason.letters) == ("СИЗО-2 «Бутырка»", 1)
    # A second round changes nothing and tells nobody twice.
    assert poll_statuses(sessions, http, [a.id, b.id], settings)["mail"] == []


def test_look_ups_back_off_with_age():
    assert next_look(timedelta(hours=1)) == timedelta(minutes=30)
    assert next_look(timedelta(days=1)) == timedelta(hours=3)
    assert next_look(timedelta(days=10)) == timedelta(hours=12)


def test_a_struggling_provider_stops_the_round_and_is_asked_later(
        sessions, http, settings, policy, control, letters):
    ids = [le.id for le in submitted(sessions, http, settings, policy, letters)]
    control.faults(error_rate=1.0, status=503, retry_after=1200, method="GET",
                   path_prefix="/v1/letters/")
    counts = poll_statuses(sessions, http, ids, settings)
    assert counts["errors"] == 1  # the first failure ends the round
    with sessions() as session:
        first = session.get(Letter, ids[0])
        assert first.next_attempt_at >= utcnow() + timedelta(seconds=1190)
        assert all(session.get(Letter, i).state == S.SUBMITTED for i in ids)
