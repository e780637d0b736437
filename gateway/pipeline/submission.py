"""Exactly-once paid submission.

1. Claim the letter READY/UNKNOWN -> SUBMITTING in SQL and write the Attempt row; commit.
2. Call the provider with the letter's public id as the Idempotency-Key.
3. Record the outcome; commit.
A crash or timeout between 1 and 3 leaves SUBMITTING/UNKNOWN, never READY: the next try
replays the same key, which the provider answers with the first result and no new charge.
Retries are scheduled in the database (next_attempt_at), not as Celery ETAs.

Before a claim, four gates may hold a letter back (it stays where it is, with a time to
come back, and the claim never happens): the provider is paused (402), its circuit
breaker is open, the daily spend cap is reached, or the facility is not in the provider's
catalogue (then HELD for a person). Assisted adapters (desk, post) take no call: the
letter moves to DESK for a person to carry."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway import faults
from gateway.lifecycle import claim, move
from gateway.models import (
    Cursor,
    Letter,
    LetterAttachment,
    LetterEvent,
    Prisoner,
    SubmissionAttempt,
    utcnow,
)
from gateway.notices import queue_notice
from gateway.providers import breaker, catalogue, spending
from gateway.providers.base import (
    PaymentRequired,
    PermanentError,
    Photo,
    Provider,
    Recipient,
    Submission,
    TransientError,
)
from gateway.providers.policy import SubmissionPolicy
from gateway.states import LetterState as S

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    submitted: list[int] = field(default_factory=list)
    mail: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    desk: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)


def backoff(attempt: int, retry_after: float | None = None, base: float = 5.0,
            cap: float = 3600.0) -> timedelta:
    """Capped exponential backoff with full jitter; never sooner than Retry-After."""
    delay = random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))
    return timedelta(seconds=max(delay, retry_after or 0.0, min(1.0, base)))


def paused_until(session: Session, provider: str) -> datetime | None:
    row = session.get(Cursor, f"provider:{provider}:paused_until")
    if row is None:
        return None
    try:
        until = datetime.fromisoformat(row.value)
    except ValueError:
        return None
    return until if until > utcnow() else None


def pause_provider(session: Session, provider: str, minutes: int, why: str) -> None:
    """Stop paying this provider for a while and tell the organizers (overview alerts)."""
    now = utcnow()
    until = (now + timedelta(minutes=minutes)).isoformat()
    row = session.get(Cursor, f"provider:{provider}:paused_until")
    if row is None:
        session.add(Cursor(name=f"provider:{provider}:paused_until", value=until))
    else:
        row.value = until
    session.add(Cursor(name=f"alert:{provider}:{now.isoformat()}", value=why[:200]))


def build_submission(session: Session, letter: Letter, settings) -> Submission:
    prisoner = session.get(Prisoner, letter.prisoner_id)
    photos = tuple(Photo(a.filename, a.content_type, a.data) for a in
                   session.query(LetterAttachment).filter_by(letter_id=letter.id)
                   .order_by(LetterAttachment.id))
    return Submission(
        facility_id=prisoner.facility_id,
        recipient=Recipient(prisoner.last_name, prisoner.first_name, prisoner.middle_name,
                            prisoner.birth_year),
        # The organization is the author: its name, reply mailbox and phone. Never the writer's.
        author_name=letter.writer_name or settings.org_name,
        author_email=settings.org_reply_email,
        author_phone=settings.org_phone,
        text=letter.rendered or "",
        reply_ordered=settings.reply_ordered,
        client_ref=letter.public_id,
        photos=photos,
    )


def _defer(session: Session, letter: Letter, until: datetime | None, reason: str) -> None:
    """Keep the letter where it is, with a reason a person can read and a time to come back.
    One timeline entry per new reason, so a long hold does not flood the history."""
    letter.next_attempt_at = until
    if letter.reason != reason:
        letter.reason = reason
        session.add(LetterEvent(letter_id=letter.id, from_state=letter.state,
                                to_state=letter.state, note=reason))


def _gate(session: Session, provider: Provider, letter: Letter,
          policy: SubmissionPolicy) -> str | None:
    """Everything that may keep a letter from a claim. Returns the outcome, or None to go on."""
    if provider.assisted:
        if letter.state != S.READY:
            return "skipped"
        letter.next_attempt_at = None
        move(session, letter, S.DESK, note=f"waits for a person ({provider.name})")
        return "desk"
    prisoner = session.get(Prisoner, letter.prisoner_id) if letter.prisoner_id else None
    if letter.state == S.READY and prisoner is not None and \
            catalogue.reaches(session, provider.name, prisoner.facility_id) is False:
        letter.next_attempt_at = None
        move(session, letter, S.HELD,
             note=f"no provider reaches {prisoner.facility_name} ({prisoner.facility_id}): "
                  f"it is not in {provider.name}'s catalogue")
        return "held"
    until = paused_until(session, provider.name)
    if until is not None:
        _defer(session, letter, until, f"{provider.name} is paused until {until:%Y-%m-%d %H:%M} "
                                       "UTC (its account is empty)")
        return "deferred"
    if letter.state == S.READY:  # a replay of an UNKNOWN letter costs nothing more
        over, committed = spending.over_cap(session, letter, policy.daily_spend_cap)
        if over:
            _defer(session, letter, spending.next_day(),
                   f"daily spend cap reached ({committed} of {policy.daily_spend_cap} RUB "
                   "today); waits for tomorrow")
            return "deferred"
    return None


def submit_one(session_factory: Callable[[], Session], provider: Provider, letter_id: int,
               settings, policy: SubmissionPolicy | None = None) -> tuple[str, list[int]]:
    """Returns (outcome, outbound mail ids). Outcome: submitted | retry | unknown | failed |
    desk | held | deferred | skipped."""
    policy = policy or SubmissionPolicy.from_settings(settings)
    with session_factory() as session:
        letter = session.get(Letter, letter_id, populate_existing=True)
        if letter is None or letter.state not in (S.READY, S.UNKNOWN):
            return "skipped", []
        if letter.next_attempt_at and letter.next_attempt_at > utcnow():
            return "skipped", []
        if letter.state == S.UNKNOWN and letter.next_attempt_at is None:
            return "skipped", []  # handed to a person: only they re-drive it (replay_unknown)
        gated = _gate(session, provider, letter, policy)
        if gated is not None:
            session.commit()
            return gated, []
        permit = breaker.permit(session, provider.name)
        if not permit.allowed:
            _defer(session, letter, permit.retry_at,
                   f"{provider.name} is failing; circuit open until "
                   f"{permit.retry_at:%H:%M:%S} UTC")
            session.commit()
            return "deferred", []
        letter = claim(session, letter_id, [S.READY, S.UNKNOWN], S.SUBMITTING,
                       note=f"attempt {letter.attempts + 1}" + (" (probe)" if permit.probe else ""))
        if letter is None:
            session.rollback()  # also gives back a half-open probe we took
            return "skipped", []
        letter.attempts += 1
        attempt = SubmissionAttempt(letter_id=letter.id, provider=provider.name)
        session.add(attempt)
        submission = build_submission(session, letter, settings)
        session.commit()
        attempt_id, key, attempts = attempt.id, letter.public_id, letter.attempts

    faults.point("submit.before_call")
    error: Exception | None = None
    try:
        accepted = provider.submit(submission, key)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded below
        error = exc
    faults.point("submit.after_call")

    with session_factory() as session:
        letter = session.get(Letter, letter_id, populate_existing=True)
        attempt = session.get(SubmissionAttempt, attempt_id)
        attempt.finished_at = utcnow()
        if isinstance(error, TransientError) or (error is not None and
                                                 not isinstance(error, PermanentError)):
            breaker.record_failure(session, provider.name, policy, str(error)[:100])
        elif not isinstance(error, PaymentRequired):
            breaker.record_success(session, provider.name)
        if letter.state != S.SUBMITTING:
            outcome, mail = _late(session, letter, attempt, error,
                                  None if error else accepted, settings)
            session.commit()
            return outcome, mail
        outcome, mail = _record(session, provider, letter, attempt, attempts, error,
                                None if error else accepted, settings, policy)
        faults.point("submit.before_record")
        session.commit()
        return outcome, mail


def _accept(session: Session, letter: Letter, accepted, settings) -> list[int]:
    letter.provider_number = accepted.number
    letter.provider_status = accepted.status
    letter.pages = accepted.pages or letter.pages
    letter.price, letter.currency = accepted.amount, accepted.currency
    letter.submitted_at = utcnow()
    letter.next_attempt_at = utcnow() + timedelta(minutes=30)  # first status look-up
    move(session, letter, S.SUBMITTED,
         note=f"number {accepted.number}" + (" (replayed key)" if accepted.replayed else ""))
    return queue_notice(session, settings, letter, "sent")


def _late(session: Session, letter: Letter, attempt: SubmissionAttempt, error, accepted,
          settings) -> tuple[str, list[int]]:
    """The sweeper took the letter back while our call was in flight (it judged us dead).
    A success still counts when the letter sits in UNKNOWN: the number is the answer the
    replay would have fetched. Otherwise the replay already under way resolves it."""
    attempt.outcome = "late"
    if error is None and letter.state == S.UNKNOWN:
        attempt.outcome, attempt.http_status = "accepted", 200 if accepted.replayed else 201
        return "submitted", _accept(session, letter, accepted, settings)
    attempt.error = repr(error)[:500] if error else None
    return "skipped", []


def _record(session: Session, provider: Provider, letter: Letter, attempt: SubmissionAttempt,
            attempts: int, error, accepted, settings,
            policy: SubmissionPolicy) -> tuple[str, list[int]]:
    if error is None:
        attempt.outcome = "accepted"
        attempt.http_status = 200 if accepted.replayed else 201
        return "submitted", _accept(session, letter, accepted, settings)
    if isinstance(error, PaymentRequired):
        attempt.outcome, attempt.http_status, attempt.error = "payment", 402, str(error)
        pause_provider(session, provider.name, policy.pause_on_402_minutes,
                       "402 insufficient funds: top up the account; submissions paused")
        until = utcnow() + timedelta(minutes=policy.pause_on_402_minutes)
        # 402 is answered before anything is taken: an UNKNOWN letter stays UNKNOWN.
        target = S.UNKNOWN if letter_was_maybe_sent(session, letter, attempt.id) else S.READY
        move(session, letter, target, note="provider account empty; provider paused")
        letter.next_attempt_at = until
        return "retry", []
    if isinstance(error, PermanentError) and error.status == 409:
        # The provider holds this key with another payload: it may well have charged.
        attempt.outcome, attempt.http_status = "conflict", 409
        attempt.error = f"{error.code}: {error}"
        letter.next_attempt_at = None
        move(session, letter, S.UNKNOWN, note="the provider has this letter's key with a "
             "different text; a person checks the service before anything else is sent")
        return "unknown", []
    if isinstance(error, PermanentError):
        attempt.outcome, attempt.http_status = "refused", error.status
        attempt.error = f"{error.code}: {error} {error.fields or ''}".strip()
        letter.next_attempt_at = None
        move(session, letter, S.FAILED, note=f"provider refused: {attempt.error}")
        return "failed", []
    if isinstance(error, TransientError):
        attempt.outcome = "unknown" if error.maybe_sent else "transient"
        attempt.http_status, attempt.error = error.status, str(error)[:500]
        maybe_sent = error.maybe_sent or letter_was_maybe_sent(session, letter, attempt.id)
        if attempts >= settings.max_submit_attempts:
            letter.next_attempt_at = None  # a person decides now
            move(session, letter, S.UNKNOWN if maybe_sent else S.FAILED,
                 note=f"gave up after {attempts} attempts: {error}"
                      + ("; it may have reached the provider: check there" if maybe_sent else ""))
            return "failed", []
        letter.next_attempt_at = utcnow() + backoff(attempts, error.retry_after,
                                                    policy.retry_base_s, policy.retry_cap_s)
        if maybe_sent:
            move(session, letter, S.UNKNOWN,
                 note=f"may have reached the provider ({error}); will replay the same key")
            return "unknown", []
        move(session, letter, S.READY, note=f"provider unavailable: {error}")
        return "retry", []
    attempt.outcome, attempt.error = "error", repr(error)[:500]
    letter.next_attempt_at = None
    move(session, letter, S.UNKNOWN, note=f"unexpected error: {error!r}")
    log.error("unexpected error submitting letter %s: %r", letter.id, error)
    return "unknown", []


def replay_unknown(session: Session, letter_id: int, actor: str) -> bool:
    """A person asks for one more replay of an UNKNOWN letter's key (safe by contract: the
    provider answers the first result, no second charge). The caller commits."""
    letter = session.get(Letter, letter_id, with_for_update=True, populate_existing=True)
    if letter is None or letter.state != S.UNKNOWN:
        return False
    letter.next_attempt_at = utcnow()
    session.add(LetterEvent(letter_id=letter.id, from_state=S.UNKNOWN, to_state=S.UNKNOWN,
                            actor=actor, note="replay the same key (asked by a person)"))
    return True


def letter_was_maybe_sent(session: Session, letter: Letter, current_attempt_id: int) -> bool:
    """Once any attempt may have reached the provider, the letter stays UNKNOWN until resolved."""
    return session.query(SubmissionAttempt).filter(
        SubmissionAttempt.letter_id == letter.id,
        SubmissionAttempt.id != current_attempt_id,
        SubmissionAttempt.outcome.in_(["unknown", "started", "late", "error", "conflict"]),
    ).count() > 0


CATALOGUE_RETRY = timedelta(minutes=5)


def refresh_catalogue(session_factory: Callable[[], Session], provider: Provider,
                      policy: SubmissionPolicy) -> bool:
    """Sync a stale catalogue before submitting; never let a failure stop submissions.
    Tries at most every few minutes (a cursor records the last try)."""
    if provider.assisted:
        return False
    tried_name = f"provider:{provider.name}:catalogue_tried"
    with session_factory() as session:
        if not catalogue.is_stale(session, provider.name, policy.catalogue_max_age_h):
            return False
        tried = session.get(Cursor, tried_name)
        now = utcnow()
        if tried is not None and datetime.fromisoformat(tried.value) > now - CATALOGUE_RETRY:
            return False
        if tried is None:
            session.add(Cursor(name=tried_name, value=now.isoformat()))
        else:
            tried.value = now.isoformat()
        session.commit()
    try:
        with session_factory() as session:
            catalogue.sync_catalogue(session, provider)
            session.commit()
        return True
    except Exception as exc:  # noqa: BLE001 - the catalogue is an optimisation of the gate
        log.warning("catalogue sync for %s failed: %r", provider.name, exc)
        return False


def submit_many(session_factory, provider: Provider, letter_ids: list[int], settings,
                policy: SubmissionPolicy | None = None) -> SubmitResult:
    policy = policy or SubmissionPolicy.from_settings(settings)
    refresh_catalogue(session_factory, provider, policy)
    result = SubmitResult()
    buckets = {"submitted": result.submitted, "retry": result.retry, "unknown": result.retry,
               "desk": result.desk, "held": result.held, "deferred": result.deferred}
    for letter_id in letter_ids:
        outcome, mail = submit_one(session_factory, provider, letter_id, settings, policy)
        result.mail += mail
        if outcome in buckets:
            buckets[outcome].append(letter_id)
    return result
