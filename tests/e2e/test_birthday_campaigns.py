"""Beat makes a birthday campaign on the right day: a worker and beat on real servers, a
birthday exactly GATEWAY_BIRTHDAY_CAMPAIGN_DAYS ahead gets its campaign, one a day later
does not yet; a card written to the campaign's address reaches that prisoner."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.stack import WARM, Stack, letter

pytestmark = [pytest.mark.e2e, pytest.mark.campaigns, pytest.mark.timeout(240)]

HEADER = "code,last_name,first_name,middle_name,birth_year,birth_date,region,facility_name,"\
         "facility_id,provider"


def test_beat_makes_the_birthday_campaign_days_ahead(make_stack, tmp_path):
    stack: Stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}",
                              extra_env={"GATEWAY_BIRTHDAY_CAMPAIGN_DAYS": "10"})
    stack.start(processes=())
    today = datetime.now(UTC).date()
    due, later = today + timedelta(days=10), today + timedelta(days=11)
    directory = tmp_path / "bd.csv"
    directory.write_text("\n".join([
        HEADER,
        f"K501,Орлова,Вера,,1990,{due.replace(year=1990).isoformat()},Москва,"
        "СИЗО-1 Москва,77-sizo-1,http",
        f"K502,Зайцев,Глеб,,1988,{later.replace(year=1988).isoformat()},Москва,"
        "СИЗО-1 Москва,77-sizo-1,http"]) + "\n", encoding="utf-8")
    stack.gateway("prisoners", "import", str(directory))
    for name in ("worker", "beat", "watch"):
        stack.start_process(name)
    made = stack.wait("the birthday campaign", lambda: stack.query(
        "SELECT id, tag, kind, ends_on FROM campaigns"), timeout=90)
    assert [(c["tag"], c["kind"]) for c in made] == [(f"bd-k501-{due.year}", "birthday")]
    assert str(made[0]["ends_on"]).startswith(due.isoformat())

    tag = f"bd-k501-{due.year}"
    # By its tag in the subject: the stack's ".local" domain is not a deliverable address,
    # so its plus-addresses are not read (tests/campaigns cover the plus-address).
    stack.send(letter(f"[{tag}] С днём рождения!", WARM))
    card = stack.wait("the card checked", lambda: [
        r for r in stack.query("SELECT l.state, l.campaign_id, p.code FROM letters l "
                               "JOIN prisoners p ON p.id = l.prisoner_id")
        if r["state"] not in ("RECEIVED",)], timeout=90)
    assert card[0]["code"] == "K501" and card[0]["campaign_id"] == made[0]["id"]



def test_a_subscriber_confirms_and_gets_the_reminder_by_smtp(make_stack, tmp_path):
    stack: Stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}")
    stack.start(processes=())
    soon = datetime.now(UTC).date() + timedelta(days=3)
    directory = tmp_path / "bd.csv"
    directory.write_text(HEADER + f"\nK501,Орлова,Вера,,1990,{soon.replace(year=1990)},Москва,"
                         "СИЗО-1 Москва,77-sizo-1,http\n", encoding="utf-8")
    stack.gateway("prisoners", "import", str(directory))
    for name in ("worker", "beat", "watch"):
        stack.start_process(name)
    anna, boris = "anna@example.org", "boris@example.org"
    stack.send(letter("[birthdays] Подписка", "Хочу поздравлять", sender=f"Анна <{anna}>"))
    stack.send(letter("Иванову Ивану", WARM, sender=f"Борис <{boris}>"))  # never asked
    ask = stack.wait("the code", lambda: stack.mail_to(anna))[0].message
    code = re.search(r"\d{4}-\d{4}", ask["Subject"]).group(0)
    stack.send(letter(f"Re: {ask['Subject']}", "Да", sender=f"Анна <{anna}>",
                      In_Reply_To=ask["Message-ID"]))

    def reminder():
        return [m for m in stack.mail_to(anna) if m.message["Subject"].startswith("[bd-k501")]

    sent = stack.wait("the reminder", reminder, timeout=60)[0].message
    text = sent.get_body(("plain",)).get_content()
    assert "у Орловой Веры" in text and "STOP" in text and code not in text
    assert not [m for m in stack.mail_to(boris) if "[bd-" in m.message["Subject"]]
    assert len(reminder()) == 1
