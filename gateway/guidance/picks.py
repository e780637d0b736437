"""Who needs letters now: the few prisoners the guide suggests to a first-time writer.

Read from the directory and the letters table only: prisoners, never writers. Ranking is
pure (rank_picks) so it can be tested without a database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.directory import upcoming_birthdays
from gateway.intake.names import inflect_full_name
from gateway.models import Letter, Prisoner

LATELY_DAYS = 60
BIRTHDAY_DAYS = 21
# Letters that left us (or are on their way): a held or returned letter did not reach anyone.
COUNTED = ("READY", "SUBMITTING", "UNKNOWN", "SUBMITTED", "DESK", "DELIVERED", "CENSORED")


@dataclass(frozen=True)
class Pick:
    prisoner_id: int
    name: str
    subject: str  # the exact subject line that reaches this person
    code: str
    facility: str
    letters_lately: int
    birthday: date | None = None
    interests: str = ""
    reasons: tuple[str, ...] = field(default=())  # "birthday", "few_letters", "campaign"


@dataclass(frozen=True)
class Candidate:
    """What ranking needs about one prisoner who can receive letters."""
    prisoner_id: int
    last_name: str
    first_name: str
    middle_name: str | None
    code: str
    facility: str
    letters_lately: int
    interests: str = ""


# Extension point: current campaigns (issue #14) add sources here. Each returns prisoner
# ids to put first, with the campaign's short name; nothing is registered today.
CampaignSource = Callable[[Session, date], list[tuple[int, str]]]
CAMPAIGN_SOURCES: list[CampaignSource] = []


def rank_picks(candidates: list[Candidate], birthdays: dict[int, date],
               campaigns: dict[int, str], limit: int) -> list[Pick]:
    """Campaigns first, then birthdays soonest first, then the fewest letters lately; each
    person once. Ties go to the surname, so the list is stable from one request to the next."""
    def order(c: Candidate):
        return (c.prisoner_id not in campaigns, birthdays.get(c.prisoner_id, date.max),
                c.letters_lately, c.last_name, c.first_name, c.prisoner_id)

    picks = []
    for c in sorted(candidates, key=order)[:limit]:
        reasons = tuple(r for r, on in (("campaign", c.prisoner_id in campaigns),
                                        ("birthday", c.prisoner_id in birthdays),
                                        ("few_letters", True)) if on)
        picks.append(Pick(
            prisoner_id=c.prisoner_id,
            name=" ".join(p for p in (c.last_name, c.first_name, c.middle_name) if p),
            subject=inflect_full_name(c.last_name, c.first_name, c.middle_name, "datv"),
            code=c.code, facility=c.facility, letters_lately=c.letters_lately,
            birthday=birthdays.get(c.prisoner_id), interests=c.interests, reasons=reasons))
    return picks


def _interests(prisoner: Prisoner) -> str:
    # The directory may not record interests yet (issue #15 item 1): show what exists,
    # free text or a list of tags.
    value = getattr(prisoner, "interests", None)
    if isinstance(value, list | tuple | set):
        value = ", ".join(str(v) for v in value if v)
    return " ".join(str(value).split())[:200] if value else ""


def _wants_letters(prisoner: Prisoner) -> bool:
    # Likewise: someone who asked for no letters now is never suggested, once recorded.
    return getattr(prisoner, "wants_letters", True) is not False


def who_needs_letters(session: Session, today: date, limit: int = 5) -> list[Pick]:
    since = datetime.combine(today - timedelta(days=LATELY_DAYS), time.min, UTC)
    counts = dict(session.execute(
        select(Letter.prisoner_id, func.count()).where(
            Letter.prisoner_id.is_not(None), Letter.state.in_(COUNTED),
            Letter.created_at >= since).group_by(Letter.prisoner_id)).all())
    prisoners = session.scalars(select(Prisoner).where(
        Prisoner.can_receive.is_(True), Prisoner.status == "in_custody")).all()
    candidates = [Candidate(p.id, p.last_name, p.first_name, p.middle_name, p.code,
                            p.facility_name, counts.get(p.id, 0), _interests(p))
                  for p in prisoners if _wants_letters(p)]
    birthdays = {b.prisoner_id: b.on for b in upcoming_birthdays(session, today, BIRTHDAY_DAYS)}
    campaigns: dict[int, str] = {}
    for source in CAMPAIGN_SOURCES:
        for pid, name in source(session, today):
            campaigns.setdefault(pid, name)
    return rank_picks(candidates, birthdays, campaigns, limit)
