"""Exactly-once paid submission against the simulator over HTTP, with injected faults.

Every letter ends SUBMITTED with exactly one charge in the simulator's ledger, or UNKNOWN
and then resolved by replaying its key, still with one charge."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
import urllib3
from sqlalchemy import func, select

from gateway.models import Cursor, Letter, LetterEvent, OutboundMail, SubmissionAttempt, utcnow
from gateway.pipeline import sweeper
from gateway.pipeline.submission import replay_unknown, submit_many, submit_one
from gateway.providers import breaker, catalogue
from gateway.providers.policy import SubmissionPolicy
from gateway.states import LetterState as S
from tests.providers.conftest import states
from tests.together import run_together

pytestmark = [pytest.mark.providers, pytest.mark.timeout(120)]


def drive(sessions, provider, ids, settings, policy, timeout: float = 30.0) -> None:
    """What the sweeper and the workers do, in one thread: submit whatever is due until
    every letter has left READY/UNKNOWN-with-a-next-attempt."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sessions() as session:
            # One `now` for both queries: a letter falling due between them is neither
            # pending nor waiting, and the loop would end early (letters recorded together
            # fall due together).
            now = utcnow()
            due = Letter.next_attempt_at.is_(None) & (Letter.state == S.READY) | \
                (Letter.next_attempt_at <= now)
            pending = list(session.scalars(select(Letter.id).where(
                Letter.id.in_(ids), Letter.state.in_([S.READY, S.UNKNOWN]), due)))
            waiting = session.scalar(select(Letter.id).where(
                Letter.id.in_(ids), Letter.state.in_([S.READY, S.UNKNOWN]),
                Letter.next_attempt_at > now).limit(1))
        if not pending and waiting is None:
            return
        if pending:
            submit_many(sessions, provider, pending, settings, policy)
        time.sleep(0.05)
    raise AssertionError(f"letters still pending: {states(sessions, ids)}")


def charges_by_key(control) -> Counter:
    return Counter(c["idempotency_key"] for c in control.ledger())


def public_ids(sessions, ids) -> list[str]:
    with sessions() as session:
        return [session.get(Letter, i).public_id for i in ids]


def events(sessions, letter_id: int) -> list[str]:
    with sessions() as session:
        return [e.to_state for e in session.scalars(
            select(LetterEvent).where(LetterEvent.letter_id == letter_id).order_by(LetterEvent.id))]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_clean_submission_charges_each_letter_once_and_queues_the_notice(
        sessions, http, settings, policy, control, letters):
    ids = letters(3)
    result = submit_many(sessions, http, ids, settings, policy)
    assert sorted(result.submitted) == ids
    assert states(sessions, ids) == ["SUBMITTED"] * 3
    assert charges_by_key(control) == Counter({k: 1 for k in public_ids(sessions, ids)})
    with sessions() as session:
        numbers = {le.provider_number for le in session.scalars(select(Letter))}
        assert numbers == {m["number"] for m in control.letters()}
        assert session.scalar(select(OutboundMail).where(OutboundMail.kind == "sent")) is not None


