"""What may keep a READY or UNKNOWN letter from being claimed for submission.

Five gates, in order: an assisted provider (the letter goes to DESK for a person), a
facility missing from the provider's catalogue (HELD for a person), a letter the facility
cannot take as it is, by the catalogue synced just before (too many pages or photos:
returned to the writer, as the checks would have), a provider paused after a 402 (its
account is empty), and the daily spend cap. A gate that holds a letter
back leaves it where it is, with a reason a person can read and a time to come back. The
inputs that are the same for a whole batch are read once (Gates.load)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.db import one_of
from gateway.models import (
    Cursor,
    Letter,
    LetterAttachment,
    LetterEvent,
    Prisoner,
    ProviderFacility,
    utcnow,
)
from gateway.providers import catalogue, spending
from gateway.providers.base import Provider
from gateway.providers.policy import SubmissionPolicy
from gateway.providers.registry import profile_name_for
from gateway.rules import length, photos
from gateway.rules.base import Finding, LetterDraft, RuleSettings
from gateway.states import LetterState as S
from gateway.states import Reason as R


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


def defer(session: Session, letter: Letter, until: datetime | None, reason: str) -> None:
    """Keep the letter where it is, with a reason a person can read and a time to come back.
    One timeline entry per new reason, so a long hold does not flood the history."""
    letter.next_attempt_at = until
    if letter.reason != reason:
        letter.reason = reason
        session.add(LetterEvent(letter_id=letter.id, from_state=letter.state,
                                to_state=letter.state, note=reason, reason_code=R.GATED))


def paused_reason(provider: str, until: datetime) -> str:
    return f"{provider} is paused until {until:%Y-%m-%d %H:%M} UTC (its account is empty)"


def open_reason(provider: str, until: datetime) -> str:
    return f"{provider} is failing; circuit open until {until:%H:%M:%S} UTC"


@dataclass
class Gates:
    """What the gates weigh that is the same for every letter of a batch, read once."""
    paused_until: datetime | None
    reached: set[str] | None  # the batch's facilities in the catalogue; None: never synced
    cap: spending.DailyCap
    limits: dict[str, catalogue.FacilityLimits] = field(default_factory=dict)
    photos: dict[int, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    mail: dict[int, list[int]] = field(default_factory=dict)  # notices the gates queued

    @classmethod
    def load(cls, session: Session, provider: str, letters: list[Letter],
             policy: SubmissionPolicy) -> Gates:
        reached = None
        limits: dict[str, catalogue.FacilityLimits] = {}
        facilities = {p.facility_id for p in (_prisoner(session, le) for le in letters
                                              if le.state == S.READY) if p is not None}
        if facilities and catalogue.synced_at(session, provider) is not None:
            rows = list(session.scalars(select(ProviderFacility).where(
                ProviderFacility.provider == provider,
                one_of(session, ProviderFacility.facility_id, facilities))))
            reached = {r.facility_id for r in rows}
            limits = {r.facility_id: catalogue.limits_of(r, synced=True) for r in rows}
        cap = spending.DailyCap(session, policy.daily_spend_cap) if any(
            le.state == S.READY for le in letters) else spending.DailyCap(session, None)
        # Every photo's type and size, for the facility's limits and for the submission's
        # memory budget (a round's photos are held until its calls are made).
        with_photos = [le.id for le in letters if le.photos]
        found: dict[int, list[tuple[str, int]]] = {}
        if with_photos:
            for letter_id, content_type, size in session.execute(
                    select(LetterAttachment.letter_id, LetterAttachment.content_type,
                           func.length(LetterAttachment.data))
                    .where(one_of(session, LetterAttachment.letter_id, with_photos))
                    .order_by(LetterAttachment.id)):
                found.setdefault(letter_id, []).append((content_type, size))
        return cls(paused_until(session, provider), reached, cap, limits,
                   {k: tuple(v) for k, v in found.items()})


def _prisoner(session: Session, letter: Letter) -> Prisoner | None:
    # Loaded with the letter (a joined relationship): this is the identity map, not SQL.
    return session.get(Prisoner, letter.prisoner_id) if letter.prisoner_id else None


def gate(session: Session, provider: Provider, letter: Letter, gates: Gates | None,
         settings) -> str | None:
    """Everything that may keep a letter from a claim. Returns the outcome, or None to go on."""
    if provider.assisted:
        if letter.state != S.READY:
            return "skipped"
        actions.route_to_carrier(session, letter, provider.name)
        return "desk"
    prisoner = _prisoner(session, letter)
    if letter.state == S.READY and prisoner is not None and gates.reached is not None and \
            prisoner.facility_id not in gates.reached:
        actions.hold(session, None, letter, code=R.NOT_IN_CATALOGUE, notify=False,
                     note=f"no provider reaches {prisoner.facility_name} "
                          f"({prisoner.facility_id}): it is not in {provider.name}'s catalogue")
        return "held"
    if letter.state == S.READY and prisoner is not None and \
            prisoner.facility_id in gates.limits:
        over = facility_findings(letter, provider.name, gates.limits[prisoner.facility_id],
                                 gates.photos.get(letter.id, ()))
        if over:
            letter.next_attempt_at = None
            letter.findings = [*(letter.findings or []), *(f.to_dict() for f in over)]
            gates.mail[letter.id] = actions.return_to_writer(
                session, settings, letter, code=R.FACILITY_LIMITS, findings=over,
                note="returned to the writer before submission: "
                     + "; ".join(f.reason_organizer for f in over),
                facility_limits=True)
            return "returned"
    if gates.paused_until is not None:
        defer(session, letter, gates.paused_until,
               paused_reason(provider.name, gates.paused_until))
        return "deferred"
    # A replay of an UNKNOWN letter costs nothing more; a READY one counts once let through.
    if letter.state == S.READY and not gates.cap.admit(letter):
        defer(session, letter, spending.next_day(),
               f"daily spend cap reached ({gates.cap.committed} of {gates.cap.cap} RUB "
               "today); waits for tomorrow")
        return "deferred"
    return None


def facility_findings(letter: Letter, provider: str, limits: catalogue.FacilityLimits,
                      photo_info: tuple[tuple[str, int], ...]) -> list[Finding]:
    """What the length and photo rules say of a checked letter against the facility's
    limits: the provider would refuse it (and some services charge before refusing)."""
    draft = LetterDraft(text=letter.body or "", rendered_text=letter.rendered,
                        photos=photo_info, profile=letter.service or profile_name_for(provider),
                        **limits.draft_fields())
    return [f for rule in (length, photos) for f in rule.check(draft, RuleSettings())
            if f.severity == "return"]
