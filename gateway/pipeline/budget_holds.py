"""Letters held only because the monthly budget, or their campaign's, ran out go on by
themselves, oldest first, once the budget allows them: a new month, a larger budget, or
letters that were expected to cost money and did not (returned, refused).

Strictly first come, first served: the release stops at the first letter that does not
fit, so a long letter is never overtaken for ever by short ones written after it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.models import Campaign, Letter, utcnow
from gateway.providers.services import UnknownService, route
from gateway.states import LetterState as S

HELD_PREFIX = "held for a person: "  # checking.py's note for a hold
# Letters whose money is as good as spent: claimed for submission or about to be.
_COMMITTED = (S.READY, S.SUBMITTING, S.UNKNOWN)
_SCAN = 5000


# Letters whose money is as good as spent, for a campaign's budget: on their way to the
# service, or waiting for a volunteer to type them in and pay.
_IN_FLIGHT = (S.READY, S.SUBMITTING, S.UNKNOWN, S.DESK)


def campaign_committed(session: Session, campaign_ids: list[int]) -> dict[int, Decimal]:
    """Per campaign: paid (submitted, ever) plus in flight, every part of a split letter."""
    counted = Letter.submitted_at.is_not(None) | Letter.state.in_(_IN_FLIGHT)
    return {cid: Decimal(total or 0) for cid, total in session.execute(
        select(Letter.campaign_id, func.coalesce(func.sum(Letter.price), 0))
        .where(Letter.campaign_id.in_(campaign_ids), counted)
        .group_by(Letter.campaign_id)).all()}


def releasable(held: Iterable[tuple[int, Decimal]], budget: Decimal,
               committed: Decimal) -> list[int]:
    """The ids of (id, price) pairs, oldest first, that fit under the budget in turn."""
    return fit_in_turn(((i, p, None) for i, p in held), budget, committed, {}, {})


def fit_in_turn(held: Iterable[tuple[int, Decimal, int | None]], month_budget: Decimal | None,
                month: Decimal, budgets: dict[int, Decimal | None],
                committed: dict[int, Decimal]) -> list[int]:
    """The ids of (id, price, campaign id) triples, oldest first, that fit in turn under
    the month's budget (None: no limit) and their campaign's (`budgets`; missing or None:
    no limit), given what each has committed. A letter that does not fit stops the month's
    queue, or only its campaign's queue when the campaign's budget is what is short."""
    committed = dict(committed)
    month_full, full, released = False, set(), []
    for letter_id, price, cid in held:
        limit = budgets.get(cid) if cid is not None else None
        in_month = month_budget is None or (not month_full and month + price <= month_budget)
        in_campaign = limit is None or (
            cid not in full and committed.get(cid, Decimal(0)) + price <= limit)
        month_full |= not in_month
        if not in_campaign:
            full.add(cid)
        if in_month and in_campaign:
            month += price
            committed[cid] = committed.get(cid, Decimal(0)) + price
            released.append(letter_id)
    return released


def held_for_budget_only(letter: Letter) -> bool:
    """Held by the checks for the budget and nothing else: no other finding holds it, and
    nobody (a moderator deferring it, the daily limit) has added a reason since."""
    holds = [f for f in letter.findings or () if f.get("severity") in ("hold", "return")]
    if not holds or any(f.get("rule") != "budget" for f in holds):
        return False
    return letter.reason == HELD_PREFIX + "; ".join(f["reason_organizer"] for f in holds)


def committed_this_month(session: Session) -> Decimal:
    month_start = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spent = session.scalar(select(func.coalesce(func.sum(Letter.price), 0))
                           .where(Letter.submitted_at >= month_start)) or 0
    going = session.scalar(select(func.coalesce(func.sum(Letter.price), 0))
                           .where(Letter.state.in_(_COMMITTED))) or 0
    return Decimal(spent) + Decimal(going)


def budgets_holding(letter: Letter) -> set[str]:
    """Which budgets the checks held it for: "monthly", "campaign" or both."""
    return {f.get("code") or "monthly" for f in letter.findings or ()
            if f.get("rule") == "budget" and f.get("severity") == "hold"}


def release_budget_holds(session: Session, settings, limit: int = 200) -> list[int]:
    """Send the letters the budgets now allow on their route (READY, due at once, or the
    desk); returns the ids to submit: the caller commits and publishes them.

    Oldest first against the month's budget and, for a letter in a campaign with a budget,
    against that campaign's too: a letter that does not fit stops the month's queue, or
    only its campaign's queue when it is the campaign's budget that is short. A campaign
    whose budget an organizer cleared has none: its letters go (as far as the month
    allows)."""
    monthly_budget = settings.monthly_budget_rub
    # The moderation queue is people-sized: read it and pick the budget's own holds here
    # (the findings are JSON, queried alike on SQLite and PostgreSQL only this way).
    held = [le for le in session.scalars(
        select(Letter).where(Letter.state == S.HELD).order_by(Letter.created_at, Letter.id)
        .limit(_SCAN)) if held_for_budget_only(le)][:limit]
    if monthly_budget is None:  # a monthly hold stays until a budget is set again
        held = [le for le in held if "monthly" not in budgets_holding(le)]
    if not held:
        return []
    campaign_ids = sorted({le.campaign_id for le in held if le.campaign_id is not None})
    budgets = {cid: Decimal(b) if b is not None else None for cid, b in session.execute(
        select(Campaign.id, Campaign.budget_rub).where(Campaign.id.in_(campaign_ids)))}
    ids = set(fit_in_turn(
        ((le.id, Decimal(le.price or 0), le.campaign_id) for le in held),
        Decimal(str(monthly_budget)) if monthly_budget is not None else None,
        committed_this_month(session) if monthly_budget is not None else Decimal(0),
        budgets, campaign_committed(session, campaign_ids)))
    released = []
    for letter in held:
        if letter.id not in ids:
            continue
        try:
            way = route(letter.service or letter.provider, settings)
        except UnknownService:
            continue  # the directory changed under it: a person sees it in moderation
        release = actions.release_campaign_budget_hold \
            if "campaign" in budgets_holding(letter) else actions.release_budget_hold
        if release(session, letter, way):
            released.append(letter.id)
    return released