FAULTS = {
    "503 with Retry-After": dict(status=503, retry_after=1, mode="before"),
    "429": dict(status=429, retry_after=1, mode="before"),
    "500 after accepting": dict(status=500, mode="after"),
    "502 before": dict(status=502, mode="before"),
    "reset after the request was sent": dict(status="reset", mode="after"),
    "reset before processing": dict(status="reset", mode="before"),
    "slow answer past the timeout": dict(status=504, mode="after", latency_ms=1600),
}


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_each_fault_ends_with_one_charge_per_letter(fault, sessions, http, settings, policy,
                                                    control, letters):
    ids = letters(4)
    # The first three submissions fail; later ones (and replays) go through.
    control.faults(error_rate=1.0, count=3, method="POST", path_prefix="/v1/letters", **fault)
    if fault.get("latency_ms"):  # latency stays after `count` is spent: lift it by hand
        submit_many(sessions, http, ids, settings, policy)
        control.faults()
    drive(sessions, http, ids, settings, policy)
    assert states(sessions, ids) == ["SUBMITTED"] * 4
    keys = public_ids(sessions, ids)
    assert charges_by_key(control) == Counter({k: 1 for k in keys})
    assert len(control.letters()) == 4
    if fault["mode"] == "after":  # charged but unanswered: UNKNOWN, then the replay
        went_unknown = [i for i in ids if "UNKNOWN" in events(sessions, i)]
        assert went_unknown, "an answer lost after the charge must make the letter UNKNOWN"
        with sessions() as session:
            replays = session.scalars(select(SubmissionAttempt).where(
                SubmissionAttempt.http_status == 200)).all()
            assert {a.letter_id for a in replays} >= set(went_unknown)
    elif fault["status"] in (429, 503):  # the contract's "not processed, come back later"
        assert not any("UNKNOWN" in events(sessions, i) for i in ids)


def test_retry_after_is_honoured(sessions, http, settings, policy, control, letters):
    [letter_id] = letters(1)
    control.faults(error_rate=1.0, count=1, status=503, retry_after=3, method="POST")
    before = utcnow()
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "retry"
    with sessions() as session:
        letter = session.get(Letter, letter_id)
        assert letter.state == S.READY
        assert letter.next_attempt_at >= before + timedelta(seconds=3)
    # Not due yet: nothing is sent.
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "skipped"
    assert control.ledger() == []


def test_a_worker_swept_as_dead_still_records_its_late_success_once(
        sessions, http, settings, policy, control, letters):
    [letter_id] = letters(1)
    control.faults(error_rate=0.0, latency_ms=1200, method="POST")  # slow, but fine
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(
        submit_one(sessions, http, letter_id, settings, policy)))
    http.timeout = urllib3.Timeout(5.0)
    worker.start()
    deadline = time.monotonic() + 10  # mid-call: claimed, the provider's answer 1.2 s away
    while states(sessions, [letter_id]) != ["SUBMITTING"] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # past stuck_after_s since the claim
    with sessions() as session:  # the sweeper thinks the worker died mid-call
        found = sweeper.sweep(session, stuck_after_s=0.1)
        session.commit()
    assert found.lost_submissions == [letter_id]
    worker.join(10)
    assert outcome[0][0] == "submitted"
    assert states(sessions, [letter_id]) == ["SUBMITTED"]
    control.faults()
    # The sweeper's replay finds nothing left to do; the ledger has one charge.
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "skipped"
    assert len(control.ledger()) == 1


def test_unknown_is_replayed_a_bounded_number_of_times_then_handed_to_a_person(
        sessions, http, settings, policy, control, letters):
    [letter_id] = letters(1)
    settings = settings.model_copy(update={"max_submit_attempts": 3})
    control.faults(error_rate=1.0, status=500, mode="after", method="POST")
    drive(sessions, http, [letter_id], settings, policy)
    with sessions() as session:
        letter = session.get(Letter, letter_id)
        assert letter.state == S.UNKNOWN and letter.next_attempt_at is None
        assert "may have reached the provider" in letter.reason
        assert letter.attempts == 3
    assert len(control.ledger()) == 1  # three tries, one charge
    # A person checks and re-drives it: the same key, the same letter, no second charge.
    control.faults()
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "skipped"  # waits
    with sessions() as session:
        replay_unknown(session, letter_id, actor="organizer")
        session.commit()
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "submitted"
    assert len(control.ledger()) == 1
    [at_sim] = control.letters()
    with sessions() as session:
        assert session.get(Letter, letter_id).provider_number == at_sim["number"]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_402_pauses_the_provider_records_an_alert_and_holds_the_rest(
        sessions, http, settings, policy, control, letters):
    ids = letters(3)
    control.post("/_sim/balance", {"amount": "10.00"})
    outcomes = [submit_one(sessions, http, i, settings, policy)[0] for i in ids]
    assert outcomes == ["retry", "deferred", "deferred"]  # one call, then no more
    with sessions() as session:
        assert session.get(Cursor, "provider:http:paused_until") is not None
        alerts = session.scalars(select(Cursor).where(Cursor.name.like("alert:http:%"))).all()
        assert any("402" in a.value for a in alerts)
        held = [session.get(Letter, i) for i in ids]
        assert all(le.state == S.READY and le.next_attempt_at > utcnow() for le in held)
        assert "paused" in held[1].reason
        assert session.scalar(select(SubmissionAttempt.id).where(
            SubmissionAttempt.letter_id == ids[1])) is None
    assert control.ledger() == []
    # Topped up, pause lifted by an organizer: all three go, once each.
    control.post("/_sim/balance", {"amount": "100000.00"})
    with sessions() as session:
        session.delete(session.get(Cursor, "provider:http:paused_until"))
        for i in ids:
            session.get(Letter, i).next_attempt_at = utcnow()
        session.commit()
    drive(sessions, http, ids, settings, policy)
    assert charges_by_key(control) == Counter({k: 1 for k in public_ids(sessions, ids)})


