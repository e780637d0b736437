"""How a campaign or a letter evening is going: per prisoner (letters, replies, spend) and
the live counts an organizer walking the room needs (in, checked, sent, held and why).
Grouped queries only: a campaign of hundreds of letters is a few rows of SQL."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import CampaignPrisoner, Letter, Postcard, Prisoner, Reply
from gateway.pipeline.budget_holds import budgets_holding, held_for_budget_only
from gateway.states import LetterState as S

SENT = (S.SUBMITTED, S.DELIVERED, S.CENSORED)
NOT_YET_CHECKED = (S.RECEIVED,)
WAITING_FOR_WRITER = (S.AWAITING_SENDER, S.AWAITING_CHOICE)


@dataclass(frozen=True)
class PrisonerProgress:
    prisoner_id: int
    code: str
    name: str
    letters: int
    sent: int
    replies: int
    spend_rub: Decimal


@dataclass(frozen=True)
class HeldLetter:
    letter_id: int
    writer_name: str | None
    reason: str | None


@dataclass(frozen=True)
class Counts:
    received: int  # letters in
    checked: int  # read and decided (anything past RECEIVED)
    sent: int
    held: int
    returned: int
    waiting_for_writer: int
    spend_rub: Decimal
    held_letters: tuple[HeldLetter, ...]
    budget_waiting: int = 0  # held only because the campaign's budget is reached


def _scope(campaign_id: int | None, evening_id: int | None):
    # Only letters a writer sent (first parts): a split letter counts once.
    # A postcard's own letter is not one more letter in: its greetings are (and are counted).
    clause = [Letter.part_of_id.is_(None),
              Letter.id.not_in(select(Postcard.letter_id).where(Postcard.letter_id.is_not(None)))]
    if evening_id is not None:
        clause.append(Letter.evening_id == evening_id)
    else:
        clause.append(Letter.campaign_id == campaign_id)
    return clause


def counts(session: Session, *, campaign_id: int | None = None,
           evening_id: int | None = None) -> Counts:
    scope = _scope(campaign_id, evening_id)
    by_state = dict(session.execute(select(Letter.state, func.count()).where(*scope)
                                    .group_by(Letter.state)).all())
    # Spend over every part: each part is paid for.
    spend_scope = [Letter.evening_id == evening_id] if evening_id is not None \
        else [Letter.campaign_id == campaign_id]
    spent = session.scalar(select(func.coalesce(func.sum(Letter.price), 0))
                           .where(*spend_scope, Letter.submitted_at.is_not(None)))
    held = session.execute(select(Letter.id, Letter.writer_name, Letter.reason)
                           .where(*scope, Letter.state == S.HELD).order_by(Letter.id)
                           .limit(100)).all()
    waiting = 0
    if evening_id is None and by_state.get(S.HELD):
        # Every part of a split letter is paid, so every held letter of it waits here.
        waiting = sum(1 for le in session.scalars(
            select(Letter).where(Letter.campaign_id == campaign_id, Letter.state == S.HELD))
            if held_for_budget_only(le) and "campaign" in budgets_holding(le))
    total = sum(by_state.values())
    return Counts(
        received=total,
        checked=total - sum(by_state.get(s, 0) for s in NOT_YET_CHECKED),
        sent=sum(by_state.get(s, 0) for s in SENT),
        held=by_state.get(S.HELD, 0),
        returned=by_state.get(S.REJECTED, 0),
        waiting_for_writer=sum(by_state.get(s, 0) for s in WAITING_FOR_WRITER),
        spend_rub=Decimal(spent or 0),
        held_letters=tuple(HeldLetter(*row) for row in held),
        budget_waiting=waiting,
    )


def per_prisoner(session: Session, campaign_id: int) -> list[PrisonerProgress]:
    """Every prisoner of the campaign (also those nobody has written to yet), and any other
    prisoner its letters named."""
    scope = _scope(campaign_id, None)
    letters = {pid: (n, sent) for pid, n, sent in session.execute(
        select(Letter.prisoner_id, func.count(),
               func.count().filter(Letter.state.in_(SENT)))
        .where(*scope, Letter.prisoner_id.is_not(None)).group_by(Letter.prisoner_id))}
    spend = dict(session.execute(
        select(Letter.prisoner_id, func.coalesce(func.sum(Letter.price), 0))
        .where(Letter.campaign_id == campaign_id, Letter.submitted_at.is_not(None))
        .group_by(Letter.prisoner_id)).all())
    replies = dict(session.execute(
        select(Letter.prisoner_id, func.count(Reply.id.distinct()))
        .join(Reply, Reply.letter_id == Letter.id)
        .where(Letter.campaign_id == campaign_id).group_by(Letter.prisoner_id)).all())
    chosen = set(session.scalars(select(CampaignPrisoner.prisoner_id)
                                 .where(CampaignPrisoner.campaign_id == campaign_id)))
    ids = chosen | set(letters)
    people = session.scalars(select(Prisoner).where(Prisoner.id.in_(ids))
                             .order_by(Prisoner.last_name, Prisoner.id))
    return [PrisonerProgress(p.id, p.code, p.full_name, letters.get(p.id, (0, 0))[0],
                             letters.get(p.id, (0, 0))[1], replies.get(p.id, 0),
                             Decimal(spend.get(p.id, 0) or 0))
            for p in people]
