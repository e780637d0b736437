"""Addressing: which prisoner a letter is for, from the subject, a "Кому:" line or a plus-address."""

from __future__ import annotations

import pytest

from gateway.intake.addressing import Candidate, resolve_recipient

pytestmark = pytest.mark.intake

IVANOV = Candidate(1, "Иванов", "Иван", "Иванович", 1980, "ИК-2 Мордовия", "K101", letters_recent=5)
PETROVA = Candidate(2, "Петрова", "Мария", "Сергеевна", 1990, "ИК-7 Карелия", "K102", letters_recent=2)
KOVALEV = Candidate(3, "Ковалёв", "Пётр", "Андреевич", 1975, "СИЗО-1 Москва", "K103", letters_recent=4)
LI = Candidate(4, "Ли", "Анна", None, 1995, "ИК-5 Пермь", "K104", letters_recent=3)
SIDORENKO = Candidate(5, "Сидоренко", "Олег", None, 1988, "ИК-1 Тверь", "K105", letters_recent=1)
IVANOV_PETR = Candidate(6, "Иванов", "Пётр", "Сергеевич", 1970, "ИК-3 Коми", "K106", letters_recent=9)
BLOCKED = Candidate(7, "Смирнова", "Ольга", "Петровна", 1985, "ИК-9", "K107", can_receive=False)
DIRECTORY = (IVANOV, PETROVA, KOVALEV, LI, SIDORENKO, IVANOV_PETR, BLOCKED)


def resolve(subject: str = "", text: str = "Привет!", recipients=(), directory=DIRECTORY):
    return resolve_recipient(subject, text, list(recipients), directory)


# Every grammatical case, full name with patronymic, surname first and last.
CASES = {
    IVANOV: ["Иванов Иван Иванович", "Иванова Ивана Ивановича", "Иванову Ивану Ивановичу",
             "Ивановым Иваном Ивановичем", "Иванове Иване Ивановиче", "Ивана Ивановича Иванова"],
    PETROVA: ["Петрова Мария Сергеевна", "Петровой Марии Сергеевны", "Петровой Марии Сергеевне",
              "Петрову Марию Сергеевну", "Петровой Марией Сергеевной", "Марии Сергеевне Петровой"],
    KOVALEV: ["Ковалёв Пётр Андреевич", "Ковалёва Петра Андреевича", "Ковалёву Петру Андреевичу",
              "Ковалёвым Петром Андреевичем", "Ковалёве Петре Андреевиче",
              "Ковалев Петр Андреевич", "Ковалеву Петру"],
    LI: ["Ли Анна", "Ли Анны", "Ли Анне", "Ли Анну", "Ли Анной", "Анне Ли"],
    SIDORENKO: ["Сидоренко Олег", "Сидоренко Олега", "Сидоренко Олегу", "Сидоренко Олегом",
                "Сидоренко Олеге", "Олегу Сидоренко"],
}


@pytest.mark.parametrize(
    ("who", "phrase"), [(c, p) for c, phrases in CASES.items() for p in phrases],
    ids=lambda v: v if isinstance(v, str) else v.last_name,
)
def test_name_in_any_case_in_the_address_line(who: Candidate, phrase: str) -> None:
    result = resolve(text=f"Кому: {phrase}\n\nДорогой друг, держись!")
    assert (result.kind, result.prisoner_id) == ("found", who.id)
    assert result.text == "Дорогой друг, держись!"


@pytest.mark.parametrize(
    ("who", "phrase"), [(c, p) for c, phrases in CASES.items() for p in phrases],
    ids=lambda v: v if isinstance(v, str) else v.last_name,
)
def test_name_in_any_case_in_the_subject(who: Candidate, phrase: str) -> None:
    result = resolve(subject=f"Письмо для: {phrase}")
    assert (result.kind, result.prisoner_id) == ("found", who.id)
    assert result.text == "Привет!"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Для Марии Петровой", PETROVA),
        ("Маше Петровой от друзей", PETROVA),
        ("Иванову И.И.", IVANOV),
        ("Иванову П. С.", IVANOV_PETR),
        ("Ivanov Ivan", IVANOV),
        ("Petrova Mariya", PETROVA),
        ("Maria Petrova", PETROVA),
        ("Kovalyov Pyotr", KOVALEV),
        ("Kovalev P.A.", KOVALEV),
        ("Sidorenko Oleg", SIDORENKO),
        ("Петровй Марии", PETROVA),  # a typo
        ("Ивановуу Ивану", IVANOV),  # a typo
        ("Ковалеву", KOVALEV),  # surname alone, unique
        ("Ивану Ивановичу", IVANOV),  # first name and patronymic
        ("Получит ли Анна Ли письмо?", LI),  # "ли" the particle is not the surname
        ("Письмо от Ивана для Марии Петровой", PETROVA),
        ("Re: Письмо Сидоренко Олегу", SIDORENKO),
    ],
)
def test_how_people_write_names(subject: str, expected: Candidate) -> None:
    result = resolve(subject=subject)
    assert (result.kind, result.prisoner_id) == ("found", expected.id)