def _cool_down_passes(sessions, ids, provider="http"):
    """The breaker's cool-down ends now, and the letters' waits with it: time passing
    without sleeping through it, so the test holds however slowly a loaded machine makes
    each call."""
    past = utcnow() - timedelta(seconds=1)
    with sessions() as session:
        breaker._write(session, provider, replace(breaker.read(session, provider), until=past))
        for i in ids:
            session.get(Letter, i).next_attempt_at = past
        session.commit()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_circuit_breaker_opens_stops_calls_and_a_probe_closes_it(
        sessions, http, settings, control, letters):
    # A cool-down no slow machine outlasts between two calls: the test ends it by hand.
    policy = SubmissionPolicy(retry_base_s=5, breaker_threshold=3, breaker_cooldown_s=60)
    ids = letters(6)
    control.faults(error_rate=1.0, status=503, retry_after=0, mode="before", method="POST")
    outcomes = [submit_one(sessions, http, i, settings, policy)[0] for i in ids]
    assert outcomes[:3] == ["retry"] * 3
    assert outcomes[3:] == ["deferred"] * 3  # the breaker opened: no further calls
    with sessions() as session:
        assert breaker.read(session, "http").state == "open"
        assert session.scalar(select(SubmissionAttempt.id).where(
            SubmissionAttempt.letter_id.in_(ids[3:]))) is None
        assert any("circuit open" in c.value for c in session.scalars(
            select(Cursor).where(Cursor.name.like("alert:http:breaker:%"))))
        assert "circuit open" in session.get(Letter, ids[3]).reason
    _cool_down_passes(sessions, ids)
    # Still failing: the single probe fails and the breaker reopens for longer.
    assert submit_one(sessions, http, ids[3], settings, policy)[0] == "retry"  # the probe
    assert submit_one(sessions, http, ids[5], settings, policy)[0] == "deferred"
    with sessions() as session:
        state = breaker.read(session, "http")
        assert state.state == "open" and state.cooldown_s >= 120
    control.faults()
    _cool_down_passes(sessions, ids)
    assert submit_one(sessions, http, ids[4], settings, policy)[0] == "submitted"  # the probe
    with sessions() as session:
        assert breaker.read(session, "http").state == "closed"
    drive(sessions, http, ids, settings, SubmissionPolicy(retry_base_s=0.05))
    assert charges_by_key(control) == Counter({k: 1 for k in public_ids(sessions, ids)})


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_daily_spend_cap_holds_the_rest_in_ready_with_a_reason(
        sessions, http, settings, control, letters):
    ids = letters(3)
    with sessions() as session:
        price = session.get(Letter, ids[0]).price
    policy = SubmissionPolicy(daily_spend_cap=price * 2 + Decimal("1.00"))
    result = submit_many(sessions, http, ids, settings, policy)
    assert result.submitted == ids[:2] and result.deferred == [ids[2]]
    with sessions() as session:
        held = session.get(Letter, ids[2])
        assert held.state == S.READY
        assert "daily spend cap" in held.reason
        assert held.next_attempt_at.date() > utcnow().date()
    assert len(control.ledger()) == 2


