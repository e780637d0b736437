"""One home for every outcome of a letter.

Whatever decides (the checks, a submission's answer, a moderator, a volunteer at the desk
or the post, the CLI), what happens is written here once: the state change with its
reason code and text (lifecycle), the bookkeeping that goes with it, and the writer's
notice. Nothing else calls `lifecycle.move`/`claim` (tests/test_one_home.py reads the
source to hold that). The caller commits, then publishes the mail ids it is handed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from gateway.lifecycle import annotate, claim, claim_many, events_together, move
from gateway.models import (
    CensorDecision,
    Letter,
    LetterAttachment,
    LetterEvent,
    Postcard,
    Prisoner,
    utcnow,
)
from gateway.notices import queue_notice, queue_notices
from gateway.states import LetterState as S
from gateway.states import NoticeKind as N
from gateway.states import Reason as R

FIRST_STATUS_LOOKUP = timedelta(minutes=30)


@dataclass(frozen=True)
class Because:
    """A reason the writer reads (Russian and English) and an organizer sees; shaped like a
    rule's Finding so the notice templates take either."""
    reason_ru: str
    reason_en: str
    reason_organizer: str = ""
    passages: tuple[str, ...] = ()
    rule: str = "organizer"
    severity: str = "return"

    @classmethod
    def said(cls, text: str, passages: Sequence[str] = ()) -> Because:
        """An organizer's own words, shown to the writer as written."""
        return cls(text, text, text, tuple(passages))


# -- reading and checking -------------------------------------------------------------------

def quarantine(session: Session, letter: Letter, note: str, code: R, actor: str = "system") -> None:
    move(session, letter, S.QUARANTINED, note=note, code=code, actor=actor)


def ignore(session: Session, letter: Letter, note: str, code: R) -> None:
    move(session, letter, S.IGNORED, note=note, code=code)


def await_writer(session: Session, letter: Letter, note: str) -> None:
    move(session, letter, S.AWAITING_SENDER, note=note, code=R.AWAITING_CONFIRMATION)


def back_to_checks(session: Session, letter: Letter, *, actor: str = "system",
                   note: str = "the writer confirmed their address",
                   code: R = R.WRITER_CONFIRMED) -> None:
    """What the letter waited for came (the writer confirmed their address, an organizer
    vouched for them, the writer said which prisoner they meant): checked from the start."""
    move(session, letter, S.RECEIVED, actor=actor, note=note, code=code)


def redrive(session: Session, letter_id: int, actor: str = "organizer") -> Letter | None:
    """A quarantined letter read again from the start (an organizer's action)."""
    return claim(session, letter_id, [S.QUARANTINED], S.RECEIVED, actor=actor,
                 note=f"read again ({actor})", code=R.RETRY_BY_PERSON)


def checked(session: Session, letter: Letter, route, actor: str = "system",
            note: str = "checked and rendered", code: R = R.CHECKED,
            due_now: bool = False) -> bool:
    """Checks passed: routing is decided here, once. A human-carried letter goes straight
    to its queue (DESK: the desk or the post); the rest to submission (READY). Returns
    True when the letter is to be submitted."""
    letter.provider, letter.service = route.adapter, route.service
    if route.human_carried:
        letter.next_attempt_at = None
        move(session, letter, S.DESK, actor=actor, note=f"{note}; waits for a person "
             f"({route.adapter}, {route.title})",
             code=R.TO_POST if route.adapter == "post" else R.TO_DESK)
        return False
    # The caller publishes the submission; without a task (a person's approval) the next
    # sweep submits a letter that is due now.
    letter.next_attempt_at = utcnow() if due_now else None
    move(session, letter, S.READY, actor=actor, note=note, code=code)
    return True


def return_to_writer(session: Session, settings, letter: Letter, *, note: str, code: R,
                     kind: N = N.RETURNED, findings: Iterable = (), parsed=None,
                     actor: str = "system", **context) -> list[int]:
    """The letter cannot go as written: REJECTED, and the writer is told why and what to
    change. Returns the outbound mail ids."""
    move(session, letter, S.REJECTED, actor=actor, note=note, code=code)
    if not letter.sender_sealed:
        return []  # nobody known to tell (an unreadable message)
    if kind == N.RETURNED:
        context["findings"] = list(findings)
    return queue_notice(session, settings, letter, kind, parsed=parsed, **context)


