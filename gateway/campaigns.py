"""Campaigns and letter evenings: what a letter joins, and whom a campaign is for.

A writer joins with a tag: the plus-address ``letters+<tag>@…`` on the one inbox, or
"[tag]" in the subject. Tags are matched case-insensitively, Latin look-alikes and all
("8марта", "NY2027"). Pure functions here; the checks (pipeline/checking.py) and the
dashboard read and write the rows.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.directory import _birthday_in
from gateway.models import Campaign, CampaignPrisoner, Evening, Letter, Prisoner
from gateway.rules.base import Finding

# Letters, digits, "-" and "_": what fits a mailbox's local part and reads in a subject.
TAG = re.compile(r"^[0-9a-zа-яё][0-9a-zа-яё_-]{1,39}$")
_SUBJECT_TAG = re.compile(r"\[\s*([0-9A-Za-zА-Яа-яЁё_-]{2,40})\s*\]")


def normalize_tag(tag: str) -> str:
    return unicodedata.normalize("NFC", tag).strip().lower()


def valid_tag(tag: str) -> bool:
    return bool(TAG.match(normalize_tag(tag)))


def tags_in(subject: str, recipients: Sequence[str], gateway_address: str) -> list[str]:
    """Every tag the message carries, plus-address first (the stronger sign: it was chosen
    from the organizer's announcement, not typed into a subject)."""
    local = gateway_address.partition("@")[0].lower()
    found = []
    for addr in recipients:
        box, plus, tag = addr.partition("@")[0].partition("+")
        if plus and box.lower() == local and tag:
            found.append(normalize_tag(tag))
    found += [normalize_tag(m) for m in _SUBJECT_TAG.findall(subject or "")]
    return list(dict.fromkeys(found))


def without_tag(subject: str, recipients: Sequence[str], tag: str
                ) -> tuple[str, tuple[str, ...]]:
    """The subject and recipients with the joined tag taken out, so addressing does not
    read the tag as a prisoner's code or name."""
    subject = _SUBJECT_TAG.sub(lambda m: "" if normalize_tag(m.group(1)) == tag
                               else m.group(0), subject or "").strip()
    kept = tuple(a for a in recipients
                 if normalize_tag(a.partition("@")[0].partition("+")[2]) != tag)
    return subject, kept


@dataclass(frozen=True)
class Joined:
    tag: str
    campaign_id: int | None
    evening_id: int | None


def joined(session: Session, tags: Iterable[str]) -> Joined | None:
    """The first tag that names an evening or a campaign: an evening's code also joins its
    campaign."""
    for tag in tags:
        evening = session.scalar(select(Evening).where(Evening.code == tag))
        if evening is not None:
            return Joined(tag, evening.campaign_id, evening.id)
        campaign = session.scalar(select(Campaign.id).where(Campaign.tag == tag))
        if campaign is not None:
            return Joined(tag, campaign, None)
    return None


def outside_dates(starts_on: date | None, ends_on: date | None, today: date) -> str | None:
    """"not_started" or "ended" when a letter comes outside the campaign's dates (both
    inclusive; a missing date leaves that side open), else None."""
    if starts_on is not None and today < starts_on:
        return "not_started"
    if ends_on is not None and today > ends_on:
        return "ended"
    return None


def dates_finding(title: str, when: str) -> Finding:
    """What the writer's received and sent notices say about a letter that named a campaign
    outside its dates. Such a letter is not lost: it goes as an ordinary letter (to the
    campaign's prisoner, if it named nobody and the campaign was for one person) and does not
    count for the campaign, its budget or its progress."""
    ru, en = {"ended": ("уже закончилась", "has ended"),
              "not_started": ("ещё не началась", "has not started yet")}[when]
    return Finding(
        rule="campaign", code=when, severity="info", passages=(),
        reason_ru=f"Кампания «{title}» {ru}, поэтому письмо пойдёт как обычное, вне "
        "кампании. Оно не потеряется и дойдёт так же.",
        reason_en=f"The campaign “{title}” {en}, so your letter goes as an ordinary letter, "
        "outside the campaign. It is not lost and travels the same way.",
        reason_organizer=f"named the campaign “{title}”, which {en}: sent as an ordinary "
        "letter, not counted for the campaign")


def pool_ids(session: Session, campaign_id: int) -> set[int]:
    return set(session.scalars(select(CampaignPrisoner.prisoner_id)
                               .where(CampaignPrisoner.campaign_id == campaign_id)))


# -- whom a campaign is for ----------------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    """All given conditions hold. `gender` applies only when the directory records one."""

    region: str | None = None
    birthday_within_days: int | None = None
    quiet_days: int | None = None  # no letter for at least this many days
    gender: str | None = None  # "f" | "m"

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


def matches(prisoner: Prisoner, rule: Filter, last_letter: datetime | None,
            today: date) -> bool:
    if prisoner.status != "in_custody" or not prisoner.can_receive:
        return False
    if rule.region and rule.region.casefold() not in (prisoner.region or "").casefold():
        return False
    if rule.gender and getattr(prisoner, "gender", None) not in (rule.gender,):
        return False
    if rule.birthday_within_days is not None:
        if prisoner.birth_date is None:
            return False
        on = _birthday_in(prisoner.birth_date, today.year)
        if on < today:
            on = _birthday_in(prisoner.birth_date, today.year + 1)
        if (on - today).days > rule.birthday_within_days:
            return False
    if rule.quiet_days is not None and last_letter is not None \
            and last_letter.date() > today - timedelta(days=rule.quiet_days):
        return False
    return True


def choose(session: Session, rule: Filter, today: date) -> list[Prisoner]:
    last = dict(session.execute(select(Letter.prisoner_id, func.max(Letter.created_at))
                                .where(Letter.prisoner_id.is_not(None))
                                .group_by(Letter.prisoner_id)).all())
    prisoners = session.scalars(select(Prisoner).order_by(Prisoner.last_name, Prisoner.id))
    return [p for p in prisoners if matches(p, rule, last.get(p.id), today)]


def set_prisoners(session: Session, campaign: Campaign, prisoner_ids: Iterable[int]) -> None:
    wanted = set(prisoner_ids)
    have = {row.prisoner_id: row for row in session.scalars(
        select(CampaignPrisoner).where(CampaignPrisoner.campaign_id == campaign.id))}
    for pid in have.keys() - wanted:
        session.delete(have[pid])
    session.add_all(CampaignPrisoner(campaign_id=campaign.id, prisoner_id=pid)
                    for pid in sorted(wanted - have.keys()))


def new_evening_code(session: Session) -> str:
    """Short, easy to type from a printed page: no 0/o or 1/l to confuse."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    while True:
        code = "ve-" + "".join(secrets.choice(alphabet) for _ in range(4))
        if session.scalar(select(Evening.id).where(Evening.code == code)) is None and \
                session.scalar(select(Campaign.id).where(Campaign.tag == code)) is None:
            return code


def plus_address(gateway_address: str, tag: str) -> str:
    local, _, domain = gateway_address.partition("@")
    return f"{local}+{tag}@{domain}"


class CampaignError(ValueError):
    pass


def create(session: Session, *, title: str, tag: str, prisoner_ids: Iterable[int],
           kind: str = "campaign", rule: Filter | None = None, created_by: str = "system",
           **values) -> Campaign:
    """A campaign with its prisoners (the caller commits). Tags are unique across campaigns
    and evenings: a letter must join exactly one."""
    tag = normalize_tag(tag)
    if not valid_tag(tag):
        raise CampaignError(f"not a usable tag: {tag!r} (2-40 letters, digits, - or _)")
    if session.scalar(select(Campaign.id).where(Campaign.tag == tag)) is not None or \
            session.scalar(select(Evening.id).where(Evening.code == tag)) is not None:
        raise CampaignError(f"the tag {tag!r} is already used")
    campaign = Campaign(title=title, tag=tag, kind=kind, created_by=created_by,
                        chosen_by=rule.as_dict() if rule else None, **values)
    session.add(campaign)
    session.flush()
    set_prisoners(session, campaign, prisoner_ids)
    return campaign
