"""What happened in a week, and what is waiting: the digest's figures.

`collect` reads the rows (each query small and over the week only); `summarize` is pure and
turns them into the figures the mail shows. No writer appears here: counts, prisoners and
facilities only."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.directory import Birthday, upcoming_birthdays
from gateway.models import CensorDecision, Letter, LetterEvent, Prisoner, Reply
from gateway.states import LetterState as S

WEEK = timedelta(days=7)
QUIET_DAYS = 30
BIRTHDAY_DAYS = 14
# A letter that left us (or is on its way out) counts as written to the prisoner.
REACHING = (S.READY, S.SUBMITTING, S.UNKNOWN, S.SUBMITTED, S.DESK, S.DELIVERED, S.CENSORED)


@dataclass(frozen=True)
class Raw:
    """The rows the digest is made from."""
    submitted: int
    held_letters: int  # letters that went to HELD during the week
    returned_letters: int  # letters returned to their writer during the week
    censored: list[str]  # the facility of each censorship in the week
    replies: int
    month_spent: Decimal
    monthly_budget: Decimal | None
    birthdays: list[Birthday]
    quiet: list[tuple[str, str]]  # (name, facility) of prisoners without a letter for 30 days
    desk: int  # letters waiting for an organizer to type them into a service
    post: int  # letters waiting to be printed and posted
    held_now: int


@dataclass(frozen=True)
class Figures:
    start: date
    end: date
    sent: int
    held: int
    returned: int
    censored_by_facility: list[tuple[str, int]]
    replies: int
    month_spent: Decimal
    monthly_budget: Decimal | None
    budget_share: int | None  # per cent of the month's budget spent
    birthdays: list[Birthday]
    quiet: list[tuple[str, str]]
    desk_backlog: int
    post_backlog: int
    held_now: int


def summarize(raw: Raw, start: date, end: date) -> Figures:
    censored = sorted(Counter(raw.censored).items(), key=lambda kv: (-kv[1], kv[0]))
    share = None
    if raw.monthly_budget:
        share = int((raw.month_spent * 100 / raw.monthly_budget).to_integral_value(ROUND_HALF_UP))
    return Figures(start, end, raw.submitted, raw.held_letters, raw.returned_letters, censored,
                   raw.replies, raw.month_spent, raw.monthly_budget, share, raw.birthdays,
                   sorted(raw.quiet), raw.desk, raw.post, raw.held_now)


def _letters_moved_to(session: Session, state: S, since: datetime) -> int:
    return session.scalar(select(func.count(func.distinct(LetterEvent.letter_id))).where(
        LetterEvent.to_state == state, LetterEvent.at >= since)) or 0


def collect(session: Session, settings, now: datetime) -> Raw:
    since = now - WEEK
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    recent = select(Letter.prisoner_id).where(
        Letter.prisoner_id.is_not(None), Letter.state.in_(REACHING),
        Letter.created_at >= now - timedelta(days=QUIET_DAYS))
    quiet = [(p.full_name, p.facility_name) for p in session.scalars(select(Prisoner).where(
        Prisoner.status == "in_custody", Prisoner.can_receive.is_(True),
        Prisoner.id.not_in(recent)))]
    waiting = dict(session.execute(select(Letter.provider, func.count())
                                   .where(Letter.state == S.DESK).group_by(Letter.provider)).all())
    budget = settings.monthly_budget_rub
    return Raw(
        submitted=session.scalar(select(func.count()).where(Letter.submitted_at >= since)) or 0,
        held_letters=_letters_moved_to(session, S.HELD, since),
        returned_letters=_letters_moved_to(session, S.REJECTED, since),
        censored=[f or "—" for f in session.scalars(select(CensorDecision.facility_name).where(
            CensorDecision.at >= since))],
        replies=session.scalar(select(func.count()).where(Reply.received_at >= since)) or 0,
        month_spent=Decimal(session.scalar(select(func.coalesce(func.sum(Letter.price), 0))
                                           .where(Letter.submitted_at >= month_start)) or 0),
        monthly_budget=Decimal(str(budget)) if budget is not None else None,
        birthdays=upcoming_birthdays(session, now.date(), BIRTHDAY_DAYS),
        quiet=quiet,
        desk=sum(n for provider, n in waiting.items() if provider != "post"),
        post=waiting.get("post", 0),
        held_now=session.scalar(select(func.count()).where(Letter.state == S.HELD)) or 0)


def week_figures(session: Session, settings, now: datetime) -> Figures:
    return summarize(collect(session, settings, now), (now - WEEK).date(), now.date())
