"""Read a stored message, find its prisoner, weigh it, render it: one step per letter.

Every outcome is a state with a reason; the writer gets a kind notice where one is due,
and robots get none."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import faults
from gateway.crypto import address_hash, seal
from gateway.formatting import render_letter, writer_first_name
from gateway.intake import writers
from gateway.intake.addressing import Candidate, resolve_recipient
from gateway.lifecycle import claim, move
from gateway.mail.authentication import Authentication, authenticate
from gateway.mail.parse import ParsedLetter, UnparseableMessage, parse_message_bounded
from gateway.models import (
    InboundMessage,
    Letter,
    LetterAttachment,
    LetterEvent,
    Prisoner,
    Sender,
    utcnow,
)
from gateway.notices import notice_answered, queue_notice
from gateway.pricing import quote
from gateway.providers.profiles import load_profiles
from gateway.providers.registry import profile_name_for
from gateway.rules import run_rules
from gateway.rules.base import Decision, LetterDraft, RuleSettings
from gateway.states import LetterState as S

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    ready: list[int] = field(default_factory=list)
    mail: list[int] = field(default_factory=list)  # outbound mail ids to send


def directory(session: Session) -> list[Candidate]:
    since = utcnow().replace(day=1)  # "lately": letters this month
    counts = dict(session.execute(
        select(Letter.prisoner_id, func.count()).where(Letter.created_at >= since,
                                                        Letter.prisoner_id.is_not(None))
        .group_by(Letter.prisoner_id)).all())
    return [
        Candidate(id=p.id, last_name=p.last_name, first_name=p.first_name,
                  middle_name=p.middle_name, birth_year=p.birth_year,
                  facility_name=p.facility_name, code=p.code, can_receive=p.can_receive,
                  letters_recent=counts.get(p.id, 0))
        for p in session.scalars(select(Prisoner).where(Prisoner.status != "retired"))
    ]


def check_letters(session: Session, letter_ids: list[int], settings) -> CheckResult:
    """Check a batch; the caller commits once and then publishes the result.

    Letters a confirmation releases are checked in the same call (appended to the batch)."""
    result = CheckResult()
    candidates: list[Candidate] | None = None
    own = frozenset({settings.gateway_address.lower(), settings.org_reply_email.lower()})
    rule_settings = RuleSettings.from_mapping({
        "disabled": [r for r in settings.rules_disabled.split(",") if r.strip()],
        "monthly_budget": settings.monthly_budget_rub,
    })
    queue = deque(letter_ids)
    while queue:
        letter_id = queue.popleft()
        letter = session.get(Letter, letter_id)
        if letter is None or letter.state != S.RECEIVED:
            continue  # someone else did it, or it moved on: tasks are idempotent
        inbound = session.get(InboundMessage, letter.inbound_id)
        try:
            parsed = parse_message_bounded(inbound.raw, own_addresses=own)
        except UnparseableMessage as exc:
            move(session, letter, S.QUARANTINED, note=f"could not read the message: {exc.reason}")
            continue
        if parsed.automated:
            move(session, letter, S.IGNORED, note=f"automated mail: {parsed.automated}")
            continue
        if not parsed.sender:
            move(session, letter, S.QUARANTINED, note="no single, valid sender address")
            continue
        _take_writer(letter, parsed, settings)
        sender = writers.sender_for(session, letter.sender_hash)
        commands = writers.read_commands(parsed.subject, parsed.text)
        if commands.stop:
            writers.opt_out(session, letter.sender_hash)
            move(session, letter, S.IGNORED, note="the writer asked to stop all mail")
            _release_waiting(session, letter.sender_hash, confirmed=False)
            continue
        if commands.start:
            writers.opt_in(session, letter.sender_hash)
        if commands.pseudonym:
            sender.pseudonym = commands.pseudonym
        if sender.pseudonym:
            letter.writer_name = sender.pseudonym
        answered = notice_answered(session, parsed.in_reply_to, letter.sender_hash)
        if _confirms(sender, parsed, answered, settings):
            writers.confirm(sender)
            released = _release_waiting(session, letter.sender_hash, confirmed=True)
            queue.extend(released)
            if _only_confirmation(parsed, answered, commands.text):
                move(session, letter, S.IGNORED, note="the writer confirmed their address "
                     f"({len(released)} letter(s) released)")
                continue
        if candidates is None:
            candidates = directory(session)
        resolution = resolve_recipient(
            parsed.subject, commands.text, parsed.recipients, candidates,
            answered_prisoner=_prisoner_of(session, answered))
        letter.body = resolution.text
        if resolution.kind == "not_found" and (commands.start or commands.pseudonym) \
                and not resolution.text.strip():
            move(session, letter, S.IGNORED, note="a command from the writer, not a letter")
            continue
        if resolution.kind == "not_found":
            move(session, letter, S.REJECTED, note="recipient not found in the directory")
            result.mail += queue_notice(session, settings, letter, "unknown_recipient",
                                        parsed=parsed)
            continue
        if resolution.kind == "ambiguous":
            move(session, letter, S.REJECTED, note="several prisoners match the name")
            result.mail += queue_notice(session, settings, letter, "ambiguous_recipient",
                                        parsed=parsed, candidates=resolution.candidates)
            continue
        prisoner_id = resolution.prisoner_id
        if resolution.kind == "anyone" and letter.prisoner_id is not None:
            prisoner_id = letter.prisoner_id  # chosen before the writer confirmed: keep it
        if prisoner_id is None:  # "to anyone", and nobody can receive now
            move(session, letter, S.HELD, note="written to anyone, but no prisoner can receive "
                 "letters now; an organizer chooses")
            continue
        prisoner = session.get(Prisoner, prisoner_id)
        letter.prisoner_id = prisoner.id
        letter.provider = prisoner.provider
        if _must_confirm(session, letter, sender, parsed, settings):
            if writers.is_suppressed(session, letter.sender_hash):
                move(session, letter, S.HELD, note="the writer has not confirmed their address "
                     "and has asked for no mail, so cannot be asked to; a person decides")
                continue
            move(session, letter, S.AWAITING_SENDER, note=_confirm_note(parsed, sender, settings))
            token = writers.new_token()
            queued = queue_notice(session, settings, letter, "confirm", parsed=parsed,
                                  token_shown=writers.show_token(token))
            if queued:  # else today's notice already carries a token that still works
                writers.set_token(sender, settings.secret_key.get_secret_value(), token,
                                  settings.confirm_token_days)
            result.mail += queued
            continue
        for att in parsed.attachments:
            session.add(LetterAttachment(letter_id=letter.id, filename=att.filename,
                                         content_type=att.content_type, data=att.data))
        letter.photos = len(parsed.attachments)
        # Render first: pages and price are weighed on exactly what the provider will print.
        render(letter, prisoner, settings)
        decision = weigh(session, letter, prisoner, parsed, rule_settings, settings)
        letter.findings = [f.to_dict() for f in decision.findings]
        if decision.outcome == "return":
            move(session, letter, S.REJECTED, note="returned to the writer: " +
                 "; ".join(f.reason_organizer for f in decision.findings if f.severity == "return"))
            result.mail += queue_notice(session, settings, letter, "returned", parsed=parsed,
                                        findings=decision.findings)
            continue
        reasons = [f for f in decision.findings if f.severity == "hold"]
        today = writers.count_letter(session, sender)
        if today > settings.sender_daily_limit:
            reasons.append(_over_limit(settings.sender_daily_limit))
        if decision.outcome == "hold" or reasons:
            move(session, letter, S.HELD, note="held for a person: " +
                 "; ".join(f.reason_organizer for f in reasons))
            result.mail += queue_notice(session, settings, letter, "held", parsed=parsed,
                                        findings=reasons)
            continue
        move(session, letter, S.READY, note="checked and rendered")
        result.ready.append(letter.id)
        # No 'received' notice now: the sweeper queues one only if the letter is still not
        # sent after received_notice_after_s (notices.queue_late_received).
    faults.point("check.before_commit")
    return result


@dataclass(frozen=True)
class _Reason:
    """A hold reason of the gateway's own, shaped like a rule's Finding for the templates."""
    rule: str
    reason_ru: str
    reason_en: str
    reason_organizer: str
    severity: str = "hold"
    passages: tuple[str, ...] = ()


def _over_limit(limit: int) -> _Reason:
    return _Reason(
        "daily_limit",
        f"сегодня от вас пришло больше {limit} писем — это наш дневной предел на одного "
        "человека; лишние письма не теряются, их отправит организатор",
        f"more than {limit} letters came from you today, our daily limit per writer; the "
        "extra letters are not lost, an organizer will send them",
        f"over the writer's daily limit of {limit} letters")


def _prisoner_of(session: Session, notice) -> int | None:
    if notice is None or notice.letter_id is None:
        return None
    return session.scalar(select(Letter.prisoner_id).where(Letter.id == notice.letter_id))


def _confirms(sender: Sender, parsed: ParsedLetter, answered, settings) -> bool:
    """This message answers our confirm notice, or carries the writer's pending token."""
    if answered is not None and answered.kind == "confirm":
        return True
    return writers.token_matches(sender, settings.secret_key.get_secret_value(),
                                 writers.tokens_in(parsed.subject, parsed.text), utcnow())


