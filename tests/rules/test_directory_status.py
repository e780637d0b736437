"""The directory's status column: the words public lists use become the gateway's
statuses, so a released prisoner's letter is returned unpaid and a moved or deceased
prisoner's waits for a person."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.directory import import_rows, parse_status
from gateway.models import Letter, Prisoner
from tests.intake.conftest import SECRET, WARM, gateway_settings, gw, mail  # noqa: F401

pytestmark = pytest.mark.rules


@pytest.mark.parametrize(("raw", "status"), [
    ("освобожден", "released"), ("Освобождена", "released"), ("освобождён(а)", "released"),
    ("вышла на свободу", "released"), ("released", "released"),
    ("в заключении", "in_custody"), ("В СИЗО", "in_custody"), ("под стражей", "in_custody"),
    ("in_custody", "in_custody"), ("in custody", "in_custody"),
    ("этап", "moved"), ("на этапе", "moved"), ("переведён в другую колонию", "moved"),
    ("умер", "deceased"), ("умерла в заключении", "deceased"),
    ("под домашним арестом", "house_arrest"), ("неизвестно", "unknown"),
    ("retired", "retired"),
])
def test_list_wordings_map_to_statuses(raw, status):
    assert parse_status(raw) == status


def test_an_unknown_wording_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="status 'в отпуске'"):
        parse_status("в отпуске")


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
