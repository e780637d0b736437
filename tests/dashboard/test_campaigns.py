"""Campaigns and evenings on the dashboard: made by a filter or by hand, shown with their
address and per-prisoner progress, polled live; an evening's printable card carries its
address and a QR code; viewers cannot create."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from gateway.models import Campaign, CampaignPrisoner, Evening, Prisoner

from .conftest import csrf_token

pytestmark = [pytest.mark.dashboard, pytest.mark.campaigns]


@pytest.fixture
def directory(seed, sessions):
    soon = date.today() + timedelta(days=5)
    with sessions() as session:
        session.add_all([
            Prisoner(code="W1", last_name="Белова", first_name="Анна", region="Владимирская",
                     facility_name="ИК-5", facility_id="F5",
                     birth_date=soon.replace(year=1985)),
            Prisoner(code="W2", last_name="Громова", first_name="Ольга", region="Владимирская",
                     facility_name="ИК-5", facility_id="F5"),
            Prisoner(code="W3", last_name="Лебедева", first_name="Ирина", region="Тверская",
                     facility_name="ИК-1", facility_id="F1", status="released",
                     can_receive=False)])
        session.commit()
    return seed


def codes(sessions, tag: str) -> set[str]:
    with sessions() as session:
        return set(session.scalars(
            select(Prisoner.code).join(CampaignPrisoner,
                                       CampaignPrisoner.prisoner_id == Prisoner.id)
            .join(Campaign, Campaign.id == CampaignPrisoner.campaign_id)
            .where(Campaign.tag == tag)))


def test_a_campaign_made_by_filter_and_watched(as_user, directory, sessions):
    client = as_user("moderator")
    token = csrf_token(client, "/campaigns/new")
    response = client.post("/campaigns/new", data={
        "csrf_token": token, "title": "8 марта", "tag": "8Марта", "region": "владимир",
        "guidance": "Поздравьте с весной.", "budget_rub": "3000"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert codes(sessions, "8марта") == {"W1", "W2"}  # the released one is not chosen
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "letters+8марта@" in page and "Белова Анна" in page and "every 5s" in page
    live = client.get(response.headers["Location"] + "/live")
    assert live.status_code == 200 and 'id="per-prisoner"' in live.get_data(as_text=True)


def test_a_birthday_window_and_by_hand(as_user, directory, sessions):
    client = as_user("moderator")
    token = csrf_token(client, "/campaigns/new")
    client.post("/campaigns/new", data={"csrf_token": token, "title": "Дни рождения",
                                        "tag": "bd", "birthday_within_days": "7"})
    assert codes(sessions, "bd") == {"W1"}
    with sessions() as session:
        w2 = session.scalar(select(Prisoner.id).where(Prisoner.code == "W2"))
    response = client.post("/campaigns/new", data={"csrf_token": token, "title": "Ольге",
                                                   "tag": "olga", "prisoner": [str(w2)]})
    assert response.status_code == 302
    assert codes(sessions, "olga") == {"W2"}
    again = client.post("/campaigns/new", data={"csrf_token": token, "title": "x", "tag": "OLGA",
                                                "prisoner": [str(w2)]})
    assert "already used" in again.get_data(as_text=True)


def test_an_evening_and_its_printable_card(as_user, directory, sessions):
    client = as_user("moderator")
    token = csrf_token(client, "/evenings/new")
    response = client.post("/evenings/new", data={"csrf_token": token, "city": "Тбилиси",
                                                  "place": "Кафе «Книги»",
                                                  "held_on": date.today().isoformat()})
    assert response.status_code == 302, response.get_data(as_text=True)
    with sessions() as session:
        evening = session.scalar(select(Evening))
    page = client.get(f"/evenings/{evening.id}").get_data(as_text=True)
    assert evening.code in page and "every 5s" in page
    card = client.get(f"/evenings/{evening.id}/print").get_data(as_text=True)
    assert f"letters+{evening.code}@" in card and "<svg" in card
    assert card.index("Напишите") < card.index("Write to a political prisoner")


def test_viewers_watch_but_do_not_create(as_user, directory):
    client = as_user("viewer")
    assert client.get("/campaigns").status_code == 200
    assert client.get("/campaigns/new").status_code == 403
    assert client.get("/evenings/new").status_code == 403


def test_the_story_and_the_figures_with_a_safe_export(as_user, directory, sessions):
    from gateway.models import Reply
    sent = [directory.submitted(f"FP-{i}") for i in range(3)]
    directory.letter("HELD")  # not sent: not counted
    with sessions() as session:
        session.add(Reply(source="api", external_id="r1", letter_id=sent[0], state="FORWARDED"))
        session.add(Prisoner(code="X1", last_name="=HYPERLINK(\"http://x\")", first_name="А",
                             facility_name="ИК-1", facility_id="F1"))
        session.commit()
    client = as_user("moderator")
    page = client.get("/story").get_data(as_text=True)
    assert "We keep in touch with 1 prisoner; 1 has answered at least once" in page
    assert "3 letters sent, 1 reply" in page
    body = client.get("/story.csv").get_data(as_text=True)
    iva = next(line for line in body.splitlines() if line.startswith("IVA1"))
    assert iva.split(",")[3:5] == ["3", "1"], iva
    assert "'=HYPERLINK" in body and "\n=HYPERLINK" not in body.replace('"', "")
    assert as_user("viewer").get("/story.csv").status_code == 403


def test_the_campaign_page_says_when_spend_passes_its_budget(as_user, directory, sessions):
    from gateway import campaigns
    from gateway.models import Letter
    sent = directory.submitted("FP-9", price="400.00")
    with sessions() as session:
        campaign = campaigns.create(session, title="Весна", tag="vesna",
                                    prisoner_ids=[directory.prisoner_id],
                                    budget_rub=300, greeting_template="С весной, {имя}!")
        session.get(Letter, sent).campaign_id = campaign.id
        session.commit()
        campaign_id = campaign.id
    page = as_user("viewer").get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert 'id="over-budget"' in page and "Spent ₽400.00 of a ₽300.00 budget" in page
    assert "С весной, {имя}!" in page


def test_the_evening_live_shows_counts_and_each_held_letter_with_its_reason(
        as_user, directory, sessions):
    from gateway.models import Letter
    with sessions() as session:
        evening = Evening(code="ve-test", city="Ереван", held_on=date.today())
        session.add(evening)
        session.commit()
        evening_id = evening.id
    ids = [directory.letter("HELD", reason="held for a person: profanity"),
           directory.submitted("FP-77"), directory.letter("READY"), directory.letter("RECEIVED")]
    directory.letter("HELD", reason="not this evening's")
    with sessions() as session:
        for letter_id in ids:
            session.get(Letter, letter_id).evening_id = evening_id
        session.commit()
    live = as_user("viewer").get(f"/evenings/{evening_id}/live").get_data(as_text=True)

    def tile(label: str) -> str:
        part = live.split(f'data-count="{label}"')[1]
        return part.split('class="n">')[1].split("<")[0]

    assert (tile("Letters in"), tile("Checked"), tile("Sent"), tile("Held")) == \
        ("4", "3", "1", "1")
    assert "profanity" in live and "not this evening" not in live


def test_an_evenings_postcards_are_sent_now_and_their_saving_shown(as_user, directory,
                                                                   sessions, settings):
    from decimal import Decimal

    from gateway import actions
    from gateway.models import Letter, Postcard
    from gateway.providers.services import route
    from gateway.states import LetterState as S

    with sessions() as session:
        evening = Evening(code="ve-post", city="Тбилиси", held_on=date.today())
        session.add(evening)
        session.flush()
        anna = session.scalar(select(Prisoner).where(Prisoner.code == "W1"))
        for i in range(4):
            greeting = Letter(public_id=f"L-pc{i}", state=S.RECEIVED, prisoner_id=anna.id,
                              writer_name=f"Гость{i}", body=f"Держитесь! {i}",
                              price=Decimal("110.00"), evening_id=evening.id)
            session.add(greeting)
            session.flush()
            actions.gather(session, settings, greeting, route("http", settings))
        session.commit()
        evening_id = evening.id
    client = as_user("moderator")
    page = client.get(f"/evenings/{evening_id}").get_data(as_text=True)
    assert "1 postcard is still gathering" in page and "Send open postcards now" in page
    token = csrf_token(client, f"/evenings/{evening_id}")
    response = client.post(f"/evenings/{evening_id}/postcards/close",
                           data={"csrf_token": token})
    assert response.status_code == 302
    with sessions() as session:
        card = session.scalar(select(Postcard))
        assert card.closed_by == "moderator" and session.get(Letter, card.letter_id).state == "READY"
    page = client.get(f"/evenings/{evening_id}").get_data(as_text=True)
    text = " ".join(page.split())
    assert "Greetings: 4; postcards: 1; pages: 1." in text and "₽330.00 saved" in text
    assert "Send open postcards now" not in page
    viewer = as_user("viewer")
    assert viewer.post(f"/evenings/{evening_id}/postcards/close",
                       data={"csrf_token": csrf_token(viewer, f"/evenings/{evening_id}")}
                       ).status_code == 403