def hold(session: Session, settings, letter: Letter, *, note: str, code: R,
         findings: Iterable = (), parsed=None, notify: bool = True,
         actor: str = "system") -> list[int]:
    """A person must weigh it. The writer hears 'being reviewed' when `notify`."""
    letter.next_attempt_at = None
    move(session, letter, S.HELD, actor=actor, note=note, code=code)
    if not notify:
        return []
    return queue_notice(session, settings, letter, N.HELD, parsed=parsed,
                        findings=list(findings))


def ask_which_prisoner(session: Session, settings, letter: Letter, *, note: str, parsed,
                       candidates, conflict: bool) -> list[int]:
    """Several prisoners fit, or the addressing sources disagree: never a guess. The letter
    waits (nothing is paid) and the writer is asked; their answer names one (checking.py)."""
    move(session, letter, S.AWAITING_CHOICE, note=note, code=R.AWAITING_CHOICE)
    return queue_notice(session, settings, letter, N.AMBIGUOUS_RECIPIENT, parsed=parsed,
                        candidates=candidates, conflict=conflict)


def split(session: Session, settings, letter: Letter, prisoner: Prisoner,
          parts: list[tuple[str, str]], route, *, parsed, limit: int
          ) -> tuple[list[int], list[int]]:
    """A long letter goes as several numbered letters, each paid and submitted once, on the
    letter's route; the writer is told. Returns (ids to submit, mail ids)."""
    from gateway.pipeline import splitting  # the parts' making; here only the outcome

    target = S.DESK if route.human_carried else S.READY
    letters = splitting.add_parts(session, letter, parts, route.profile,
                                  settings.reply_ordered, target)
    checked(session, letter, route, code=R.SPLIT,
            note=f"checked; split into {len(parts)} letters to fit {prisoner.facility_name} "
                 f"(this is part 1/{len(parts)})")
    mail = queue_notice(session, settings, letter, N.SPLIT, parsed=parsed, parts=len(parts),
                        limit=limit)
    return ([] if route.human_carried else [p.id for p in letters]), mail


def release_budget_hold(session: Session, letter: Letter, route) -> bool:
    """The monthly budget allows a letter it held: on to its route, due now. True when it
    is to be submitted."""
    return checked(session, letter, route, due_now=True, code=R.BUDGET_RELEASED,
                   note="the monthly budget allows it now")


def release_campaign_budget_hold(session: Session, letter: Letter, route) -> bool:
    """Its campaign's budget (raised by an organizer, or letters that cost less than
    expected) and the monthly one allow a letter the campaign's budget held: on to its
    route, due now. True when it is to be submitted."""
    return checked(session, letter, route, due_now=True, code=R.CAMPAIGN_BUDGET_RELEASED,
                   note="the campaign's budget allows it now")


def send_guidance(session: Session, settings, letter: Letter, parsed, guide,
                  campaign: dict | None = None) -> list[int]:
    """The writer asked how to write (or sent nothing): the guide, at most once a day (the
    notice's per-writer daily key), and the message ends IGNORED with a visible reason.
    Asked within a campaign, the guide starts with the campaign's own guidance and its
    greeting template."""
    queued = queue_notice(session, settings, letter, N.GUIDANCE, parsed=parsed, guide=guide,
                          campaign=campaign)
    move(session, letter, S.IGNORED, code=R.GUIDANCE_ASKED,
         note="guidance sent: the writer asked how to write, not a letter" if queued else
         "guidance asked for, not a letter; no guide sent (one a day, or the writer asked "
         "for no mail)")
    return queued


# -- postcards (gateway/postcards.py) ------------------------------------------------------

