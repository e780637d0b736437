"""How the lists write names, dates and facilities, read into the directory's terms (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from gateway.directory_import.facilities import Catalogue, CatalogueEntry, is_placeholder
from gateway.directory_import.readers import decode
from gateway.directory_import.values import parse_birth, split_full_name
from gateway.rules import RuleSettings
from gateway.rules.base import LetterDraft, PastCensorship
from gateway.rules.censor_memory import check, tends_to_stop
from tests.directory.lists import CATALOGUE

pytestmark = pytest.mark.directory


@pytest.mark.parametrize("written, month_first, expected", [
    ("12.03.1985", False, (date(1985, 3, 12), 1985)),
    ("1985-03-12", False, (date(1985, 3, 12), 1985)),
    ("1985 г.р.", False, (None, 1985)),
    ("1985 г. р.", False, (None, 1985)),
    ("5/12/1985", True, (date(1985, 5, 12), 1985)),      # OVD-Info: month first
    ("5/12/1985", False, (date(1985, 12, 5), 1985)),     # Crimean Solidarity: DD/MM/YYYY
    ("12/25/1985", False, (date(1985, 12, 25), 1985)),   # only one way it can be read
    ("Родился 5 мая 1981 года", False, (date(1981, 5, 5), 1981)),
    ("родился в 1981 году", False, (None, 1981)),
    ("", False, (None, None)),
])
def test_birth_dates_as_written(written, month_first, expected):
    assert parse_birth(written, month_first=month_first) == expected


@pytest.mark.parametrize("written", ["31.02.1985", "вчера", "12.03.2024", "1850 г.р."])
def test_birth_dates_that_are_not(written):
    with pytest.raises(ValueError):
        parse_birth(written)


@pytest.mark.parametrize("written, expected", [
    ("Иванов Иван Иванович", ("Иванов", "Иван", "Иванович", "")),
    ("Петрова  Мария", ("Петрова", "Мария", None, "")),
    ("Римский-Корсаков Николай Андреевич, 12.03.1985 г.р.",
     ("Римский-Корсаков", "Николай", "Андреевич", "12.03.1985")),
    ("Алиев Рустам Ахмед оглы (1985 г.р.)", ("Алиев", "Рустам", "Ахмед оглы", "1985")),
])
def test_one_column_names(written, expected):
    assert split_full_name(written) == expected


def test_cp1251_is_recognised():
    text = "ФИО;Место нахождения\nИванов Иван;СИЗО-1 Москва\n"
    assert decode(text.encode("cp1251")) == text
    assert decode(("\ufeff" + text).encode("utf-8")) == text


CAT = Catalogue([CatalogueEntry("http", *row) for row in CATALOGUE])


@pytest.mark.parametrize("written, facility_id", [
    ("ФКУ СИЗО-1 УФСИН России по г. Москве", "77-sizo-1"),
    ("СИЗО № 1 г. Москва", "77-sizo-1"),
    ("следственный изолятор №2, Москва", "77-sizo-2"),
    ("127055, г. Москва, ул. Новослободская, д. 45, СИЗО-2", "77-sizo-2"),  # the index
    ("Бутырка, СИЗО-2", "77-sizo-2"),
    ("ФКУ СИЗО-1 УФСИН России по Московской области", "50-sizo-1"),
    ("ФКУ СИЗО-1 УФСИН России по г. Санкт-Петербургу и Ленинградской области", "78-sizo-1"),
    ("СИЗО-1 СПб", "78-sizo-1"),
    ("ИК-2 УФСИН по РБ", "02-ik-2"),
    ("исправительная колония № 2, г. Казань", "16-ik-2"),
    ("ФКУ ИК-9 ГУФСИН России по Пермскому краю", "59-ik-9"),
])
def test_facility_spellings_match_one_entry(written, facility_id):
    match = CAT.match(written)
    assert match.entry is not None and match.entry.facility_id == facility_id, match.why


@pytest.mark.parametrize("written", ["ИК-2", "СИЗО-1", "СИЗО-3 Москва", "ИК-2 Мордовия",
                                     "Кресты"])
def test_uncertain_facilities_are_never_guessed(written):
    assert CAT.match(written).entry is None


def test_in_transit_is_not_a_facility():
    assert is_placeholder("Этап") and is_placeholder("адрес уточняется")
    assert not is_placeholder("ИК-2 Казань")


STOPPED_PHOTO = PastCensorship(7, "Фотографии не соответствуют требованиям", (), 2, "Привет!")


def test_photos_like_ones_the_censor_stopped_are_held_but_not_a_photo_free_letter():
    photos = LetterDraft(text="Здравствуйте! Посылаю вам фотографии нашего сада.",
                         photos=(("image/jpeg", 1000),), censor_history=(STOPPED_PHOTO,))
    [finding] = check(photos, RuleSettings())
    assert finding.severity == "hold" and "фотографии" in finding.reason_ru
    plain = LetterDraft(text="Здравствуйте! Пишу вам о нашем саде.",
                        censor_history=(STOPPED_PHOTO,))
    assert check(plain, RuleSettings()) == []


def test_a_purged_letter_is_compared_by_its_topics_only():
    past = PastCensorship(3, "политика", ("war",), 0, None)
    war = LetterDraft(text="Здравствуйте! Говорят, война скоро закончится.",
                      censor_history=(past,))
    assert [f.code for f in check(war, RuleSettings())] == ["resembles_censored"]
    weather = LetterDraft(text="Здравствуйте! У нас идёт дождь, и я читаю.",
                          censor_history=(past,))
    assert check(weather, RuleSettings()) == []


def test_what_a_facility_tends_to_stop_needs_a_pattern():
    once = [PastCensorship(1, "дело", ("case",))]
    assert tends_to_stop(once) == ([], [])
    twice = once + [PastCensorship(2, "дело", ("case", "war"))]
    assert tends_to_stop(twice) == (["уголовное дело"], ["the criminal case"])


def test_a_title_line_and_blank_rows_keep_the_sheet_row_numbers(tmp_path):
    from openpyxl import Workbook

    from gateway.directory_import.readers import read_table
    book = Workbook()
    sheet = book.active
    sheet.append(["Список политзаключённых на 1 декабря"])
    sheet.append([])
    sheet.append(["ФИО", "Где находится"])
    sheet.append(["Иванов Иван", "СИЗО-1 Москва"])
    sheet.append([])
    sheet.append(["Петрова Мария", "ИК-2 Казань"])
    book.save(tmp_path / "l.xlsx")
    table = read_table(tmp_path / "l.xlsx")
    assert table.header == ("ФИО", "Где находится")
    assert [(n, r["ФИО"]) for n, r in table.rows] == [(4, "Иванов Иван"), (6, "Петрова Мария")]


def test_ovd_infos_two_place_columns_give_the_current_one(tmp_path):
    """МЛС_Свобот: «Колония (актуальная)» when sentenced, «СИЗО (актуальное)» before."""
    from gateway.directory_import.mapping import guess
    header = ("ФИО", "Статьи", "СИЗО (актуальное)", "Колония (актуальная)", "Дата рождения")
    rows = [{"СИЗО (актуальное)": "СИЗО-1 Москва", "Колония (актуальная)": "ИК-2 Казань"},
            {"СИЗО (актуальное)": "СИЗО-2 Москва", "Колония (актуальная)": ""}]
    for mapping in (guess(header), _mapping_file(tmp_path, header)):
        assert [mapping.cell(r, "facility") for r in rows] == ["ИК-2 Казань", "СИЗО-2 Москва"]

def _mapping_file(tmp_path, header):
    from gateway.directory_import.mapping import load
    path = tmp_path / "m.toml"
    path.write_text('month_first = true\n[columns]\nfull_name = "ФИО"\n'
                    'facility = ["Колония (актуальная)", "СИЗО (актуальное)"]\n',
                    encoding="utf-8")
    mapping = load(path, header)
    mapping.check(header)
    return mapping
