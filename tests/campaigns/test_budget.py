"""A campaign's budget is enforced before anything is paid: a letter whose price would take
the campaign past it (paid and in flight together) waits, HELD with its own reason code, the
writer is told plainly (Russian first), the campaign page says how many wait, and they go
on by themselves, oldest first, once an organizer raises the budget. Through the real
checks, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from gateway import campaign_progress
from gateway.models import Campaign, Letter, LetterEvent
from gateway.pipeline.budget_holds import fit_in_turn, release_budget_holds
from gateway.states import LetterState as S
from gateway.states import Reason as R

# SQLite and PostgreSQL; `march` (conftest) is the campaign of 8 March for five women.
from tests.campaigns.test_joining import gateway_settings, to  # noqa: F401
from tests.intake.conftest import GATEWAY
from tests.together import run_together

pytestmark = pytest.mark.campaigns

PLUS = "letters+8марта@march.example"


def _budget(march, rubles) -> None:
    with march.sessions() as session:
        session.scalar(select(Campaign)).budget_rub = rubles
        session.commit()


def _release(march) -> None:
    with march.sessions() as session:
        release_budget_holds(session, march.settings)
        session.commit()


def _counts(march):
    with march.sessions() as session:
        return campaign_progress.counts(session, campaign_id=session.scalar(
            select(Campaign.id)))


def _live_page(march) -> str:
    """The campaign page's live part, as the dashboard renders it."""
    import flask

    from gateway.web.app import create_app
    app = create_app(march.settings)
    with march.sessions() as session, app.test_request_context():
        campaign = session.scalar(select(Campaign))
        return flask.render_template(
            "dashboard/_campaign_live.html", campaign=campaign,
            c=campaign_progress.counts(session, campaign_id=campaign.id),
            people=campaign_progress.per_prisoner(session, campaign.id))


def _last_code(march, letter_id: int) -> str:
    with march.sessions() as session:
        return session.scalar(select(LetterEvent.reason_code).where(
            LetterEvent.letter_id == letter_id).order_by(LetterEvent.id.desc()).limit(1))


def test_the_campaign_budget_holds_what_would_pass_it_and_releases_oldest_first(march):
    [first] = march.send(to(PLUS, "Любому", 0))
    price = march.letter(first).price
    assert march.letter(first).state == S.READY and price > 0  # in flight: counts as spent
    _budget(march, 2 * price + Decimal("1"))

    # One batch: the first fits (its price counts for the next), the other two wait.
    ids = march.send(*[to(PLUS, "Любому", i) for i in range(1, 4)])
    # Outside the campaign, the same letter is not held by its budget.
    [plain] = march.send(to(GATEWAY, "Петровой Марии", 9))
    assert [march.letter(i).state for i in ids] == [S.READY, S.HELD, S.HELD]
    assert march.letter(plain).state == S.READY and march.letter(plain).campaign_id is None
    held = [march.letter(i) for i in ids[1:]]
    assert all(_last_code(march, le.id) == R.CAMPAIGN_BUDGET_HOLD for le in held)
    assert all("campaign budget" in le.reason for le in held)
    notices = march.outbox("held")
    assert len(notices) == 2
    text = march.message(notices[0]).get_content()
    assert "на письма этой кампании" in text and "for this campaign's letters" in text
    assert text.index("на письма этой кампании") < text.index("for this campaign's letters")
    assert _counts(march).budget_waiting == 2
    assert "Бюджет исчерпан: ждут 2 письма" in _live_page(march)  # Russian first

    _release(march)  # the budget has not changed: nothing goes
    assert [march.letter(i).state for i in ids[1:]] == [S.HELD, S.HELD]

    _budget(march, 3 * price + Decimal("1"))  # room for exactly one more: the oldest
    _release(march)
    assert [march.letter(i).state for i in ids[1:]] == [S.READY, S.HELD]
    assert _last_code(march, ids[1]) == R.CAMPAIGN_BUDGET_RELEASED
    assert _counts(march).budget_waiting == 1
    assert "Бюджет исчерпан: ждёт 1 письмо" in _live_page(march)

    _budget(march, None)  # no budget any more: the rest goes
    _release(march)
    assert march.letter(ids[2]).state == S.READY and _counts(march).budget_waiting == 0
    assert "Бюджет исчерпан" not in _live_page(march)


def test_submitted_letters_count_and_a_released_letter_is_due_at_once(march):
    """Spend = submitted (whatever state it is in now) + in flight; a released letter is
    due for submission at once."""
    [paid] = march.send(to(PLUS, "Любому", 0))
    with march.sessions() as session:
        letter = session.get(Letter, paid)
        letter.state, letter.submitted_at = S.DELIVERED, letter.created_at
        session.commit()
    price = march.letter(paid).price
    _budget(march, price + price / 2)
    [waits] = march.send(to(PLUS, "Любому", 1))
    assert march.letter(waits).state == S.HELD
    _budget(march, 2 * price)  # exactly fits
    with march.sessions() as session:
        assert release_budget_holds(session, march.settings) == [waits]
        session.commit()
    assert march.letter(waits).state == S.READY


def test_fit_in_turn_keeps_each_queue_first_come_first_served():
    d = Decimal
    held = [(1, d(100), 7), (2, d(100), 8), (3, d(50), 7), (4, d(10), None)]
    # Campaign 7 has room for 120: letter 1 goes, letter 3 (50) does not fit after it;
    # campaign 8 has no budget; the month is unlimited.
    assert fit_in_turn(held, None, d(0), {7: d(120), 8: None}, {}) == [1, 2, 4]
    # A campaign whose first letter does not fit is not overtaken by its next one...
    assert fit_in_turn(held, None, d(0), {7: d(60)}, {}) == [2, 4]
    # ...but other letters go on; the month's queue stops at its first misfit for everyone.
    assert fit_in_turn(held, d(150), d(0), {}, {}) == [1]
    assert fit_in_turn(held, d(300), d(0), {7: d(100)}, {7: d(0)}) == [1, 2, 4]


def test_two_workers_cannot_both_spend_the_campaigns_last_roubles(march, monkeypatch):
    """Two batches of the same campaign checked at once: the second reads the spend after
    the first commits (the campaign row's lock), so together they stay within the budget.
    Both wait at the commit for the other: without the lock both would pass everything."""
    if march.settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: there is no race to lose")
    import threading

    from gateway.pipeline import checking

    [first] = march.send(to(PLUS, "Любому", 0))
    price = march.letter(first).price
    _budget(march, 5 * price + price / 2)  # room for four more
    # Named letters: "anyone" would lock the pool's prisoner rows and serialize anyway.
    batches = [march.receive(*[to(PLUS, "Беловой Анне", 10 * b + i) for i in range(1, 5)])
               for b in (1, 2)]
    barrier = threading.Barrier(2)

    def meet(name: str) -> None:
        if name == "check.before_commit":
            try:
                barrier.wait(timeout=3)  # the blocked one never comes: go on alone
            except threading.BrokenBarrierError:
                pass

    monkeypatch.setattr(checking.faults, "point", meet)
    failed = run_together(march.check, [(ids,) for ids in batches])
    # Both batches end checked, neither rolled back: the letters' foreign keys hold KEY
    # SHARE on the campaign row, and FOR UPDATE on top of that deadlocked the two batches
    # (in most runs on PostgreSQL 15); FOR NO KEY UPDATE queues them.
    assert not failed, failed
    states = [march.letter(i).state for ids in batches for i in ids]
    assert states.count(S.READY) == 4 and states.count(S.HELD) == 4, states