# PostgreSQL only: SQLite has one writer at a time (BEGIN IMMEDIATE), no race to lose.
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_batches_claiming_at_once_stay_within_the_daily_spend_cap(
        sessions, http, settings, control, letters, monkeypatch):
    """Two submit tasks of a threaded worker claim at once with room for three letters
    left: without taking turns both read the same spend and pay for three each."""
    import threading

    from gateway.providers import spending
    batches = [letters(3), letters(3)]
    with sessions() as session:
        price = session.get(Letter, batches[0][0]).price
    policy = SubmissionPolicy(daily_spend_cap=price * 3 + Decimal("1.00"))
    barrier = threading.Barrier(2)
    real = spending.committed_today

    def read_then_meet(session, now=None):
        committed = real(session, now)
        try:
            barrier.wait(timeout=3)  # both have read the spend before either claims
        except threading.BrokenBarrierError:
            pass  # the other waits for its turn: go on alone
        return committed

    monkeypatch.setattr(spending, "committed_today", read_then_meet)
    failed = run_together(submit_many, [(sessions, http, ids, settings, policy)
                                        for ids in batches])
    assert not failed, failed
    assert len(control.ledger()) == 3  # paid: three letters, not six
    with sessions() as session:
        states = [session.get(Letter, i).state for ids in batches for i in ids]
    assert states.count(S.SUBMITTED) == 3 and states.count(S.READY) == 3, states


def test_409_idempotency_conflict_goes_to_a_person_not_to_failed(
        sessions, http, settings, policy, control, letters):
    [letter_id] = letters(1)
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "submitted"
    with sessions() as session:  # the letter changed after it was charged, and is replayed
        letter = session.get(Letter, letter_id)
        letter.rendered += "\nP.S."
        letter.state, letter.next_attempt_at = S.UNKNOWN, utcnow()
        session.commit()
    assert submit_one(sessions, http, letter_id, settings, policy)[0] == "unknown"
    with sessions() as session:
        letter = session.get(Letter, letter_id)
        assert letter.state == S.UNKNOWN and letter.next_attempt_at is None
        assert "different text" in letter.reason
    assert len(control.ledger()) == 1


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_catalogue_sync_and_a_facility_no_provider_reaches_is_held(
        sessions, http, settings, policy, control, letters):
    from gateway.models import Prisoner

    with sessions() as session:
        report = catalogue.sync_catalogue(session, http)
        session.commit()
        assert report.total == 7 and report.added == 7
        assert catalogue.reaches(session, "http", "77-sizo-2") is True
        prisoner = session.scalar(select(Prisoner).where(Prisoner.code == "K105"))
        prisoner.facility_id = "59-ik-99"  # a typo in the directory, or a closed colony
        session.commit()
        assert [u.prisoner_code for u in catalogue.unreached(session)] == ["K105"]
    good, bad = letters(1, code="K102")[0], letters(1, code="K105")[0]
    result = submit_many(sessions, http, [good, bad], settings, policy)
    assert result.submitted == [good] and result.held == [bad]
    with sessions() as session:
        letter = session.get(Letter, bad)
        assert letter.state == S.HELD and "59-ik-99" in letter.reason
        assert "catalogue" in letter.reason
    assert len(control.ledger()) == 1


