"""The daily spend cap: money is never refunded, so a runaway (a loop, a flood of letters,
a price change) stops at a ceiling an organizer chose. Letters over it wait in READY."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from gateway.db import advisory_key
from gateway.models import Letter, utcnow
from gateway.providers.services import human_carried_adapters
from gateway.states import LetterState as S

# Letters whose money is spent or may be: accepted ones, and those in flight or unresolved.
SPENT = (S.SUBMITTED, S.DELIVERED, S.CENSORED, S.UNDELIVERED)
COMMITTED = (S.SUBMITTING, S.UNKNOWN)


def day_start(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def committed_today(session: Session, now: datetime | None = None) -> Decimal:
    """Spent today (UTC) plus what letters in flight may cost, on providers that charge."""
    since = day_start(now)
    total = session.scalar(
        select(func.coalesce(func.sum(Letter.price), 0)).where(
            Letter.price.is_not(None),
            Letter.provider.not_in(human_carried_adapters()),
            or_(Letter.state.in_(COMMITTED),
                Letter.state.in_(SPENT) & (Letter.submitted_at >= since))))
    return Decimal(total or 0)


_CAP_LOCK = advisory_key("daily-spend-cap")


class DailyCap:
    """The cap for one batch of claims: today's committed spend is read once, and each
    letter the batch lets through is added to it (it is SUBMITTING, i.e. committed, by the
    time anyone else looks). While a cap is set, batches claiming at once take turns (a
    transaction lock on PostgreSQL, held until the claim commits): each reads the spend
    after the one before committed its claims, so two batches cannot both fill the last
    roubles. SQLite's claims already go one at a time (BEGIN IMMEDIATE)."""

    def __init__(self, session: Session, cap: Decimal | None, now: datetime | None = None):
        self.cap = cap
        if cap is not None and session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CAP_LOCK})
        self.committed = committed_today(session, now) if cap is not None else Decimal(0)

    def admit(self, letter: Letter) -> bool:
        """False when paying for this letter would pass the cap; else it is counted."""
        if self.cap is None:
            return True
        price = Decimal(letter.price or 0)
        if self.committed + price > self.cap:
            return False
        self.committed += price
        return True


def next_day(now: datetime | None = None) -> datetime:
    return day_start(now) + timedelta(days=1)
