"""Prisoner lists shaped like the ones the groups publish (docs/shared research, section 3),
and a provider catalogue in which some facilities share a kind and number."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

from gateway.models import ProviderFacility

CATALOGUE = [
    ("77-sizo-1", "СИЗО-1 «Матросская тишина»", "Москва",
     "ФКУ СИЗО-1 УФСИН России по г. Москве\n107076, г. Москва, ул. Матросская Тишина, д. 18"),
    ("77-sizo-2", "СИЗО-2 «Бутырка»", "Москва",
     "ФКУ СИЗО-2 УФСИН России по г. Москве\n127055, г. Москва, ул. Новослободская, д. 45"),
    ("50-sizo-1", "СИЗО-1 Можайск", "Московская область", None),
    ("78-sizo-1", "СИЗО-1 «Кресты»", "Санкт-Петербург и Ленинградская область", None),
    ("16-ik-2", "ИК-2 Казань", "Республика Татарстан", None),
    ("02-ik-2", "ИК-2 Салават", "Республика Башкортостан", None),
    ("59-ik-9", "ИК-9 Пермь", "Пермский край", None),
]


def seed_catalogue(session) -> None:
    for facility_id, name, region, postal in CATALOGUE:
        session.add(ProviderFacility(provider="http", facility_id=facility_id, name=name,
                                     region=region, postal_address=postal))


# «Родительская солидарность»: ';', cp1251 (saved by Excel), the birth date inside ФИО.
RS_HEADER = "ФИО;Место нахождения;Пол;Интересы;Статус"
RS_ROWS = [
    "Иванов Иван Иванович, 12.03.1985 г.р.;ФКУ СИЗО-1 УФСИН России по г. Москве, 107076, "
    "г. Москва, ул. Матросская Тишина, д. 18;муж;шахматы, история;в заключении",
    "Петрова Мария, 1992 г.р.;СИЗО №2 г. Москва;жен;книги;под стражей",
    "Ковалёв Пётр Андреевич, 1978 г.р.;ФКУ ИК-2 УФСИН России по Республике Башкортостан, "
    "453256, г. Салават;м;;осужден",
    "Сидоренко Олег Викторович;ИК-2;м;;в колонии",            # which ИК-2? a person says
    "Орлова Вера Павловна, 05.07.1970 г.р.;СИЗО-1 «Кресты», Санкт-Петербург;ж;йога;в заключении",
    "Ахмедов Рустам;Этап;м;;этап",                             # no facility yet
]
RS_EXPECTED = {"Иванов Иван Иванович": "77-sizo-1", "Петрова Мария": "77-sizo-2",
               "Ковалёв Пётр Андреевич": "02-ik-2", "Орлова Вера Павловна": "78-sizo-1"}
RS_TO_CONFIRM = {"Сидоренко Олег Викторович", "Ахмедов Рустам"}


def write_rs_csv(path: Path, rows: list[str] = RS_ROWS) -> Path:
    path.write_bytes(("\r\n".join([RS_HEADER, *rows]) + "\r\n").encode("cp1251"))
    return path


# OVD-Info's export (МЛС_Свобот): dates M/D/YYYY, a year column, «Где находится».
def write_ovd_xlsx(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["ФИО", "Статьи", "Где находится", "Дата рождения", "Год рождения"])
    sheet.append(["Смирнов Алексей Николаевич", "280.3", "ФКУ ИК-9 ГУФСИН России по Пермскому "
                  "краю, 614000, г. Пермь", "5/12/1985", 1985])
    sheet.append(["Кузнецова Анна Сергеевна", "207.3", "ФКУ ИК-2 УФСИН по РТ", "11/23/1990",
                  1990])
    sheet.append(["Волков Дмитрий", "212", "СИЗО-1 УФСИН России по Московской области",
                  datetime(1979, 1, 30), None])
    sheet.append(["Лебедев Сергей Ильич", "275", "СИЗО-4 г. Москва", "", 1966])
    book.save(path)
    return path


OVD_MAPPING = """month_first = true
[columns]
full_name = "ФИО"
facility = "Где находится"
birth_date = "Дата рождения"
birth_year = "Год рождения"
"""
OVD_EXPECTED = {"Смирнов Алексей Николаевич": "59-ik-9", "Кузнецова Анна Сергеевна": "16-ik-2",
                "Волков Дмитрий": "50-sizo-1"}
OVD_TO_CONFIRM = {"Лебедев Сергей Ильич"}


# politzek.org's records (Airtable → Supabase): one name string, gender in words, lists.
def write_politzek_json(path: Path) -> Path:
    path.write_text(json.dumps({"data": [
        {"name": "Фёдорова Ольга Игоревна", "region": "Москва",
         "address_for_letters": "127055, г. Москва, ул. Новослободская, д. 45, ФКУ СИЗО-2 "
                                "УФСИН России по г. Москве",
         "date_of_birth": "1988-04-02", "gender": "женский", "interests": ["книги", "йога"],
         "can_write": True, "status": "лишен/а свободы"},
        {"name": "Белов Игорь Петрович", "region": "Санкт-Петербург",
         "address_for_letters": "ФКУ СИЗО-1 УФСИН России по г. Санкт-Петербургу и "
                                "Ленинградской области",
         "date_of_birth": "1975-10-10", "gender": "мужской", "interests": [],
         "can_write": False, "status": "лишен/а свободы"},
        {"name": "Зайцев Артём", "region": "Москва", "address_for_letters": "СИЗО-5",
         "date_of_birth": None, "gender": "мужской", "interests": ["музыка"],
         "can_write": True, "status": "нет информации"},
    ]}, ensure_ascii=False), encoding="utf-8")
    return path


POLITZEK_EXPECTED = {"Фёдорова Ольга Игоревна": "77-sizo-2",
                     "Белов Игорь Петрович": "78-sizo-1"}
POLITZEK_TO_CONFIRM = {"Зайцев Артём"}