def test_stale_catalogue_is_synced_before_submitting_and_a_failed_sync_does_not_block(
        sessions, http, settings, policy, control, letters):
    ids = letters(2)
    control.faults(error_rate=1.0, status=503, method="GET", path_prefix="/v1/facilities")
    result = submit_many(sessions, http, ids, settings, policy)
    assert result.submitted == ids
    with sessions() as session:
        assert catalogue.synced_at(session, "http") is None
    control.faults()
    with sessions() as session:  # the next try is allowed after a few minutes
        session.get(Cursor, "provider:http:catalogue_tried").value = \
            (utcnow() - timedelta(minutes=10)).isoformat()
        session.commit()
    submit_many(sessions, http, [], settings, policy)
    with sessions() as session:
        assert catalogue.synced_at(session, "http") is not None


# PostgreSQL only: SQLite has one writer at a time (BEGIN IMMEDIATE), no race to lose.
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_batches_starting_together_one_tries_the_catalogue_and_both_submit(
        sessions, http, settings, policy, control, letters, monkeypatch):
    """Four threads' first submit tasks start at once: the one that loses the race to
    write the catalogue's first try must still submit its batch, not raise (its letters
    then waited for the sweeper)."""
    from sqlalchemy.orm import Session
    ids = letters(2)
    real_get = Session.get

    def get_while_another_task_writes_the_try(self, entity, key, *a, **kw):
        found = real_get(self, entity, key, *a, **kw)
        if entity is Cursor and key == "provider:http:catalogue_tried" and found is None:
            with sessions() as other:  # the other task, committing first
                other.add(Cursor(name=key, value=utcnow().isoformat()))
                other.commit()
        return found

    monkeypatch.setattr(Session, "get", get_while_another_task_writes_the_try)
    result = submit_many(sessions, http, ids, settings, policy)
    assert result.submitted == ids
    monkeypatch.undo()
    with sessions() as session:
        assert session.get(Cursor, "provider:http:catalogue_tried") is not None


def test_sync_all_fills_every_adapters_catalogue_and_survives_a_failing_one(
        sessions, settings, control):
    control.faults(error_rate=1.0, status=503, method="GET", path_prefix="/v1/facilities")
    with sessions() as session:
        reports = {r.provider: r.total for r in catalogue.sync_all(session, settings)}
        session.commit()
    assert reports == {"desk": 0, "http": -1, "post": 4}
    control.faults()
    with sessions() as session:
        reports = {r.provider: r.total for r in catalogue.sync_all(session, settings)}
        session.commit()
        assert reports == {"desk": 0, "http": 7, "post": 4}
        assert catalogue.facility(session, "post", "77-sizo-2").postal_address


# -- a batch at a time ------------------------------------------------------------------------

def calls_failed(control, planned: int) -> int:
    """How many requests the simulator failed out of a plan of `planned` failures."""
    import httpx
    return planned - httpx.get(control.url + "/_sim/faults", timeout=10).json()["count"]


def given_back(sessions, ids) -> None:
    """Claimed, never called: back in READY, the try not counted, the attempt row says so."""
    with sessions() as session:
        for i in ids:
            letter = session.get(Letter, i)
            assert letter.state == S.READY and letter.attempts == 0
            assert letter.next_attempt_at is not None
            [attempt] = session.scalars(select(SubmissionAttempt).where(
                SubmissionAttempt.letter_id == i)).all()
            assert attempt.outcome == "not_sent" and attempt.finished_at is not None
    for i in ids:
        assert events(sessions, i)[-2:] == ["SUBMITTING", "READY"]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_batch_stops_calling_once_the_breaker_opens_and_gives_the_rest_back(
        sessions, http, settings, control, letters):
    policy = SubmissionPolicy(breaker_threshold=3, breaker_cooldown_s=60)
    ids = letters(6)
    control.faults(error_rate=1.0, count=100, status=503, retry_after=0, mode="before",
                   method="POST", path_prefix="/v1/letters")
    result = submit_many(sessions, http, ids, settings, policy)
    assert result.retry == ids[:3] and result.deferred == ids[3:]
    assert calls_failed(control, 100) == 3  # the breaker's threshold, not the batch
    given_back(sessions, ids[3:])
    with sessions() as session:
        assert breaker.read(session, "http").state == "open"
        assert "circuit open" in session.get(Letter, ids[3]).reason


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_402_in_a_batch_pauses_the_provider_and_gives_the_rest_back(
        sessions, http, settings, policy, control, letters):
    ids = letters(3)
    control.post("/_sim/balance", {"amount": "10.00"})
    result = submit_many(sessions, http, ids, settings, policy)
    assert result.retry == ids[:1] and result.deferred == ids[1:]
    given_back(sessions, ids[1:])
    with sessions() as session:
        assert session.get(Cursor, "provider:http:paused_until") is not None
        assert "paused" in session.get(Letter, ids[1]).reason
    assert control.ledger() == []


