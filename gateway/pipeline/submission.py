"""Exactly-once paid submission.

1. Claim the letter READY/UNKNOWN -> SUBMITTING in SQL and write the Attempt row; commit.
2. Call the provider with the letter's public id as the Idempotency-Key.
3. Record the outcome; commit.
A crash or timeout between 1 and 3 leaves SUBMITTING/UNKNOWN, never READY: the next try
replays the same key, which the provider answers with the first result and no new charge.
Retries are scheduled in the database (next_attempt_at), not as Celery ETAs."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy.orm import Session

from gateway import faults
from gateway.lifecycle import claim, move
from gateway.models import Cursor, Letter, LetterAttachment, Prisoner, SubmissionAttempt, utcnow
from gateway.notices import queue_notice
from gateway.providers.base import (
    PaymentRequired,
    PermanentError,
    Photo,
    Provider,
    Recipient,
    Submission,
    TransientError,
)
from gateway.states import LetterState as S

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    submitted: list[int] = field(default_factory=list)
    mail: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)


def backoff(attempt: int, retry_after: float | None = None, base: float = 5.0,
            cap: float = 3600.0) -> timedelta:
    """Capped exponential backoff with full jitter; never sooner than Retry-After."""
    delay = random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))
    return timedelta(seconds=max(delay, retry_after or 0.0, 1.0))


def paused_until(session: Session, provider: str):
    row = session.get(Cursor, f"provider:{provider}:paused_until")
    if row is None:
        return None
    from datetime import datetime
    until = datetime.fromisoformat(row.value)
    return until if until > utcnow() else None


def pause_provider(session: Session, provider: str, minutes: int, why: str) -> None:
    until = (utcnow() + timedelta(minutes=minutes)).isoformat()
    row = session.get(Cursor, f"provider:{provider}:paused_until")
    if row is None:
        session.add(Cursor(name=f"provider:{provider}:paused_until", value=until))
    else:
        row.value = until
    session.add(Cursor(name=f"alert:{provider}:{utcnow().isoformat()}", value=why[:200]))


def build_submission(session: Session, letter: Letter, settings) -> Submission:
    prisoner = session.get(Prisoner, letter.prisoner_id)
    photos = tuple(Photo(a.filename, a.content_type, a.data) for a in
                   session.query(LetterAttachment).filter_by(letter_id=letter.id))
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


def submit_one(session_factory: Callable[[], Session], provider: Provider, letter_id: int,
               settings) -> tuple[str, list[int]]:
    """Returns (outcome, outbound mail ids). Outcome: submitted | retry | unknown | failed | skipped."""
    with session_factory() as session:
        if paused_until(session, provider.name):
            return "skipped", []
        letter = session.get(Letter, letter_id)
        if letter is None or letter.state not in (S.READY, S.UNKNOWN):
            return "skipped", []
        if letter.next_attempt_at and letter.next_attempt_at > utcnow():
            return "skipped", []
        letter = claim(session, letter_id, [S.READY, S.UNKNOWN], S.SUBMITTING,
                       note=f"attempt {letter.attempts + 1}")
        if letter is None:
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
        letter = session.get(Letter, letter_id)
        attempt = session.get(SubmissionAttempt, attempt_id)
        attempt.finished_at = utcnow()
        mail: list[int] = []
        if letter.state != S.SUBMITTING:  # swept as lost meanwhile; the replay resolves it
            attempt.outcome = "late"
            session.commit()
            return "skipped", []
        if error is None:
            attempt.outcome = "accepted"
            attempt.http_status = 200 if accepted.replayed else 201
            letter.provider_number = accepted.number
            letter.provider_status = accepted.status
            letter.pages = accepted.pages or letter.pages
            letter.price, letter.currency = accepted.amount, accepted.currency
            letter.submitted_at = utcnow()
            letter.next_attempt_at = utcnow() + timedelta(minutes=30)  # first status look-up
            move(session, letter, S.SUBMITTED,
                 note=f"number {accepted.number}" + (" (replayed key)" if accepted.replayed else ""))
            mail = queue_notice(session, settings, letter, "sent")
            outcome = "submitted"
        elif isinstance(error, PaymentRequired):
            attempt.outcome, attempt.http_status, attempt.error = "payment", 402, str(error)
            pause_provider(session, provider.name, 30, "402 insufficient funds")
            letter.next_attempt_at = utcnow() + timedelta(minutes=30)
            move(session, letter, S.READY, note="provider account empty; provider paused")
            outcome = "retry"
        elif isinstance(error, PermanentError):
            attempt.outcome, attempt.http_status = "refused", error.status
            attempt.error = f"{error.code}: {error} {error.fields or ''}".strip()
            move(session, letter, S.FAILED, note=f"provider refused: {attempt.error}")
            outcome = "failed"
        elif isinstance(error, TransientError):
            attempt.outcome = "unknown" if error.maybe_sent else "transient"
            attempt.http_status, attempt.error = error.status, str(error)[:500]
            letter.next_attempt_at = utcnow() + backoff(attempts, error.retry_after)
            if attempts >= settings.max_submit_attempts:
                target = S.UNKNOWN if error.maybe_sent or letter_was_maybe_sent(session, letter, attempt_id) \
                    else S.FAILED
                letter.next_attempt_at = None  # a person decides now
                move(session, letter, target, note=f"gave up after {attempts} attempts: {error}")
                outcome = "failed"
            elif error.maybe_sent or letter_was_maybe_sent(session, letter, attempt_id):
                move(session, letter, S.UNKNOWN,
                     note=f"may have reached the provider ({error}); will replay the same key")
                outcome = "unknown"
            else:
                move(session, letter, S.READY, note=f"provider unavailable: {error}")
                outcome = "retry"
        else:
            attempt.outcome, attempt.error = "error", repr(error)[:500]
            letter.next_attempt_at = None
            move(session, letter, S.UNKNOWN, note=f"unexpected error: {error!r}")
            outcome = "unknown"
            log.exception("unexpected error submitting letter %s", letter_id, exc_info=error)
        faults.point("submit.before_record")
        session.commit()
        return outcome, mail


def letter_was_maybe_sent(session: Session, letter: Letter, current_attempt_id: int) -> bool:
    """Once any attempt may have reached the provider, the letter stays UNKNOWN until resolved."""
    return session.query(SubmissionAttempt).filter(
        SubmissionAttempt.letter_id == letter.id,
        SubmissionAttempt.id != current_attempt_id,
        SubmissionAttempt.outcome.in_(["unknown", "started", "late", "error"]),
    ).count() > 0


def submit_many(session_factory, provider: Provider, letter_ids: list[int], settings) -> SubmitResult:
    result = SubmitResult()
    for letter_id in letter_ids:
        outcome, mail = submit_one(session_factory, provider, letter_id, settings)
        result.mail += mail
        if outcome == "submitted":
            result.submitted.append(letter_id)
        elif outcome in ("retry", "unknown"):
            result.retry.append(letter_id)
    return result