def gather(session: Session, settings, letter: Letter, route, *, actor: str = "system",
           facility=None, note: str = "checked") -> list[int]:
    """A checked greeting joins its prisoner's open postcard (opening one if none is open):
    GATHERED, and not paid on its own. When it would not fit in the postcard's pages, that
    postcard closes now and the greeting opens the next. Returns the ids of postcard
    letters closed here, for the caller to submit."""
    from gateway import postcards
    from gateway.providers.catalogue import FacilityLimits

    text = postcards.block(letter.body or "", letter.writer_name)
    limit = postcards.page_limit(settings.postcard_max_pages, route.profile,
                                 facility or FacilityLimits())
    frame = postcards.frame_for(session, letter, settings.org_name)
    room = limit * route.profile.page_chars - frame
    own_price = letter.price
    if own_price is None:  # gathered once already (its postcard was discarded): re-priced
        from gateway.pricing import quote
        own_price = quote(letter.rendered or text, letter.photos or 0, settings.reply_ordered,
                          route.profile).amount
    closed: list[int] = []
    while True:
        postcard = postcards.open_postcard(session, letter, route) or \
            postcards.new_postcard(session, letter, route, settings)
        if postcards.take_place(session, postcard, len(text), own_price, room):
            break
        # Full (or closed meanwhile by someone else, and then this is a no-op): it goes now.
        made = close_postcard(session, settings, postcard.id, actor="system",
                              why="its pages are full")
        closed += [made.id] if made is not None else []
    letter.provider, letter.service = route.adapter, route.service
    letter.postcard_id = postcard.id
    letter.price = None  # paid once, with the postcard; own_letters_rub keeps what it was
    letter.next_attempt_at = None
    move(session, letter, S.GATHERED, actor=actor, code=R.GATHERED,
         note=f"{note}; a short greeting: goes with postcard #{postcard.id} to the same "
              f"prisoner (by {postcard.closes_at:%Y-%m-%d %H:%M} UTC at the latest)")
    return closed


def close_postcard(session: Session, settings, postcard_id: int, *, actor: str,
                   why: str) -> Letter | None:
    """The postcard closes: its gathered greetings, composed into one letter, READY and due
    now, submitted like any letter (its own public id, so its own Idempotency-Key and one
    charge). None when another closer was first, or no greeting is left in it."""
    from gateway import postcards
    from gateway.pipeline.intake import new_public_id
    from gateway.pricing import quote
    from gateway.providers.profiles import load_profiles

    if not postcards.mark_closed(session, postcard_id, actor):
        return None
    postcard = session.get(Postcard, postcard_id, populate_existing=True)
    greetings = postcards.gathered(session, postcard_id)
    if not greetings:
        return None
    prisoner = session.get(Prisoner, postcard.prisoner_id)
    text = postcards.compose(
        prisoner, [postcards.block(g.body or "", g.writer_name) for g in greetings],
        occasion=postcards.occasion(session, postcard.campaign_id, postcard.evening_id),
        org_name=settings.org_name)
    q = quote(text, 0, settings.reply_ordered, load_profiles()[postcard.service])
    letter = Letter(public_id=new_public_id(), inbound_id=None, state=S.READY,
                    prisoner_id=postcard.prisoner_id, provider=postcard.provider,
                    service=postcard.service, writer_name=None,
                    subject=f"postcard #{postcard.id} ({len(greetings)} greetings)",
                    body=text, rendered=text, pages=q.pages, price=q.amount,
                    currency=q.currency, next_attempt_at=utcnow(),
                    campaign_id=postcard.campaign_id, evening_id=postcard.evening_id)
    session.add(letter)
    session.flush()
    # Its own greetings' count and price, not the running sums: a greeting held or
    # discarded after it was gathered is not in the letter.
    postcard.letter_id, postcard.pages, postcard.price_rub = letter.id, q.pages, q.amount
    postcard.greetings = len(greetings)
    session.add(LetterEvent(letter_id=letter.id, from_state=None, to_state=S.READY,
                            actor=actor, reason_code=R.POSTCARD_CLOSED,
                            note=f"postcard #{postcard.id} closed ({why}): {len(greetings)} "
                                 f"greetings, {q.pages} page(s), {q.amount} {q.currency}"))
    return letter


def _greetings(session: Session, letters: Iterable[Letter], states) -> dict[int, list[Letter]]:
    from gateway import postcards
    # A postcard's letter is made by close_postcard, from no message (inbound_id None): a
    # letter taken from the inbox is never one, and a batch of only those needs no query.
    return postcards.greetings_of(
        session, [le.id for le in letters if le.inbound_id is None], states)


def _greetings_sent(session: Session, letter: Letter, greetings: list[Letter]) -> None:
    """The postcard has a number: so has each greeting that went in it."""
    for greeting in greetings:
        greeting.provider_number = letter.provider_number
        greeting.provider_status = letter.provider_status
        greeting.submitted_at = letter.submitted_at
        greeting.next_attempt_at = None  # the postcard's status is polled, not theirs
        move(session, greeting, S.SUBMITTED, note=f"sent with postcard letter #{letter.id}, "
             f"number {letter.provider_number}", code=R.POSTCARD_SENT)


