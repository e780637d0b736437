"""Letters join a campaign by its plus-address or its [tag] in the subject; "anyone" inside
a campaign goes to its least-written prisoner, fairly across a batch; a one-person campaign
takes letters that name nobody. Through the real checks on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from gateway import campaigns
from gateway.config import Settings
from gateway.models import Campaign, Evening, Letter, Prisoner
from tests.intake.conftest import GATEWAY, LETTERS, SECRET, mail

pytestmark = pytest.mark.campaigns

WOMEN = [dict(code=f"K3{i:02d}", last_name=last, first_name=first, middle_name=None,
              birth_year=1980 + i, facility_name="ИК-5 Владимир", facility_id="33-ik-5",
              region="Владимирская область")
         for i, (last, first) in enumerate([("Белова", "Анна"), ("Громова", "Ольга"),
                                            ("Лебедева", "Ирина"), ("Соколова", "Дарья"),
                                            ("Титова", "Елена")])]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway_settings(request, tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path}/gateway.db" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    return Settings(database_url=url, secret_key=SECRET, gateway_address=GATEWAY,
                    org_reply_email="replies@gw.example", broker_url="redis://127.0.0.1:1/0")


@pytest.fixture
def gw(gw):
    gw.settings.confirm_senders = False
    gw.settings.sender_daily_limit = 1000
    with gw.sessions() as session:
        session.add_all([Prisoner(**p) for p in WOMEN])
        session.flush()
        march = Campaign(tag="8марта", title="8 марта")
        session.add(march)
        session.flush()
        campaigns.set_prisoners(session, march, [p.id for p in campaigns.choose(
            session, campaigns.Filter(region="владимир"), date.today())])
        session.commit()
    return gw


def to(address: str, subject: str, i: int) -> bytes:
    raw = mail(subject, LETTERS[i % len(LETTERS)] + f"\n\nP.S. {i}",
               sender=f"Writer {i} <w{i}@example.org>")
    return raw.replace(f"To: {GATEWAY}".encode(), f"To: {address}".encode())


def test_anyone_in_a_campaign_goes_to_its_prisoners_evenly(gw):
    plus = campaigns.plus_address(GATEWAY, "8марта")
    ids = gw.receive(*[to(plus, "Любому", i) for i in range(12)])
    ids += gw.receive(*[to(GATEWAY, "[8МАРТА] любому", i) for i in range(12, 15)])
    gw.check(ids)
    with gw.sessions() as session:
        march = session.scalar(select(Campaign))
        rows = session.execute(select(Letter.prisoner_id, Letter.campaign_id)).all()
        women = {p.id for p in march.prisoners}
    assert len(women) == 5
    assert {c for _, c in rows} == {march.id}
    counts = Counter(p for p, _ in rows)
    assert set(counts) == women and set(counts.values()) == {3}, counts


def test_a_named_letter_joins_and_keeps_its_prisoner(gw):
    ids = gw.receive(to(campaigns.plus_address(GATEWAY, "8марта"), "Петровой Марии", 1),
                     to(GATEWAY, "Петровой Марии", 2))
    gw.check(ids)
    with gw.sessions() as session:
        letters = session.scalars(select(Letter).order_by(Letter.id)).all()
        petrova = session.scalar(select(Prisoner.id).where(Prisoner.code == "K102"))
    assert [(x.prisoner_id, x.campaign_id is not None) for x in letters] == \
        [(petrova, True), (petrova, False)]
    assert all(x.state == "READY" for x in letters), [(x.state, x.reason) for x in letters]


def test_an_evening_code_counts_for_the_evening_and_its_campaign(gw):
    with gw.sessions() as session:
        march = session.scalar(select(Campaign))
        evening = Evening(code="ve-abcd", city="Тбилиси", held_on=date.today(),
                          campaign_id=march.id)
        session.add(evening)
        session.commit()
        evening_id, march_id = evening.id, march.id
    ids = gw.receive(to(campaigns.plus_address(GATEWAY, "ve-abcd"), "любому", 3))
    gw.check(ids)
    with gw.sessions() as session:
        letter = session.get(Letter, ids[0])
        women = {p.id for p in session.get(Campaign, march_id).prisoners}
    assert (letter.evening_id, letter.campaign_id) == (evening_id, march_id)
    assert letter.prisoner_id in women


def test_a_birthday_campaign_for_one_takes_letters_naming_nobody(gw):
    with gw.sessions() as session:
        one = session.scalar(select(Prisoner).where(Prisoner.code == "K101"))
        birthday = Campaign(tag="bd-k101", title="День рождения", kind="birthday")
        session.add(birthday)
        session.flush()
        campaigns.set_prisoners(session, birthday, [one.id])
        session.commit()
        one_id = one.id
    ids = gw.receive(to(campaigns.plus_address(GATEWAY, "bd-k101"), "С днём рождения!", 4),
                     to(GATEWAY, "С днём рождения!", 5))
    gw.check(ids)
    with gw.sessions() as session:
        joined, alone = (session.get(Letter, i) for i in ids)
    assert joined.prisoner_id == one_id and joined.state == "READY", joined.reason
    assert alone.prisoner_id is None and alone.state == "REJECTED"


def test_tags_are_read_from_plus_address_and_subject():
    assert campaigns.tags_in("Re: [NY-2027] письмо", ["Letters+8Марта@gw.example",
                                                     "other+x@else.example"],
                             GATEWAY) == ["8марта", "ny-2027"]
    assert campaigns.without_tag("[8марта] Любому", ["letters+8марта@gw.example"],
                                 "8марта") == ("Любому", ())
    assert campaigns.valid_tag("8марта") and not campaigns.valid_tag("a b")
