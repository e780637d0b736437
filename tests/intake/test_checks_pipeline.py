"""The checks through the pipeline's check step (store_messages, then check_letters with
the bounded parser), for what the directory and the contacts rule decide: a postal
address is held with its passage, a released prisoner's letter is returned unpaid."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.crypto import address_hash
from gateway.directory import import_rows
from gateway.intake import writers
from gateway.models import Letter, Prisoner
from tests.intake.conftest import SECRET, WARM, mail

pytestmark = [pytest.mark.intake, pytest.mark.rules]


def test_an_address_fixture_is_held_through_the_checks(gw):
    """The corpus letter signed with a home address: held, the passage kept for the
    moderation page, the writer told what it is and why."""
    raw = (Path(__file__).resolve().parents[1] / "fixtures" / "mail" /
           "postal_address_in_signature.eml").read_bytes()
    [letter_id] = gw.receive(raw)
    with gw.sessions() as session:
        writers.confirm(writers.sender_for(session, address_hash(SECRET, "olga.t@example.org")))
        session.commit()
    gw.check([letter_id])
    letter: Letter = gw.letter(letter_id)
    assert letter.state == "HELD"
    [finding] = [f for f in letter.findings if f["code"] == "address"]
    assert finding["passages"] == ["170100, г. Тверь, ул. Некрасова, д. 12, кв. 5"]
    start, end = finding["spans"][0]
    assert letter.body[start:end] == finding["passages"][0]
    [notice] = gw.outbox("held")
    text = " ".join(gw.message(notice).get_body(("plain",)).get_content().split())
    assert "почтовый адрес (170100, г. Тверь, ул. Некрасова, д. 12, кв. 5)" in text
    assert "postal address" in text


ROW = dict(code="K102", last_name="Петрова", first_name="Мария", middle_name="Сергеевна",
           birth_year="1990", region="", facility_name="СИЗО-2 Москва",
           facility_id="77-sizo-2", provider="http")


def _status(gw) -> str:
    with gw.sessions() as session:
        return session.scalar(select(Prisoner.status).where(Prisoner.code == "K102"))


def test_import_sets_keeps_and_refuses_statuses(gw):
    with gw.sessions() as session:
        report = import_rows(session, [{**ROW, "status": "освобождена"}])
        session.commit()
    assert (report.updated, report.errors) == (1, ())
    assert _status(gw) == "released"
    with gw.sessions() as session:  # an empty cell, or no column at all: unchanged
        assert import_rows(session, [{**ROW, "status": ""}, dict(ROW)]).unchanged == 2
        session.commit()
    assert _status(gw) == "released"
    with gw.sessions() as session:
        report = import_rows(session, [{**ROW, "status": "в отпуске"}])
        session.commit()
    assert report.errors and "line 2" in report.errors[0] and _status(gw) == "released"


@pytest.mark.parametrize(("wording", "state", "code", "kind"), [
    ("освобождена", "REJECTED", "released", "returned"),
    ("этап", "HELD", "moved", "held"),
    ("умерла", "HELD", "status_unknown", "held"),
])
def test_a_letter_to_a_prisoner_the_list_marks_is_not_paid_for(gw, wording, state, code,
                                                                kind):
    with gw.sessions() as session:
        import_rows(session, [{**ROW, "status": wording}])
        session.commit()
    gw.settings.confirm_senders = False
    [letter_id] = gw.send(mail("Петровой Марии", WARM))
    letter: Letter = gw.letter(letter_id)
    assert letter.state == state
    assert code in [f["code"] for f in letter.findings if f["rule"] == "recipient"]
    [notice] = gw.outbox(kind)
    text = " ".join(gw.message(notice).get_body(("plain",)).get_content().split())
    if code == "released":
        assert "вышел на свободу" in text and "ничего не списываем" in text