# -- a person's decisions -------------------------------------------------------------------

def approve(session: Session, letter: Letter, route, actor: str, note: str = "",
            settings=None) -> bool:
    """A moderator let a HELD letter go: on to its route. True when it is to be submitted.
    A greeting (with `settings`) joins its prisoner's open postcard, or opens the next one
    when the one it would have joined has gone."""
    said = "approved" + (f": {note}" if note else "")
    from gateway.postcards import marked
    if settings is not None and marked(letter.findings):
        gather(session, settings, letter, route, actor=actor, note=said)
        return False
    return checked(session, letter, route, actor=actor, due_now=True, note=said,
                   code=R.APPROVED)


def defer(session: Session, letter: Letter, actor: str, note: str) -> None:
    # updated_at moves on, so the deferred letter goes to the back of the queue.
    move(session, letter, S.HELD, actor=actor, note=f"deferred: {note}", code=R.DEFERRED)


def discard(session: Session, letter: Letter, actor: str, note: str,
            code: R = R.DISCARDED_BY_PERSON) -> None:
    letter.next_attempt_at = None
    move(session, letter, S.DISCARDED, actor=actor, note=note, code=code)
    # A discarded postcard does not take its greetings with it: each waits for a person
    # (approved, it joins the next postcard).
    for greeting in _greetings(session, [letter], [S.GATHERED]).get(letter.id, []):
        move(session, greeting, S.HELD, actor=actor, code=code,
             note=f"its postcard (letter #{letter.id}) was discarded: {note}")


def retry(session: Session, letter: Letter, actor: str) -> S:
    """FAILED goes back to submission; QUARANTINED back to reading and checking."""
    target = S.READY if letter.state == S.FAILED else S.RECEIVED
    move(session, letter, target, actor=actor, note=f"retry by {actor}", code=R.RETRY_BY_PERSON)
    letter.next_attempt_at = utcnow() if target == S.READY else None
    return target


def not_submitted(session: Session, letter: Letter, actor: str) -> None:
    """A person checked the service: an UNKNOWN letter never arrived there. Submit again."""
    move(session, letter, S.READY, actor=actor, note="not submitted (checked by hand)",
         code=R.CHECKED_NOT_SUBMITTED)
    letter.next_attempt_at = utcnow()


def replay_asked(session: Session, letter: Letter, actor: str) -> None:
    letter.next_attempt_at = utcnow()
    annotate(session, letter, "replay the same key (asked by a person)", actor=actor,
             code=R.REPLAY_ASKED)


# -- submission -----------------------------------------------------------------------------

def start_attempts(session: Session, letters: list[Letter],
                   probe: bool = False) -> list[tuple[Letter, S]]:
    """Claim a batch READY/UNKNOWN -> SUBMITTING by compare-and-set, one UPDATE per state
    the letters were read in (each event names the state really left). Returns the letters
    taken, each with the state it left (where a given-back claim returns)."""
    now = utcnow()
    taken: list[tuple[Letter, S]] = []
    events: list[dict] = []
    for state in (S.READY, S.UNKNOWN):
        got = claim_many(session, letters, state, S.SUBMITTING, updated_at=now,
                         attempts=Letter.attempts + 1)
        for letter in letters:
            if letter.id not in got:
                continue
            for name, value in (("state", S.SUBMITTING), ("updated_at", now),
                                ("attempts", got[letter.id])):
                set_committed_value(letter, name, value)
            events.append(dict(letter_id=letter.id, from_state=state, to_state=S.SUBMITTING,
                               note=f"attempt {letter.attempts}" + (" (probe)" if probe else ""),
                               reason_code=R.ATTEMPT))
            taken.append((letter, state))
    if events:  # one multi-row INSERT: the events are only written, never read back here
        session.execute(insert(LetterEvent), events)
    return taken


def outcomes_together(session: Session):
    """A batch's outcomes: their events written together when the block ends (one INSERT),
    in the same transaction. Nothing inside may read a letter's events back."""
    return events_together(session)


def give_back(session: Session, letter: Letter, was: S, note: str, until: datetime) -> None:
    """The call was never made: the claim is undone and the letter returns where it was."""
    letter.attempts -= 1  # no call: it does not count against max_submit_attempts
    letter.next_attempt_at = until
    move(session, letter, was, note=note, code=R.GIVEN_BACK)