def test_two_prisoners_with_one_surname_are_ambiguous() -> None:
    result = resolve(subject="Иванову")
    assert result.kind == "ambiguous" and result.prisoner_id is None
    assert {c.id for c in result.candidates} == {IVANOV.id, IVANOV_PETR.id}


def test_first_name_disambiguates() -> None:
    assert resolve(subject="Ивану Иванову").prisoner_id == IVANOV.id
    assert resolve(subject="Петру Иванову").prisoner_id == IVANOV_PETR.id


def test_a_different_first_name_is_not_a_match() -> None:
    assert resolve(subject="Марии Ивановой").kind == "not_found"
    assert resolve(subject="Анне Петровой").kind == "not_found"


def test_directory_code_in_subject_and_cyrillic_lookalike() -> None:
    assert resolve(subject="K103").prisoner_id == KOVALEV.id
    assert resolve(subject="письмо к105").prisoner_id == SIDORENKO.id  # Cyrillic к


def test_plus_address_code_and_a_subject_that_agree() -> None:
    result = resolve(subject="Ивану Ивановичу", recipients=["letters+k101@gw.example"])
    assert (result.kind, result.prisoner_id) == ("found", IVANOV.id)


@pytest.mark.parametrize(("subject", "text", "recipients", "named"), [
    ("Петровой Марии", "Привет", ["letters+k101@gw.example"], {IVANOV, PETROVA}),
    ("Письмо Ковалёву", "Кому: Сидоренко Олегу\nПривет", [], {KOVALEV, SIDORENKO}),
    ("Иванову", "Привет", ["letters+k103@gw.example"], {IVANOV, IVANOV_PETR, KOVALEV}),
])
def test_sources_that_name_different_prisoners_are_asked_about(subject, text, recipients,
                                                               named) -> None:
    result = resolve(subject=subject, text=text, recipients=recipients)
    assert (result.kind, result.prisoner_id, result.conflict) == ("ambiguous", None, True)
    assert set(result.candidates) == named


LEV = Candidate(8, "Толстой", "Лев", "Николаевич", 1958, "ИК-6 Тула", "K108")
MORE = (*DIRECTORY, LEV)


@pytest.mark.parametrize(("subject", "expected"), [
    ("письмо к Ивану Иванову", IVANOV),
    ("К Петру Ковалёву", KOVALEV),
    ("думаю о Льве Толстом", LEV),
    ("с Марией Петровой мы дружим", PETROVA),
    ("у Олега Сидоренко день рождения", SIDORENKO),
    ("Петрова Мария Сергеевна, 1990 г.р.", PETROVA),
    ("Иванов Иван Иванович 1980 г.р. ИК-2", IVANOV),
    ("Иванову 1970 года рождения", IVANOV_PETR),
    ("Иванову И. И. (1980 г. р.)", IVANOV),
])
def test_one_letter_words_and_birth_years_beside_the_name(subject, expected) -> None:
    result = resolve(subject=subject, directory=MORE)
    assert (result.kind, result.prisoner_id) == ("found", expected.id)


@pytest.mark.parametrize(("subject", "expected"), [
    ("Иванову, ИК-3", IVANOV_PETR),
    ("Иванову в Мордовию", IVANOV),
    ("Иванову (Коми)", IVANOV_PETR),
    ("Иванову 1980 г.р.", IVANOV),
])
def test_birth_year_region_and_facility_tell_namesakes_apart(subject, expected) -> None:
    result = resolve(subject=subject)
    assert (result.kind, result.prisoner_id) == ("found", expected.id)


def test_a_birth_year_that_does_not_fit_is_asked_about() -> None:
    result = resolve(subject="Ковалёву Петру Андреевичу, 1976 г.р.")
    assert (result.kind, result.candidates) == ("ambiguous", (KOVALEV,))


