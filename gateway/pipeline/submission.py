"""Exactly-once paid submission, a batch at a time.

1. Claim the batch's letters READY/UNKNOWN -> SUBMITTING in SQL (a compare-and-set UPDATE)
   and write their Attempt rows and events; commit.
2. Call the provider for each, with the letter's public id as the Idempotency-Key.
3. Record the outcomes and queue the 'sent' notices; commit.
A crash or timeout between 1 and 3 leaves SUBMITTING/UNKNOWN, never READY: the next try
replays the same key, which the provider answers with the first result and no new charge.
Retries are scheduled in the database (next_attempt_at), not as Celery ETAs.

Before a claim, the gates (gates.py) may hold a letter back (it stays where it is, with
a time to come back, and the claim never happens): the provider is paused (402), the
daily spend cap is reached, or the facility is not in the provider's catalogue (then HELD
for a person); an open circuit breaker does the same. Assisted adapters (desk, post) take
no call: the letter moves to DESK for a person to carry.

In step 2 a claimed letter's call is not made, and its claim is given back (the letter
returns where it was, with the reason and a time to come back), once a 402 paused the
provider, a failure opened the breaker (failures are counted at once, in their own
commit, so every worker sees them as they happen), or the batch has run for half of
stuck_after_s (so the sweeper never takes back a letter whose call has not started).
A half-open breaker's probe is a batch of one: the rest wait for its answer."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import actions, faults
from gateway.db import one_of
from gateway.models import (
    Cursor,
    Letter,
    LetterAttachment,
    Prisoner,
    SubmissionAttempt,
    utcnow,
)
from gateway.pipeline.gates import Gates, defer, gate, open_reason, pause_provider, paused_reason
from gateway.providers import breaker, catalogue, refusals
from gateway.providers.base import (
    Accepted,
    PaymentRequired,
    PermanentError,
    Photo,
    Provider,
    Recipient,
    Submission,
    TransientError,
)
from gateway.providers.policy import SubmissionPolicy
from gateway.states import AttemptOutcome as A
from gateway.states import LetterState as S
from gateway.states import Reason as R

log = logging.getLogger(__name__)


@dataclass
class SubmitResult:
    submitted: list[int] = field(default_factory=list)
    mail: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    desk: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)  # the facility cannot take them as they are
    # Given back uncalled because the batch ran long (a slow provider): due now, for the
    # caller to publish again at once rather than leave to the next sweep.
    again: list[int] = field(default_factory=list)


def backoff(attempt: int, retry_after: float | None = None, base: float = 5.0,
            cap: float = 3600.0) -> timedelta:
    """Capped exponential backoff with full jitter; never sooner than Retry-After."""
    delay = random.uniform(0, min(cap, base * 2 ** max(attempt - 1, 0)))
    return timedelta(seconds=max(delay, retry_after or 0.0, min(1.0, base)))


def build_submission(session: Session, letter: Letter, settings,
                     photos: tuple[Photo, ...] | None = None) -> Submission:
    prisoner = session.get(Prisoner, letter.prisoner_id)
    if photos is None:
        photos = _photos(session, [letter.id]).get(letter.id, ())
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


def _photos(session: Session, letter_ids: list[int]) -> dict[int, tuple[Photo, ...]]:
    photos: dict[int, list[Photo]] = {}
    if not letter_ids:
        return {}
    for a in session.scalars(select(LetterAttachment).where(
            one_of(session, LetterAttachment.letter_id, letter_ids)).order_by(LetterAttachment.id)):
        photos.setdefault(a.letter_id, []).append(Photo(a.filename, a.content_type, a.data))
    return {letter_id: tuple(p) for letter_id, p in photos.items()}


# A round holds its letters' photos in memory until its calls are made: past this many
# bytes the rest of the batch waits for the next round of the same task (a batch of letters
# with many large photos would otherwise hold them all at once).
PHOTO_BYTES_AT_ONCE = 48 * 1024 * 1024


def _within_photo_budget(letters: list[Letter], photos: dict[int, tuple[tuple[str, int], ...]]
                         ) -> tuple[list[Letter], list[Letter]]:
    """The letters, in order, whose photos (`photos`: Gates.photos, each (type, size)) fit
    PHOTO_BYTES_AT_ONCE together (always the first), and the ones left for the next round."""
    total = 0
    for i, letter in enumerate(letters):
        total += sum(size for _, size in photos.get(letter.id, ()))
        if i and total > PHOTO_BYTES_AT_ONCE:
            return letters[:i], letters[i:]
    return letters, []


def _due(letter: Letter | None, now: datetime) -> bool:
    if letter is None or letter.state not in (S.READY, S.UNKNOWN):
        return False
    if letter.next_attempt_at and letter.next_attempt_at > now:
        return False
    # UNKNOWN with no next attempt was handed to a person: only they re-drive it.
    return not (letter.state == S.UNKNOWN and letter.next_attempt_at is None)


@dataclass
class _Claim:
    letter_id: int
    attempt_id: int
    key: str  # the letter's public id: the Idempotency-Key of every try
    attempts: int
    was: S  # where the letter returns if the claim is given back
    submission: Submission


@dataclass
class _Call:
    claim: _Claim
    error: Exception | None = None
    accepted: Accepted | None = None
    # Never called: (why, come back at, the outcome: 'deferred' for the provider's sake,
    # 'again' when the batch ran long and the letter is due at once).
    given_back: tuple[str, datetime, str] | None = None


def _take(session: Session, provider: Provider, letters: list[Letter], settings,
          probe: bool = False) -> list[_Claim]:
    """Claim by compare-and-set, one UPDATE for each state the letters were read in (so
    each event names the state the letter really left), then the attempt rows and events;
    flushed, for the caller to commit before any call."""
    taken = actions.start_attempts(session, letters, probe)
    if not taken:
        return []
    # Photos are read only for the letters that have some (the count is written with them).
    photos = _photos(session, [le.id for le, _ in taken if le.photos])
    attempt_ids = list(session.scalars(
        insert(SubmissionAttempt).returning(SubmissionAttempt.id, sort_by_parameter_order=True),
        [dict(letter_id=letter.id, provider=provider.name) for letter, _ in taken]))
    return [_Claim(letter.id, attempt_id, letter.public_id, letter.attempts, was,
                   build_submission(session, letter, settings, photos.get(letter.id, ())))
            for (letter, was), attempt_id in zip(taken, attempt_ids, strict=True)]


def _claim(session_factory: Callable[[], Session], provider: Provider, letter_ids: list[int],
           settings, policy: SubmissionPolicy,
           outcomes: dict[int, tuple[str, list[int]]]) -> tuple[list[_Claim], list[int]]:
    """Gate the letters and claim those that may go, in one transaction. Returns the
    claims and the ids left for another round (when this round is the breaker's probe)."""
    now = utcnow()
    claims: list[_Claim] = []
    rest: list[int] = []
    with session_factory() as session:
        found = {le.id: le for le in session.scalars(
            select(Letter).where(one_of(session, Letter.id, letter_ids))
            .execution_options(populate_existing=True))}
        due = []
        for letter_id in letter_ids:
            if _due(found.get(letter_id), now):
                due.append(found[letter_id])
            else:
                outcomes[letter_id] = ("skipped", [])
        gates = None if provider.assisted or not due else \
            Gates.load(session, provider.name, due, policy)
        go = []
        for letter in due:
            gated = gate(session, provider, letter, gates, settings)
            if gated is None:
                go.append(letter)
            else:
                outcomes[letter.id] = (gated, gates.mail.get(letter.id, []) if gates else [])
        permit = breaker.peek(session, provider.name) if go else None
        if permit is not None and not permit.allowed:
            for letter in go:
                defer(session, letter, permit.retry_at,
                       open_reason(provider.name, permit.retry_at))
                outcomes[letter.id] = ("deferred", [])
        elif permit is not None and permit.probe:
            # One letter probes the half-open breaker; the others wait for its answer.
            for i, letter in enumerate(go):
                claims = _take(session, provider, [letter], settings, probe=True)
                if claims:
                    breaker.take_probe(session, provider.name)
                    rest = [le.id for le in go[i + 1:]]
                    break
                outcomes[letter.id] = ("skipped", [])
        elif permit is not None:
            go, later = _within_photo_budget(go, gates.photos)
            rest = [le.id for le in later]
            claims = _take(session, provider, go, settings)
            claimed = {c.letter_id for c in claims}
            for letter in go:
                if letter.id not in claimed:
                    outcomes[letter.id] = ("skipped", [])  # another worker was first
        session.commit()
    return claims, rest


def _count_failure(session_factory: Callable[[], Session], provider: str,
                   policy: SubmissionPolicy, error: Exception,
                   success_first: bool) -> breaker.BreakerState:
    """A failure counts at once, so other workers' next batches see it; a success of this
    batch made before it resets the count first, as it would have one letter at a time."""
    with session_factory() as session:
        if success_first:
            breaker.record_success(session, provider)
            session.flush()
        state = breaker.record_failure(session, provider, policy, str(error)[:100])
        session.commit()
    return state


def _call(session_factory: Callable[[], Session], provider: Provider, claims: list[_Claim],
          settings, policy: SubmissionPolicy) -> tuple[list[_Call], bool]:
    """Make the claimed calls. Returns them, and whether a success is left for the breaker
    to record (a success resets its count)."""
    started = time.monotonic()
    calls: list[_Call] = []
    stop: tuple[str, datetime, str] | None = None
    success = False
    for claim in claims:
        if stop is None and time.monotonic() - started > settings.stuck_after_s / 2:
            stop = ("the batch ran long: the claim is given back, to be tried again", utcnow(),
                    "again")
        if stop is not None:
            calls.append(_Call(claim, given_back=stop))
            continue
        call = _Call(claim)
        faults.point("submit.before_call")
        try:
            call.accepted = provider.submit(claim.submission, claim.key)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded
            call.error = exc
        faults.point("submit.after_call")
        calls.append(call)
        if isinstance(call.error, PaymentRequired):
            until = utcnow() + timedelta(minutes=policy.pause_on_402_minutes)
            stop = (paused_reason(provider.name, until), until, "deferred")
        elif call.error is not None and not isinstance(call.error, PermanentError):
            state = _count_failure(session_factory, provider.name, policy, call.error, success)
            success = False
            if state.state == "open":
                stop = (open_reason(provider.name, state.until), state.until, "deferred")
        else:  # accepted, or refused for good: the provider answered, it is not failing
            success = True
    return calls, success


@dataclass
class _Attempt:
    """A claim's attempt row as this batch writes it: one UPDATE for the batch at the end,
    rather than the rows loaded as objects to be changed one by one."""
    id: int
    outcome: str = A.STARTED
    http_status: int | None = None
    error: str | None = None
    finished_at: datetime | None = None


def _record_all(session_factory: Callable[[], Session], provider: Provider, calls: list[_Call],
                success: bool, settings, policy: SubmissionPolicy,
                outcomes: dict[int, tuple[str, list[int]]]) -> None:
    with session_factory() as session:
        if success:
            breaker.record_success(session, provider.name)
        letters = {le.id: le for le in session.scalars(select(Letter).where(
            one_of(session, Letter.id, [c.claim.letter_id for c in calls])))}
        attempts: list[_Attempt] = []
        accepted: list[Letter] = []
        with actions.outcomes_together(session):
            for call in calls:
                letter = letters[call.claim.letter_id]
                attempt = _Attempt(call.claim.attempt_id, finished_at=utcnow())
                attempts.append(attempt)
                if call.given_back is not None:
                    outcome = _give_back(session, letter, attempt, call.claim, *call.given_back)
                elif letter.state != S.SUBMITTING:
                    outcome = _late(session, letter, attempt, call.error, call.accepted, settings)
                else:
                    outcome = _record(session, provider, letter, attempt, call.claim.attempts,
                                      call.error, call.accepted, settings, policy)
                outcomes[letter.id] = (outcome, [])
                if outcome == "submitted":
                    accepted.append(letter)
                elif outcome == "failed" and isinstance(call.error, PermanentError):
                    outcomes[letter.id] = (outcome, actions.notify_refused(
                        session, settings, letter, refusals.explain(call.error)))
            for letter_id, mail in actions.notify_sent(session, settings, accepted).items():
                outcomes[letter_id] = ("submitted", mail)
        session.execute(update(SubmissionAttempt), [vars(a) for a in attempts])
        faults.point("submit.before_record")
        session.commit()


def _submit(session_factory: Callable[[], Session], provider: Provider, letter_ids: list[int],
            settings, policy: SubmissionPolicy) -> dict[int, tuple[str, list[int]]]:
    outcomes: dict[int, tuple[str, list[int]]] = {}
    todo = list(dict.fromkeys(letter_ids))
    while todo:  # one round; or a probe's round, or a round of photos at most, then the rest
        claims, todo = _claim(session_factory, provider, todo, settings, policy, outcomes)
        if claims:
            calls, success = _call(session_factory, provider, claims, settings, policy)
            _record_all(session_factory, provider, calls, success, settings, policy, outcomes)
    return outcomes


def submit_one(session_factory: Callable[[], Session], provider: Provider, letter_id: int,
               settings, policy: SubmissionPolicy | None = None) -> tuple[str, list[int]]:
    """Returns (outcome, outbound mail ids). Outcome: submitted | retry | unknown | failed |
    desk | held | returned | deferred | again | skipped."""
    policy = policy or SubmissionPolicy.from_settings(settings)
    return _submit(session_factory, provider, [letter_id], settings, policy)[letter_id]


def _give_back(session: Session, letter: Letter, attempt: _Attempt, claim: _Claim,
               why: str, until: datetime, outcome: str) -> str:
    """The call was never made: the claim is undone and the letter returns where it was."""
    attempt.outcome, attempt.error = A.NOT_SENT, why[:500]
    if letter.state != S.SUBMITTING:
        return "skipped"  # the sweeper took it back meanwhile: its replay decides
    actions.give_back(session, letter, claim.was, why, until)
    return outcome


def _accept(session: Session, letter: Letter, accepted: Accepted, settings) -> None:
    """The caller queues the batch's 'sent' notices together (actions.notify_sent)."""
    actions.record_submitted(
        session, settings, letter, accepted.number, price=accepted.amount,
        currency=accepted.currency, pages=accepted.pages, status=accepted.status,
        how="replayed key" if accepted.replayed else "by API", notify=False)


def _late(session: Session, letter: Letter, attempt: _Attempt, error,
          accepted: Accepted | None, settings) -> str:
    """The sweeper took the letter back while our call was in flight (it judged us dead).
    A success still counts when the letter sits in UNKNOWN: the number is the answer the
    replay would have fetched. Otherwise the replay already under way resolves it."""
    attempt.outcome = A.LATE
    if error is None and letter.state == S.UNKNOWN:
        attempt.outcome, attempt.http_status = A.ACCEPTED, 200 if accepted.replayed else 201
        _accept(session, letter, accepted, settings)
        return "submitted"
    attempt.error = repr(error)[:500] if error else None
    return "skipped"


def _record(session: Session, provider: Provider, letter: Letter, attempt: _Attempt,
            attempts: int, error, accepted: Accepted | None, settings,
            policy: SubmissionPolicy) -> str:
    if error is None:
        attempt.outcome = A.ACCEPTED
        attempt.http_status = 200 if accepted.replayed else 201
        _accept(session, letter, accepted, settings)
        return "submitted"
    if isinstance(error, PaymentRequired):
        attempt.outcome, attempt.http_status, attempt.error = A.PAYMENT, 402, str(error)
        pause_provider(session, provider.name, policy.pause_on_402_minutes,
                       "402 insufficient funds: top up the account; submissions paused")
        until = utcnow() + timedelta(minutes=policy.pause_on_402_minutes)
        # 402 is answered before anything is taken: an UNKNOWN letter stays UNKNOWN.
        target = S.UNKNOWN if letter_was_maybe_sent(session, letter, attempt.id) else S.READY
        actions.after_attempt(session, letter, target, "provider account empty; provider paused",
                              R.PROVIDER_PAUSED, until)
        return "retry"
    if isinstance(error, PermanentError) and error.status == 409:
        # The provider holds this key with another payload: it may well have charged.
        attempt.outcome, attempt.http_status = A.CONFLICT, 409
        attempt.error = f"{error.code}: {error}"
        actions.after_attempt(session, letter, S.UNKNOWN, "the provider has this letter's key "
                              "with a different text; a person checks the service before "
                              "anything else is sent", R.KEY_CONFLICT, None)
        return "unknown"
    if isinstance(error, PermanentError):
        attempt.outcome, attempt.http_status = A.REFUSED, error.status
        attempt.error = f"{error.code}: {error} {error.fields or ''}".strip()
        actions.after_attempt(session, letter, S.FAILED, f"provider refused: {attempt.error}",
                              R.PROVIDER_REFUSED, None)
        return "failed"
    if isinstance(error, TransientError):
        attempt.outcome = A.UNKNOWN if error.maybe_sent else A.TRANSIENT
        attempt.http_status, attempt.error = error.status, str(error)[:500]
        maybe_sent = error.maybe_sent or letter_was_maybe_sent(session, letter, attempt.id)
        if attempts >= settings.max_submit_attempts:
            # A person decides now.
            actions.after_attempt(
                session, letter, S.UNKNOWN if maybe_sent else S.FAILED,
                f"gave up after {attempts} attempts: {error}"
                + ("; it may have reached the provider: check there" if maybe_sent else ""),
                R.GAVE_UP, None)
            return "failed"
        again = utcnow() + backoff(attempts, error.retry_after, policy.retry_base_s,
                                   policy.retry_cap_s)
        if maybe_sent:
            actions.after_attempt(session, letter, S.UNKNOWN, f"may have reached the provider "
                                  f"({error}); will replay the same key", R.MAYBE_SENT, again)
            return "unknown"
        actions.after_attempt(session, letter, S.READY, f"provider unavailable: {error}",
                              R.PROVIDER_UNAVAILABLE, again)
        return "retry"
    attempt.outcome, attempt.error = A.ERROR, repr(error)[:500]
    actions.after_attempt(session, letter, S.UNKNOWN, f"unexpected error: {error!r}",
                          R.UNEXPECTED_ERROR, None)
    log.error("unexpected error submitting letter %s: %r", letter.id, error)
    return "unknown"


def replay_unknown(session: Session, letter_id: int, actor: str) -> bool:
    """A person asks for one more replay of an UNKNOWN letter's key (safe by contract: the
    provider answers the first result, no second charge). The caller commits."""
    letter = session.get(Letter, letter_id, with_for_update=True, populate_existing=True)
    if letter is None or letter.state != S.UNKNOWN:
        return False
    actions.replay_asked(session, letter, actor)
    return True


def letter_was_maybe_sent(session: Session, letter: Letter, current_attempt_id: int) -> bool:
    """Once any attempt may have reached the provider, the letter stays UNKNOWN until resolved."""
    return session.query(SubmissionAttempt).filter(
        SubmissionAttempt.letter_id == letter.id,
        SubmissionAttempt.id != current_attempt_id,
        SubmissionAttempt.outcome.in_([A.UNKNOWN, A.STARTED, A.LATE, A.ERROR, A.CONFLICT]),
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
        try:
            session.commit()
        except IntegrityError:
            # Another submission task wrote the first try at this same moment: it syncs.
            # Raising here left its batch READY until the sweeper re-drove it (~40 s, seen
            # with the threaded worker's four tasks starting together).
            session.rollback()
            return False
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
    outcomes = _submit(session_factory, provider, letter_ids, settings, policy)
    result = SubmitResult()
    buckets = {"submitted": result.submitted, "retry": result.retry, "unknown": result.retry,
               "desk": result.desk, "held": result.held, "deferred": result.deferred,
               "returned": result.returned, "again": result.again}
    for letter_id in dict.fromkeys(letter_ids):
        outcome, mail = outcomes[letter_id]
        result.mail += mail
        if outcome in buckets:
            buckets[outcome].append(letter_id)
    return result