def after_attempt(session: Session, letter: Letter, target: S, note: str, code: R,
                  next_attempt_at: datetime | None) -> None:
    """A call that did not end in a number: back to READY (retry), UNKNOWN (replay the
    key) or FAILED (a person)."""
    letter.next_attempt_at = next_attempt_at
    move(session, letter, target, note=note, code=code)


def interrupted(session: Session, letter: Letter) -> None:
    """A worker died mid-submission: the request may have left. Replaying the same key
    resolves it without a second charge."""
    letter.next_attempt_at = utcnow()
    move(session, letter, S.UNKNOWN, note="submission interrupted; will replay the same key",
         code=R.INTERRUPTED)


def set_aside(session: Session, letter: Letter, target: S, note: str) -> None:
    """A bug in a step (not the letter, not the provider): a person looks."""
    letter.next_attempt_at = None
    move(session, letter, target, note=note, code=R.INTERNAL_ERROR)


def route_to_carrier(session: Session, letter: Letter, adapter: str) -> None:
    """A READY letter found on a human-carried adapter (routed before routing was decided
    at the check, or its service's adapter changed): to the desk or post queue."""
    letter.next_attempt_at = None
    move(session, letter, S.DESK, note=f"waits for a person ({adapter})",
         code=R.TO_POST if adapter == "post" else R.TO_DESK)


def record_submitted(session: Session, settings, letter: Letter, number: str, *,
                     price: Decimal | None = None, currency: str | None = None,
                     pages: int | None = None, how: str, actor: str = "system",
                     status: str = "accepted", polled: bool = True,
                     notify: bool = True) -> list[int]:
    """The service took the letter and gave it a number: by API, typed in at the desk,
    posted in a batch, or resolved by hand. `polled`: an API is asked for its status."""
    letter.provider_number = number
    letter.provider_status = status
    letter.pages = pages or letter.pages
    if price is not None:
        letter.price = price.quantize(Decimal("0.01"))
        letter.currency = currency or letter.currency or "RUB"
    letter.submitted_at = utcnow()
    letter.next_attempt_at = utcnow() + FIRST_STATUS_LOOKUP if polled else None
    letter.leased_by = letter.lease_until = None
    if letter.state == S.SUBMITTED:
        return []
    move(session, letter, S.SUBMITTED, actor=actor, note=f"number {number} ({how})",
         code=R.SUBMITTED)
    if not notify:
        return []  # notify_sent, for the batch: the notices, and a postcard's greetings
    return [i for ids in notify_sent(session, settings, [letter]).values() for i in ids]


def claim_submitted(session: Session, settings, letter_id: int, number: str, *,
                    price: Decimal | None, how: str, actor: str, expected=(S.DESK,),
                    status: str = "accepted") -> tuple[Letter | None, list[int]]:
    """record_submitted for a person's word, by compare-and-set: two volunteers recording
    the same letter at once cannot both win. (None, []) when it was no longer waiting."""
    letter = claim(session, letter_id, list(expected), S.SUBMITTED, actor=actor,
                   note=f"number {number} ({how})", code=R.SUBMITTED)
    if letter is None:
        return None, []
    mail = record_submitted(session, settings, letter, number, price=price, how=how,
                            actor=actor, status=status, polled=False, notify=False)
    return letter, mail + [i for ids in notify_sent(session, settings, [letter]).values()
                           for i in ids]


def notify_sent(session: Session, settings, letters: list[Letter]) -> dict[int, list[int]]:
    """The 'sent' notices of a batch recorded with notify=False, queued together. A
    postcard's greetings go with it here (one query for the batch, whatever its size) and
    each signer gets their own notice."""
    signers: list[Letter] = []
    by_letter = {le.id: le for le in letters}
    for letter_id, greetings in _greetings(session, letters, [S.GATHERED]).items():
        _greetings_sent(session, by_letter[letter_id], greetings)
        signers += greetings
    return queue_notices(session, settings, [*letters, *signers], N.SENT)


def notify_refused(session: Session, settings, letter: Letter, reasons: Sequence) -> list[int]:
    """The service refused the letter (e.g. 422): the writer hears at once, in plain words
    (`providers/refusals.py`); the letter waits in FAILED for a person (retry, return,
    discard), who no longer has to remember to write."""
    mail = queue_notice(session, settings, letter, N.REFUSED, refusals=list(reasons),
                        fixable=any(r.writer_can_fix for r in reasons))
    # A postcard's signers each hear it; their greetings wait with it for the person.
    for greeting in _greetings(session, [letter], [S.GATHERED]).get(letter.id, []):
        annotate(session, greeting, "the service refused its postcard; a person decides",
                 code=R.POSTCARD_REFUSED)
        mail += queue_notice(session, settings, greeting, N.REFUSED, refusals=list(reasons),
                             fixable=False)
    return mail


