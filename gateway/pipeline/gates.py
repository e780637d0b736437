"""What may keep a READY or UNKNOWN letter from being claimed for submission.

Four gates, in order: an assisted provider (the letter goes to DESK for a person), a
facility missing from the provider's catalogue (HELD for a person), a provider paused
after a 402 (its account is empty), and the daily spend cap. A gate that holds a letter
back leaves it where it is, with a reason a person can read and a time to come back. The
inputs that are the same for a whole batch are read once (Gates.load)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.models import Cursor, Letter, LetterEvent, Prisoner, ProviderFacility, utcnow
from gateway.providers import catalogue, spending
from gateway.providers.base import Provider
from gateway.providers.policy import SubmissionPolicy
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

    @classmethod
    def load(cls, session: Session, provider: str, letters: list[Letter],
             policy: SubmissionPolicy) -> Gates:
        reached = None
        facilities = {p.facility_id for p in (_prisoner(session, le) for le in letters
                                              if le.state == S.READY) if p is not None}
        if facilities and catalogue.synced_at(session, provider) is not None:
            reached = set(session.scalars(select(ProviderFacility.facility_id).where(
                ProviderFacility.provider == provider,
                ProviderFacility.facility_id.in_(facilities))))
        cap = spending.DailyCap(session, policy.daily_spend_cap) if any(
            le.state == S.READY for le in letters) else spending.DailyCap(session, None)
        return cls(paused_until(session, provider), reached, cap)


def _prisoner(session: Session, letter: Letter) -> Prisoner | None:
    # Loaded with the letter (a joined relationship): this is the identity map, not SQL.
    return session.get(Prisoner, letter.prisoner_id) if letter.prisoner_id else None


def gate(session: Session, provider: Provider, letter: Letter, gates: Gates | None) -> str | None:
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