@pytest.mark.parametrize(("subject", "expected"), [
    ("Petrovoi Marii", PETROVA), ("Petrovoy Marii Sergeevne", PETROVA),
    ("Ivanovu Ivanu", IVANOV), ("Kovalyovu Pyotru", KOVALEV), ("Kovalevu Petru", KOVALEV),
    ("dlya Petrovoi Marii", PETROVA), ("Sidorenko Olegu", SIDORENKO), ("Anne Li", LI),
    ("Ivanovym Ivanom Ivanovichem", IVANOV),
])
def test_latin_transliteration_in_every_case(subject, expected) -> None:
    result = resolve(subject=subject)
    assert (result.kind, result.prisoner_id) == ("found", expected.id)


@pytest.mark.parametrize("how", ["Кому: любому", "Кому: Anyone"])
def test_anyone_goes_to_the_least_written_who_can_receive(how: str) -> None:
    result = resolve(text=f"{how}\nПривет!")
    assert result.kind == "anyone"
    assert result.prisoner_id == SIDORENKO.id  # letters_recent=1; BLOCKED has 0 but cannot receive
    assert result.text == "Привет!"


def test_anyone_by_plus_address() -> None:
    assert resolve(recipients=["letters+anyone@gw.example"]).prisoner_id == SIDORENKO.id


def test_nothing_named() -> None:
    result = resolve(subject="Привет", text="Как дела?")
    assert (result.kind, result.prisoner_id, result.candidates) == ("not_found", None, ())
    assert result.text == "Как дела?"


def test_address_line_only_at_the_top_is_removed() -> None:
    text = "Привет!\nКому: Петровой Марии\nПока"
    result = resolve(text=text)
    assert result.kind == "not_found" and result.text == text


def big_directory(n: int = 1500) -> tuple[Candidate, ...]:
    lasts = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов",
             "Михайлов", "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев"]
    firsts = [("Иван", "m"), ("Пётр", "m"), ("Сергей", "m"), ("Дмитрий", "m"), ("Ольга", "f"),
              ("Елена", "f"), ("Наталья", "f")]
    people = []
    for i in range(n):
        last = lasts[i % len(lasts)]
        first, gender = firsts[(i // len(lasts)) % len(firsts)]
        middle = ["Иванович", "Петрович", "Андреевич"][i % 3]
        if gender == "f":
            last, middle = last + "а", middle.replace("ич", "на")
        people.append(Candidate(100 + i, last, first, middle, 1960 + i % 40, f"ИК-{i % 50}", f"Q{i}"))
    return (*people, PETROVA)


def test_large_directory_is_indexed_once_and_fast() -> None:
    import time

    from gateway.intake import addressing

    directory = big_directory()
    resolve(subject="Марии Петровой", directory=directory)  # builds the index
    # letters_recent changes with every letter: it must not rebuild the name index
    changed = tuple(Candidate(**{**c.__dict__, "letters_recent": c.letters_recent + 1}) for c in directory)
    misses = addressing._index_names.cache_info().misses
    started = time.perf_counter()
    for _ in range(20):
        result = resolve(subject="Письмо для Марии Петровой", text="Кому: Петровй Марии\nПривет", directory=changed)
    per_call = (time.perf_counter() - started) / 20
    assert addressing._index_names.cache_info().misses == misses
    assert (result.kind, result.prisoner_id) == ("found", PETROVA.id)
    assert per_call < 0.05, f"{per_call * 1000:.1f} ms per letter"


@pytest.mark.parametrize(("answer", "expected"), [
    ("2", IVANOV_PETR), ("№ 1", IVANOV), ("номер 2.", IVANOV_PETR), ("K106", IVANOV_PETR),
    ("Петру Сергеевичу", IVANOV_PETR), ("Ивану Иванову, спасибо!", IVANOV),
    ("Ivanovu Petru", IVANOV_PETR),
    ("3", None), ("2 дня назад я уже писала", None), ("Иванову", None), ("Петровой Марии", None),
])
def test_the_writers_answer_to_which_prisoner(answer, expected) -> None:
    from gateway.intake.addressing import read_choice

    assert read_choice("Re: Уточните адресата", answer, [IVANOV_PETR, IVANOV]) == expected


def test_the_writers_own_city_in_the_letter_does_not_choose_a_namesake() -> None:
    result = resolve(text="Кому: Иванову\n\nПишу вам из Коми, у нас снег.")
    assert result.kind == "ambiguous" and {c.id for c in result.candidates} == {IVANOV.id, IVANOV_PETR.id}


def test_a_birth_year_outranks_a_facility_the_prisoner_may_have_left() -> None:
    assert resolve(subject="Иванову, 1980 г.р., ИК-3 Коми").prisoner_id == IVANOV.id
