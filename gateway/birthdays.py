"""Birthday campaigns: each prisoner with a known birth date gets a one-person campaign
`birthday_campaign_days` before the day, so writers can send a card in time (a letter to
its address needs no addressee: it is for that one person). Beat asks often and it runs once a
day; it is idempotent (one campaign per prisoner and year, by its tag), and a birthday
within the window that has none yet gets one, so a missed day catches up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import campaigns
from gateway.directory import _birthday_in
from gateway.models import Campaign, Cursor, Prisoner


@dataclass(frozen=True)
class Made:
    tag: str
    prisoner_id: int
    on: date


def tag_for(prisoner: Prisoner, on: date) -> str:
    code = re.sub(r"[^0-9a-zа-яё_-]", "", (prisoner.code or "").lower())
    return f"bd-{code or prisoner.id}-{on.year}"[:40]


def coming(prisoner: Prisoner, today: date) -> date | None:
    if prisoner.birth_date is None:
        return None
    on = _birthday_in(prisoner.birth_date, today.year)
    return on if on >= today else _birthday_in(prisoner.birth_date, today.year + 1)


def make_campaigns(session: Session, today: date, days_ahead: int) -> list[Made]:
    """Campaigns for every birthday within `days_ahead` days that has none yet (the caller
    commits). Only people in custody who can receive letters."""
    made = []
    people = session.scalars(select(Prisoner).where(Prisoner.birth_date.is_not(None),
                                                    Prisoner.status == "in_custody",
                                                    Prisoner.can_receive.is_(True)))
    for prisoner in people:
        on = coming(prisoner, today)
        if on is None or (on - today).days > days_ahead:
            continue
        tag = tag_for(prisoner, on)
        if session.scalar(select(Campaign.id).where(Campaign.tag == tag)) is not None:
            continue
        campaigns.create(
            session, title=f"День рождения: {prisoner.first_name} {prisoner.last_name} "
                           f"({on:%d.%m})",
            tag=tag, kind="birthday", prisoner_ids=[prisoner.id], starts_on=today,
            ends_on=on, guidance="Поздравьте с днём рождения: тёплые слова, открытка, пожелания.")
        made.append(Made(tag, prisoner.id, on))
    return made


DONE_CURSOR = "birthdays:made_on"


def run_daily(session: Session, days_ahead: int, today: date | None = None) -> list[Made]:
    """make_campaigns once a day (the caller commits): beat asks often, one row answers."""
    today = today or datetime.now(UTC).date()
    done = session.get(Cursor, DONE_CURSOR, with_for_update=True)
    if done is not None and done.value == today.isoformat():
        return []
    made = make_campaigns(session, today, days_ahead)
    if done is None:
        session.add(Cursor(name=DONE_CURSOR, value=today.isoformat()))
    else:
        done.value = today.isoformat()
    return made


def open_birthday_campaigns(session: Session, today: date) -> list[Campaign]:
    """Birthday campaigns whose day is still to come (what a reminder lists)."""
    return list(session.scalars(select(Campaign).where(
        Campaign.kind == "birthday", Campaign.ends_on >= today,
        Campaign.starts_on <= today).order_by(Campaign.ends_on, Campaign.id)))
