"""Letters held only because the monthly budget ran out go on by themselves, oldest first,
once the budget allows them: a new month, a larger budget, or letters that were expected
to cost money and did not (returned, refused).

Strictly first come, first served: the release stops at the first letter that does not
fit, so a long letter is never overtaken for ever by short ones written after it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway import actions
from gateway.models import Letter, utcnow
from gateway.providers.services import UnknownService, route
from gateway.states import LetterState as S

HELD_PREFIX = "held for a person: "  # checking.py's note for a hold
# Letters whose money is as good as spent: claimed for submission or about to be.
_COMMITTED = (S.READY, S.SUBMITTING, S.UNKNOWN)
_SCAN = 5000


def releasable(held: Iterable[tuple[int, Decimal]], budget: Decimal,
               committed: Decimal) -> list[int]:
    """The ids of (id, price) pairs, oldest first, that fit under the budget in turn."""
    released = []
    for letter_id, price in held:
        if committed + price > budget:
            break
        committed += price
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


def release_budget_holds(session: Session, settings, limit: int = 200) -> list[int]:
    """Send the letters the budget now allows on their route (READY, due at once, or the
    desk); returns the ids to submit: the caller commits and publishes them."""
    monthly_budget = settings.monthly_budget_rub
    if monthly_budget is None:
        return []
    # The moderation queue is people-sized: read it and pick the budget's own holds here
    # (the findings are JSON, queried alike on SQLite and PostgreSQL only this way).
    held = [le for le in session.scalars(
        select(Letter).where(Letter.state == S.HELD).order_by(Letter.created_at, Letter.id)
        .limit(_SCAN)) if held_for_budget_only(le)][:limit]
    if not held:
        return []
    prices = [(le.id, Decimal(le.price or 0)) for le in held]
    ids = set(releasable(prices, Decimal(str(monthly_budget)), committed_this_month(session)))
    released = []
    for letter in held:
        if letter.id in ids:
            try:
                way = route(letter.service or letter.provider, settings)
            except UnknownService:
                continue  # the directory changed under it: a person sees it in moderation
            if actions.release_budget_hold(session, letter, way):
                released.append(letter.id)
    return released