def _only_confirmation(parsed: ParsedLetter, answered, text: str) -> bool:
    """An answer to the confirm notice, or a short message with the token, is not a letter."""
    if answered is not None and answered.kind == "confirm":
        return True
    return bool(writers.tokens_in(parsed.subject)) or len(text.strip()) < 200


def _must_confirm(session: Session, letter: Letter, sender: Sender, parsed: ParsedLetter,
                  settings) -> bool:
    if not settings.confirm_senders:
        return False
    if _confirmed_before(session, letter.id):
        return False  # released by the writer's confirmation: never ask twice for one letter
    if sender.verified_at is None:
        return True
    auth = _authentication(parsed, settings)
    return auth.verdict == "fail"


def _authentication(parsed: ParsedLetter, settings) -> Authentication:
    return authenticate(parsed.auth_results, own_authserv_id=settings.own_authserv_id,
                        from_domain=(parsed.sender or "").rpartition("@")[2] or None)


def _confirm_note(parsed: ParsedLetter, sender: Sender, settings) -> str:
    if sender.verified_at is None:
        return "waiting for the writer to confirm their address (first letter)"
    return ("waiting for the writer to confirm this letter: their domain did not vouch for "
            f"it ({_authentication(parsed, settings).detail})")


def _confirmed_before(session: Session, letter_id: int) -> bool:
    return session.scalar(select(LetterEvent.id).where(
        LetterEvent.letter_id == letter_id, LetterEvent.from_state == S.AWAITING_SENDER,
        LetterEvent.to_state == S.RECEIVED).limit(1)) is not None