def test_a_half_open_breaker_probes_with_one_letter_then_the_batch_goes(
        sessions, http, settings, policy, control, letters):
    ids = letters(3)
    with sessions() as session:  # open, and cooled down: the next caller probes
        session.add(Cursor(name="provider:http:breaker", value=breaker.BreakerState(
            "open", 5, utcnow() - timedelta(seconds=1), 60).to_json()))
        session.commit()
    result = submit_many(sessions, http, ids, settings, policy)
    assert result.submitted == ids
    with sessions() as session:
        assert breaker.read(session, "http").state == "closed"
        notes = [e.note for e in session.scalars(select(LetterEvent).where(
            LetterEvent.letter_id.in_(ids), LetterEvent.to_state == S.SUBMITTING))]
    assert sum("(probe)" in n for n in notes) == 1 and len(notes) == 3
    assert charges_by_key(control) == Counter({k: 1 for k in public_ids(sessions, ids)})


def test_a_batch_that_runs_long_gives_back_the_claims_it_has_not_called(
        sessions, http, settings, policy, control, letters):
    # Past half of stuck_after_s no call starts, so the sweeper never takes back a letter
    # whose call has not begun.
    settings = settings.model_copy(update={"stuck_after_s": 0.3})
    ids = letters(4)
    control.faults(error_rate=0.0, latency_ms=400, method="POST")
    result = submit_many(sessions, http, ids, settings, policy)
    # Not deferred like a paused provider's: due now, for the task to publish at once.
    assert result.submitted == ids[:1] and result.again == ids[1:] and result.deferred == []
    given_back(sessions, ids[1:])
    with sessions() as session:
        assert all(session.get(Letter, i).next_attempt_at <= utcnow() for i in ids[1:])
    control.faults()
    assert submit_many(sessions, http, result.again, settings, policy).submitted == ids[1:]
    assert charges_by_key(control) == Counter({k: 1 for k in public_ids(sessions, ids)})


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite inserts row by row
def test_a_batch_costs_the_same_statements_whatever_its_size(
        sessions, http, settings, policy, control, letters):
    from sqlalchemy import event

    engine = sessions.kw["bind"]
    counted: list[str] = []

    def count(_conn, _cursor, statement, *_a):
        counted.append(statement)

    def statements(n: int) -> int:
        ids = letters(n)
        counted.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert submit_many(sessions, http, ids, settings, policy).submitted == ids
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(counted)

    statements(1)  # the catalogue's first sync
    small, large = statements(2), statements(12)
    assert large <= small + 2, f"{small} statements for 2 letters, {large} for 12"


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_a_batch_of_letters_from_the_inbox_asks_for_no_postcard_greetings(
        sessions, http, settings, policy, control, letters):
    """Only a postcard's own letter (made from no message) can have greetings to send with
    it: a batch of writers' letters costs no query for them, and each writer still gets
    one 'sent' notice, with every outcome's events and attempts written."""
    from sqlalchemy import event

    engine = sessions.kw["bind"]
    counted: list[str] = []

    def count(_conn, _cursor, statement, *_a):
        counted.append(statement)

    ids = letters(3)
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert submit_many(sessions, http, ids, settings, policy).submitted == ids
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert not [s for s in counted if "postcards" in s]
    for letter_id in ids:
        assert events(sessions, letter_id)[-2:] == [S.SUBMITTING, S.SUBMITTED]
    with sessions() as session:
        for letter_id in ids:
            [attempt] = session.scalars(select(SubmissionAttempt).where(
                SubmissionAttempt.letter_id == letter_id))
            assert (attempt.outcome, attempt.http_status) == ("accepted", 201)
            assert attempt.finished_at is not None
            assert len(list(session.scalars(select(OutboundMail).where(
                OutboundMail.letter_id == letter_id, OutboundMail.kind == "sent")))) == 1


