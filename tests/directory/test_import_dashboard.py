"""The dashboard's import of a published list: the plan, columns chosen on the page, an
uncertain facility picked by a person, and who is gone ticked, through the real Flask app."""

from __future__ import annotations

import base64
import re
from datetime import date

import pytest
from sqlalchemy import select

from gateway.models import Prisoner
from tests.dashboard.conftest import (  # noqa: F401 (fixtures)
    app,
    as_user,
    cheap_argon2,
    csrf_token,
    sessions,
    settings,
)
from tests.directory import lists

pytestmark = [pytest.mark.directory, pytest.mark.dashboard]

PAGE = "/prisoners/import-list"


@pytest.fixture
def catalogue(sessions):  # noqa: F811
    with sessions() as session:
        lists.seed_catalogue(session)
        session.commit()


def _hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def _directory(sessions) -> dict[str, Prisoner]:  # noqa: F811
    with sessions() as session:
        return {p.full_name: p for p in session.scalars(select(Prisoner))}


def test_a_list_is_previewed_confirmed_and_applied(as_user, sessions, catalogue, tmp_path):  # noqa: F811
    client = as_user("moderator")
    path = lists.write_rs_csv(tmp_path / "rs.csv")
    with path.open("rb") as fh:
        page = client.post(PAGE, data={"csrf_token": csrf_token(client, PAGE),
                                       "file": (fh, "rs.csv")},
                           content_type="multipart/form-data").get_data(as_text=True)
    assert "new: <strong>4</strong>" in page and "to confirm: <strong>2</strong>" in page
    assert "Сидоренко Олег Викторович" in page and "ИК-2 Казань (Республика Татарстан)" in page
    assert _directory(sessions) == {}
    form = {"csrf_token": _hidden(page, "csrf_token"), "data": _hidden(page, "data"),
            "filename": "rs.csv", "mapped": "1", "map_full_name": "ФИО",
            "map_facility": "Место нахождения", "map_gender": "Пол", "map_status": "Статус",
            "map_interests": "Интересы", "confirm_5": "16-ik-2", "action": "apply"}
    assert client.post(PAGE, data=form).status_code == 302
    directory = _directory(sessions)
    assert {n: p.facility_id for n, p in directory.items()} == {
        **lists.RS_EXPECTED, "Сидоренко Олег Викторович": "16-ik-2"}

    # The next list leaves Орлова out: she is retired only when ticked.
    rows = [r for r in lists.RS_ROWS if not r.startswith("Орлова")]
    data = lists.write_rs_csv(tmp_path / "rs2.csv", rows).read_bytes()
    form.update(data=base64.b64encode(data).decode(), action="preview")
    page = client.post(PAGE, data=form).get_data(as_text=True)
    assert "absent: <strong>1</strong>" in page and "Retire Орлова Вера Павловна" in page
    code = directory["Орлова Вера Павловна"].code
    assert client.post(PAGE, data={**form, "action": "apply", "retire": code}).status_code == 302
    assert _directory(sessions)["Орлова Вера Павловна"].status == "retired"


def test_columns_chosen_on_the_page_change_how_dates_are_read(as_user, sessions, catalogue,  # noqa: F811
                                                              tmp_path):
    client = as_user("moderator")
    path = lists.write_ovd_xlsx(tmp_path / "ovd.xlsx")
    with path.open("rb") as fh:
        page = client.post(PAGE, data={"csrf_token": csrf_token(client, PAGE),
                                       "file": (fh, "ovd.xlsx")},
                           content_type="multipart/form-data").get_data(as_text=True)
    assert re.search(r'<option value="Где находится" selected>', page)  # guessed
    form = {"csrf_token": _hidden(page, "csrf_token"), "data": _hidden(page, "data"),
            "filename": "ovd.xlsx", "mapped": "1", "map_full_name": "ФИО",
            "map_facility": "Где находится", "map_birth_date": "Дата рождения",
            "map_birth_year": "Год рождения", "month_first": "1", "action": "apply"}
    assert client.post(PAGE, data=form).status_code == 302
    assert _directory(sessions)["Смирнов Алексей Николаевич"].birth_date == date(1985, 5, 12)


def test_a_bad_row_blocks_the_import_and_a_viewer_cannot_import(as_user, sessions, catalogue,  # noqa: F811
                                                                tmp_path):
    client = as_user("moderator")
    rows = list(lists.RS_ROWS)
    rows[1] = "Петрова Мария, 31.02.1992 г.р.;СИЗО №2 г. Москва;жен;книги;под стражей"
    path = lists.write_rs_csv(tmp_path / "bad.csv", rows)
    with path.open("rb") as fh:
        page = client.post(PAGE, data={"csrf_token": csrf_token(client, PAGE),
                                       "file": (fh, "bad.csv")},
                           content_type="multipart/form-data").get_data(as_text=True)
    assert "row 3, column &#39;ФИО&#39;" in page and 'value="apply"' not in page
    form = {"csrf_token": _hidden(page, "csrf_token"), "data": _hidden(page, "data"),
            "filename": "bad.csv", "action": "apply"}
    client.post(PAGE, data=form)
    assert _directory(sessions) == {}
    assert as_user("viewer").get(PAGE).status_code == 403


def test_the_profile_is_edited_on_the_prisoner_form(as_user, sessions):  # noqa: F811
    client = as_user("moderator")
    fields = dict(code="SID9", last_name="Сидорова", first_name="Анна", middle_name="",
                  birth_year="1995", region="Пермь", facility_name="ИК-28", facility_id="F28",
                  provider="http", gender="f", interests="Любит Толстого, просит журналы о "
                  "садоводстве", interest_tags="книги, сад", writer_note="Пишите о природе",
                  wants_letters="1")
    client.post("/prisoners/new", data={"csrf_token": csrf_token(client, "/prisoners/new"),
                                        **fields})
    with sessions() as session:
        p = session.scalar(select(Prisoner).where(Prisoner.code == "SID9"))
        assert (p.gender, p.interest_tags, p.writer_note, p.wants_letters) == (
            "f", ["книги", "сад"], "Пишите о природе", True)
    page = client.get(f"/prisoners/{p.id}/edit").get_data(as_text=True)
    assert "книги, сад" in page and "Пишите о природе" in page
    del fields["wants_letters"]  # the box unticked: a pause in letters
    client.post(f"/prisoners/{p.id}/edit",
                data={"csrf_token": csrf_token(client, "/prisoners/new"), **fields})
    with sessions() as session:
        assert session.get(Prisoner, p.id).wants_letters is False
