"""Budget holds go on by themselves, oldest first, once the monthly budget allows them;
holds with any other reason stay for a person."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from gateway.models import Letter, Prisoner, utcnow
from gateway.pipeline.budget_holds import releasable, release_budget_holds
from gateway.states import LetterState as S
from tests.intake.conftest import LETTERS, mail

pytestmark = [pytest.mark.intake, pytest.mark.rules]


def test_release_is_first_come_first_served():
    held = [(1, Decimal(110)), (2, Decimal(300)), (3, Decimal(55))]
    assert releasable(held, Decimal(450), Decimal(0)) == [1, 2]
    # The long letter does not fit: the short one after it waits its turn too.
    assert releasable(held, Decimal(400), Decimal(0)) == [1]
    assert releasable(held, Decimal(500), Decimal(500)) == []


def _spend(gw, amount: str) -> None:
    """A letter already submitted this month, at this price."""
    [letter_id] = gw.receive(mail("Иванову Ивану", LETTERS[-1], sender="x <x@example.org>"))
    with gw.sessions() as session:
        letter = session.get(Letter, letter_id)
        letter.state, letter.price, letter.submitted_at = S.SUBMITTED, Decimal(amount), utcnow()
        letter.prisoner_id = session.scalar(select(Prisoner.id).where(Prisoner.code == "K101"))
        session.commit()


def test_budget_holds_go_on_oldest_first_when_the_budget_allows(gw):
    gw.settings.confirm_senders = False
    gw.settings.monthly_budget_rub = 1000.0
    _spend(gw, "990.00")
    ids = [gw.send(mail("Петровой Марии", LETTERS[i], sender=f"w{i} <w{i}@example.org>"))[0]
           for i in range(3)]
    letters = [gw.letter(i) for i in ids]
    assert [le.state for le in letters] == [S.HELD] * 3
    assert all({f["rule"] for f in le.findings if f["severity"] == "hold"} == {"budget"}
               for le in letters)
    price = letters[0].price
    with gw.sessions() as session:  # one of them a person deferred: theirs to decide now
        from gateway.lifecycle import move
        move(session, session.get(Letter, ids[2]), S.HELD, actor="moderator",
             note="deferred: ask the writer first")
        session.commit()

    with gw.sessions() as session:
        assert release_budget_holds(session, gw.settings) == []
        session.commit()
    # The budget is raised so that exactly one more letter fits.
    with gw.sessions() as session:
        budget = float(Decimal("990.00") + price + Decimal("1"))
        assert release_budget_holds(session, _budget(gw, budget)) == [ids[0]]
        session.commit()
    letter = gw.letter(ids[0])
    assert letter.state == S.READY and letter.next_attempt_at <= utcnow()
    assert "budget allows" in letter.reason
    with gw.sessions() as session:  # the READY one counts as spent: nothing more fits
        assert release_budget_holds(session, _budget(gw, budget)) == []
        assert release_budget_holds(session, _budget(gw, None)) == []  # no budget: nothing to release
        assert release_budget_holds(session, _budget(gw, 100000.0)) == [ids[1]]  # not the deferred one
        session.commit()
    assert [gw.letter(i).state for i in ids] == [S.READY, S.READY, S.HELD]


def _budget(gw, rubles):
    return gw.settings.model_copy(update={"monthly_budget_rub": rubles})