def test_outcomes_together_write_the_same_events_at_the_end_or_none_on_an_error(
        sessions, letters):
    """A batch's outcomes write their events in one INSERT when the block ends: the same
    rows, in order, as move() one by one; an exception inside writes none of them."""
    from gateway import actions

    ids = letters(2)
    with sessions() as session:
        batch = [session.get(Letter, i) for i in ids]
        with actions.outcomes_together(session):
            for letter in batch:
                actions.defer(session, letter, "anna", "later")
            actions.replay_asked(session, batch[0], "anna")
            session.flush()
            assert session.scalar(select(func.count()).select_from(LetterEvent).where(
                LetterEvent.letter_id.in_(ids))) == 2  # only make_letter's: at the block's end
        session.commit()
    assert [events(sessions, i) for i in ids] == [[S.READY, S.HELD, S.HELD], [S.READY, S.HELD]]
    with sessions() as session:
        [_, deferred, asked] = session.scalars(select(LetterEvent).where(
            LetterEvent.letter_id == ids[0]).order_by(LetterEvent.id))
        assert (deferred.from_state, deferred.actor, deferred.reason_code, deferred.note) == \
            (S.READY, "anna", "deferred", "deferred: later")
        assert (asked.actor, asked.reason_code) == ("anna", "replay_asked")

    more = letters(1)
    with pytest.raises(RuntimeError), sessions() as session:
        letter = session.get(Letter, more[0])
        with actions.outcomes_together(session):
            actions.defer(session, letter, "anna", "later")
            raise RuntimeError("a bug mid-batch")
    assert events(sessions, more[0]) == [S.READY]
    with sessions() as session:  # the session keeps no leftover to write later
        letter = session.get(Letter, more[0])
        actions.defer(session, letter, "anna", "later")
        session.commit()
    assert events(sessions, more[0]) == [S.READY, S.HELD]


def test_a_batch_with_many_photos_goes_in_rounds_each_letter_once(
        sessions, http, settings, policy, control, letters, monkeypatch):
    """A round holds its letters' photos until its calls are made: past the budget the
    rest of the batch waits for the next round of the same task, and nothing goes twice."""
    from gateway.models import LetterAttachment
    from gateway.pipeline import submission

    jpeg = b"\xff\xd8\xff\xe0" + bytes(60_000)  # what the simulator checks: the signature
    ids = letters(5)
    with sessions() as session:
        for letter_id in ids:
            session.add(LetterAttachment(letter_id=letter_id, filename="photo-1.jpg",
                                         content_type="image/jpeg", data=jpeg))
            session.get(Letter, letter_id).photos = 1
        session.commit()
    rounds: list[int] = []
    take = submission._take

    def counted(session, provider, taken, *a, **kw):
        rounds.append(len(taken))
        return take(session, provider, taken, *a, **kw)

    monkeypatch.setattr(submission, "_take", counted)
    monkeypatch.setattr(submission, "PHOTO_BYTES_AT_ONCE", 130_000)  # two photos a round
    assert submit_many(sessions, http, ids, settings, policy).submitted == ids
    assert rounds == [2, 2, 1]
    assert states(sessions, ids) == ["SUBMITTED"] * 5
    sent = control.letters()
    assert len(sent) == 5 and all(s["photos"] == 1 for s in sent)
    assert len(control.ledger()) == 5