# -- news from the service ------------------------------------------------------------------

def record_delivered(session: Session, settings, letter: Letter, *, actor: str = "system",
                     by_reply: bool = False) -> list[int]:
    """Delivered: by the service's status, a volunteer's word, or a reply that came back.
    A reply is the news itself, so the writer gets no separate notice after it; that path
    is a compare-and-set, as two copies of a reply may be routed at once."""
    if by_reply:
        if claim(session, letter.id, [S.SUBMITTED], S.DELIVERED, actor=actor,
                 note="delivered: the prisoner's reply came back",
                 code=R.DELIVERED_BY_REPLY) is not None:
            letter.next_attempt_at = None
        return []
    move(session, letter, S.DELIVERED, actor=actor, note="delivered to the prisoner",
         code=R.DELIVERED)
    letter.next_attempt_at = None
    mail = queue_notice(session, settings, letter, N.DELIVERED)
    for greeting in _greetings(session, [letter], [S.SUBMITTED]).get(letter.id, []):
        mail += record_delivered(session, settings, greeting, actor=actor)
    return mail


def record_censored(session: Session, settings, letter: Letter, reason: str | None, *,
                    actor: str = "system") -> list[int]:
    """The censor stopped it: the facility's memory keeps the reason, and the writer hears
    it with what to change next time."""
    move(session, letter, S.CENSORED, actor=actor, note=f"censor: {reason or 'no reason given'}",
         code=R.CENSORED)
    letter.next_attempt_at = None
    greetings = _greetings(session, [letter], [S.SUBMITTED]).get(letter.id, [])
    prisoner = session.get(Prisoner, letter.prisoner_id) if letter.prisoner_id else None
    # Here, not at the top: only a censorship needs the morphology and the lexicons.
    from gateway.pipeline.statuses import recent_censorships
    from gateway.rules.base import PastCensorship
    from gateway.rules.censor_memory import features, tends_to_stop

    facility_id = prisoner.facility_id if prisoner else None
    history = list(recent_censorships(session, facility_id))  # before this one is added
    photo_types = tuple(session.scalars(select(LetterAttachment.content_type).where(
        LetterAttachment.letter_id == letter.id)))
    session.add(CensorDecision(
        letter_id=letter.id, provider=letter.service or letter.provider,
        facility_id=facility_id, facility_name=prisoner.facility_name if prisoner else None,
        reason=reason, features=(about := features(letter.body, photo_types))))
    this = PastCensorship(letter.id, reason, tuple(about["topics"]), len(photo_types))
    stops_ru, stops_en = tends_to_stop([this, *history])
    mail = queue_notice(session, settings, letter, N.CENSORED, reason=reason or "",
                        tends_to_stop_ru=stops_ru, tends_to_stop_en=stops_en)
    # The facility's memory keeps the postcard once; each signer hears it.
    for greeting in greetings:
        move(session, greeting, S.CENSORED, actor=actor, code=R.CENSORED,
             note=f"censor, its postcard letter #{letter.id}: {reason or 'no reason given'}")
        mail += queue_notice(session, settings, greeting, N.CENSORED, reason=reason or "",
                             tends_to_stop_ru=stops_ru, tends_to_stop_en=stops_en)
    return mail


def record_undelivered(session: Session, settings, letter: Letter, reason: str, *, code: R,
                       actor: str = "system") -> list[int]:
    """The service did not accept it after all (NOT_ACCEPTED), or the post brought the
    envelope back (RETURNED_BY_POST): it will not arrive, and the writer is told why."""
    move(session, letter, S.UNDELIVERED, actor=actor, note=f"{code}: {reason}", code=code)
    letter.next_attempt_at = None
    mail = queue_notice(session, settings, letter, N.UNDELIVERED, reason=reason,
                        by_post=code == R.RETURNED_BY_POST)
    for greeting in _greetings(session, [letter], [S.SUBMITTED]).get(letter.id, []):
        mail += record_undelivered(session, settings, greeting, reason, code=code, actor=actor)
    return mail
