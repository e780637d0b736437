"""What the letters have done, per prisoner and for the whole organization: letters sent,
replies received, the last of each, the campaigns they were in. Groups publish these
figures ("we keep in touch with 80 prisoners; 105 have answered at least once")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from gateway.campaign_progress import SENT
from gateway.models import Campaign, CampaignPrisoner, Letter, Prisoner, Reply


@dataclass(frozen=True)
class Story:
    prisoner_id: int
    code: str
    name: str
    status: str
    letters_sent: int
    replies: int
    last_sent: datetime | None
    last_reply: datetime | None
    campaigns: tuple[str, ...]


@dataclass(frozen=True)
class Figures:
    in_touch: int  # prisoners with at least one letter sent
    answered: int  # prisoners who answered at least once
    letters_sent: int
    replies: int


def stories(session: Session, prisoner_ids: list[int] | None = None) -> list[Story]:
    """A few grouped queries, whatever the size of the directory."""
    sent = {pid: (n, last) for pid, n, last in session.execute(
        select(Letter.prisoner_id, func.count(), func.max(Letter.submitted_at))
        .where(Letter.state.in_(SENT), Letter.part_of_id.is_(None))
        .group_by(Letter.prisoner_id))}
    replied = {pid: (n, last) for pid, n, last in session.execute(
        select(Letter.prisoner_id, func.count(distinct(Reply.id)), func.max(Reply.received_at))
        .join(Reply, Reply.letter_id == Letter.id).group_by(Letter.prisoner_id))}
    in_campaigns: dict[int, list[str]] = {}
    for pid, title in session.execute(
            select(CampaignPrisoner.prisoner_id, Campaign.title)
            .join(Campaign, Campaign.id == CampaignPrisoner.campaign_id)
            .order_by(Campaign.created_at)):
        in_campaigns.setdefault(pid, []).append(title)
    query = select(Prisoner).order_by(Prisoner.last_name, Prisoner.id)
    if prisoner_ids is not None:
        query = query.where(Prisoner.id.in_(prisoner_ids))
    return [Story(p.id, p.code, p.full_name, p.status, sent.get(p.id, (0, None))[0],
                  replied.get(p.id, (0, None))[0], sent.get(p.id, (0, None))[1],
                  replied.get(p.id, (0, None))[1], tuple(in_campaigns.get(p.id, ())))
            for p in session.scalars(query)]


def figures(session: Session) -> Figures:
    in_touch, letters_sent = session.execute(
        select(func.count(distinct(Letter.prisoner_id)), func.count())
        .where(Letter.state.in_(SENT), Letter.part_of_id.is_(None))).one()
    answered, replies = session.execute(
        select(func.count(distinct(Letter.prisoner_id)), func.count(distinct(Reply.id)))
        .join(Letter, Letter.id == Reply.letter_id)).one()
    return Figures(in_touch, answered, letters_sent, replies)
