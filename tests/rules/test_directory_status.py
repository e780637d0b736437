"""The directory's status column: the words public lists use become the gateway's
statuses (the import and the checks through them: tests/intake/test_checks_pipeline.py)."""

from __future__ import annotations

import pytest

from gateway.directory import parse_status

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