def _release_waiting(session: Session, sender_hash: str, *, confirmed: bool) -> list[int]:
    """The writer's letters waiting for confirmation go back to the checks (confirmed) or
    to a person (the writer opted out, so they can never confirm)."""
    released: list[int] = []
    for waiting in session.scalars(select(Letter).where(
            Letter.sender_hash == sender_hash, Letter.state == S.AWAITING_SENDER)
            .order_by(Letter.id)):
        if confirmed:
            move(session, waiting, S.RECEIVED, note="the writer confirmed their address")
        else:
            move(session, waiting, S.HELD, note="the writer asked for no mail before confirming "
                 "their address; a person decides")
        released.append(waiting.id)
    return released


def _take_writer(letter: Letter, parsed: ParsedLetter, settings) -> None:
    secret = settings.secret_key.get_secret_value()
    letter.sender_sealed = seal(secret, parsed.sender)
    letter.sender_hash = address_hash(secret, parsed.sender)
    letter.writer_name = writer_first_name(parsed.sender_name)
    letter.subject = parsed.subject[:500]


def weigh(session: Session, letter: Letter, prisoner: Prisoner, parsed: ParsedLetter,
          rule_settings: RuleSettings, settings) -> Decision:
    previous = tuple(session.scalars(
        select(Letter.body).where(Letter.prisoner_id == prisoner.id,
                                  Letter.sender_hash == letter.sender_hash,
                                  Letter.id != letter.id,
                                  Letter.state.not_in([S.REJECTED, S.DISCARDED, S.IGNORED]))
        .order_by(Letter.id.desc()).limit(20)))
    spent = Decimal(0)
    if rule_settings.monthly_budget is not None:  # a sum over the month: only when it matters
        month_start = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        spent = session.scalar(select(func.coalesce(func.sum(Letter.price), 0)).where(
            Letter.submitted_at >= month_start)) or Decimal(0)
    draft = LetterDraft(
        text=letter.body or "",
        photos=tuple((a.content_type, len(a.data)) for a in parsed.attachments),
        sender=parsed.sender,
        prisoner_status=prisoner.status, prisoner_can_receive=prisoner.can_receive,
        profile=profile_name_for(prisoner.provider), previous_texts=tuple(t for t in previous if t),
        month_spent=Decimal(spent),
        rendered_text=letter.rendered, reply_ordered=settings.reply_ordered,
    )
    return run_rules(draft, rule_settings)


def render(letter: Letter, prisoner: Prisoner, settings) -> None:
    letter.rendered = render_letter(prisoner.provider, prisoner=prisoner,
                                    writer_name=letter.writer_name or "Друг",
                                    body=letter.body or "")
    profile = load_profiles().get(profile_name_for(prisoner.provider)) or load_profiles()["http"]
    q = quote(letter.rendered, letter.photos, settings.reply_ordered, profile)
    letter.pages, letter.price, letter.currency = q.pages, q.amount, q.currency


def reclaim(session: Session, letter_id: int) -> Letter | None:
    """Re-drive a quarantined letter from the start (an organizer's action)."""
    return claim(session, letter_id, [S.QUARANTINED], S.RECEIVED, actor="organizer")
