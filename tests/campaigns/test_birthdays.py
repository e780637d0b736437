"""Birthday campaigns make themselves on the right day, once, only for people in custody;
29 February counts on 1 March in a common year."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from gateway import birthdays
from gateway.models import Campaign, Prisoner

pytestmark = pytest.mark.campaigns

TODAY = date(2027, 2, 20)


def person(code: str, born: date, **kw) -> Prisoner:
    return Prisoner(code=code, last_name="Орлова", first_name="Вера", birth_date=born,
                    facility_name="ИК-5", facility_id="F5", **kw)


def test_made_days_ahead_once_and_only_in_custody(gw):
    with gw.sessions() as session:
        session.add_all([person("B1", date(1990, 3, 6)),  # in 14 days
                         person("B2", date(1991, 3, 7)),  # in 15: not yet
                         person("B3", date(1992, 2, 29)),  # 1 March 2027: in 9 days
                         person("B4", date(1993, 2, 25), status="released", can_receive=False)])
        session.commit()
        made = birthdays.run_daily(session, 14, today=TODAY)
        session.commit()
        assert sorted(m.tag for m in made) == ["bd-b1-2027", "bd-b3-2027"]
        assert {m.tag: m.on for m in made}["bd-b3-2027"] == date(2027, 3, 1)
        assert birthdays.run_daily(session, 14, today=TODAY) == []  # once a day
        later = birthdays.run_daily(session, 14, today=date(2027, 2, 21))
        assert [m.tag for m in later] == ["bd-b2-2027"]  # the next day, B2's turn
        session.commit()
        b1 = session.scalar(select(Campaign).where(Campaign.tag == "bd-b1-2027"))
        assert b1.kind == "birthday" and [p.code for p in b1.prisoners] == ["B1"]
        assert b1.ends_on == date(2027, 3, 6)
