"""Read a stored message, find its prisoner, weigh it, render it: one step per letter.

Every outcome is a state with a reason; the writer gets a kind notice where one is due,
and robots get none."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import faults
from gateway.crypto import address_hash, seal
from gateway.formatting import render_letter, writer_first_name
from gateway.intake.addressing import Candidate, resolve_recipient
from gateway.lifecycle import claim, move
from gateway.mail.parse import ParsedLetter, UnparseableMessage, parse_message_bounded
from gateway.models import InboundMessage, Letter, LetterAttachment, Prisoner, utcnow
from gateway.notices import queue_notice
from gateway.pricing import quote
from gateway.providers.profiles import load_profiles
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
    """Check a batch; the caller commits once and then publishes the result."""
    result = CheckResult()
    candidates: list[Candidate] | None = None
    own = frozenset({settings.gateway_address.lower(), settings.org_reply_email.lower()})
    rule_settings = RuleSettings.from_mapping({
        "disabled": [r for r in settings.rules_disabled.split(",") if r.strip()],
        "monthly_budget": settings.monthly_budget_rub,
    })
    for letter_id in letter_ids:
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
        if candidates is None:
            candidates = directory(session)
        resolution = resolve_recipient(parsed.subject, parsed.text, parsed.recipients, candidates)
        letter.body = resolution.text
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
        if resolution.prisoner_id is None:  # "to anyone", and nobody can receive now
            move(session, letter, S.HELD, note="written to anyone, but no prisoner can receive "
                 "letters now; an organizer chooses")
            continue
        prisoner = session.get(Prisoner, resolution.prisoner_id)
        letter.prisoner_id = prisoner.id
        letter.provider = prisoner.provider
        for att in parsed.attachments:
            session.add(LetterAttachment(letter_id=letter.id, filename=att.filename,
                                         content_type=att.content_type, data=att.data))
        letter.photos = len(parsed.attachments)
        decision = weigh(session, letter, prisoner, parsed, rule_settings)
        letter.findings = [_finding_dict(f) for f in decision.findings]
        if decision.outcome == "return":
            move(session, letter, S.REJECTED, note="returned to the writer: " +
                 "; ".join(f.reason_organizer for f in decision.findings if f.severity == "return"))
            result.mail += queue_notice(session, settings, letter, "returned", parsed=parsed,
                                        findings=decision.findings)
            continue
        render(letter, prisoner, settings)
        if decision.outcome == "hold":
            move(session, letter, S.HELD, note="held for a person: " +
                 "; ".join(f.reason_organizer for f in decision.findings if f.severity == "hold"))
            result.mail += queue_notice(session, settings, letter, "held", parsed=parsed,
                                        findings=decision.findings)
            continue
        move(session, letter, S.READY, note="checked and rendered")
        result.ready.append(letter.id)
    faults.point("check.before_commit")
    return result


def _take_writer(letter: Letter, parsed: ParsedLetter, settings) -> None:
    secret = settings.secret_key.get_secret_value()
    letter.sender_sealed = seal(secret, parsed.sender)
    letter.sender_hash = address_hash(secret, parsed.sender)
    letter.writer_name = writer_first_name(parsed.sender_name)
    letter.subject = parsed.subject[:500]


def weigh(session: Session, letter: Letter, prisoner: Prisoner, parsed: ParsedLetter,
          rule_settings: RuleSettings) -> Decision:
    previous = tuple(session.scalars(
        select(Letter.body).where(Letter.prisoner_id == prisoner.id,
                                  Letter.sender_hash == letter.sender_hash,
                                  Letter.id != letter.id,
                                  Letter.state.not_in([S.REJECTED, S.DISCARDED, S.IGNORED]))
        .order_by(Letter.id.desc()).limit(20)))
    month_start = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spent = session.scalar(select(func.coalesce(func.sum(Letter.price), 0)).where(
        Letter.submitted_at >= month_start)) or Decimal(0)
    draft = LetterDraft(
        text=letter.body or "",
        photos=tuple((a.content_type, len(a.data)) for a in parsed.attachments),
        sender=parsed.sender,
        prisoner_status=prisoner.status, prisoner_can_receive=prisoner.can_receive,
        profile=prisoner.provider, previous_texts=tuple(t for t in previous if t),
        month_spent=Decimal(spent),
    )
    return run_rules(draft, rule_settings)


def render(letter: Letter, prisoner: Prisoner, settings) -> None:
    letter.rendered = render_letter(prisoner.provider, prisoner=prisoner,
                                    writer_name=letter.writer_name or "Друг",
                                    body=letter.body or "")
    profile = load_profiles().get(prisoner.provider) or load_profiles()["http"]
    q = quote(letter.rendered, letter.photos, settings.reply_ordered, profile)
    letter.pages, letter.price, letter.currency = q.pages, q.amount, q.currency


def _finding_dict(f) -> dict:
    return {"rule": f.rule, "severity": f.severity, "passages": list(f.passages),
            "reason_ru": f.reason_ru, "reason_en": f.reason_en,
            "reason_organizer": f.reason_organizer}


def reclaim(session: Session, letter_id: int) -> Letter | None:
    """Re-drive a quarantined letter from the start (an organizer's action)."""
    return claim(session, letter_id, [S.QUARANTINED], S.RECEIVED, actor="organizer")
