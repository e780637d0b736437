"""Addressing under generated sentences: a prisoner's name in every grammatical case, in
the orders and abbreviations people use, with prepositions and one-letter words before it,
initials, a birth year copied from a list, quotes, and Latin transliteration (passport and
everyday spellings), in the subject or a "Кому:" line, always finds that prisoner and no
one else."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.intake.addressing import resolve_recipient
from gateway.intake.names import inflect_full_name
from tests.intake.test_addressing import (
    DIRECTORY,
    IVANOV,
    IVANOV_PETR,
    KOVALEV,
    LI,
    PETROVA,
    SIDORENKO,
)

pytestmark = pytest.mark.intake

PEOPLE = [IVANOV, PETROVA, KOVALEV, LI, SIDORENKO, IVANOV_PETR]
CASES = ["nomn", "gent", "datv", "accs", "ablt", "loct"]
# How people abbreviate and order a name; {l} {f} {m} are inflected, {fi} {mi} initials.
FORMS = ["{l} {f} {m}", "{f} {m} {l}", "{f} {l}", "{l} {f}", "{l} {fi}. {mi}.", "{l} {fi}.{mi}.",
         "{fi}. {mi}. {l}", "{l} {fi}."]
BEFORE = ["", "Письмо для", "Кому:", "письмо к", "думаю о", "с", "к", "о", "для", "Привет,",
          "Письмо", "Re: письмо", "Для заключённого"]
YEARS = ["", ", {y} г.р.", " {y} г.р.", " ({y} г. р.)", ", {y} года рождения", " {y}г.р.", ", {y} г."]
QUOTES = [("", ""), ("«", "»"), ('"', '"'), ("'", "'")]

# Russian passports (ICAO 9303) and everyday habit (GOST-like, "y" and "kh").
PASSPORT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "i", "k", "l", "m", "n", "o",
                     "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "ie", "y", "",
                     "e", "iu", "ia"], strict=True))
HABIT = {**PASSPORT, "ё": "yo", "й": "y", "х": "h", "ю": "yu", "я": "ya", "ъ": "", "ц": "c"}


def latin(text: str, table: dict[str, str]) -> str:
    out = []
    for ch in text:
        low = ch.lower()
        if low in table:
            rendered = table[low]
            out.append(rendered.capitalize() if ch.isupper() else rendered)
        else:
            out.append(ch)
    return "".join(out)


@st.composite
def addressed(draw):
    who = draw(st.sampled_from(PEOPLE))
    case = draw(st.sampled_from(CASES))
    last, first, *middle = inflect_full_name(who.last_name, who.first_name, who.middle_name,
                                             case).split()
    forms = [f for f in FORMS if who.middle_name or ("{m" not in f)]
    form = draw(st.sampled_from(forms))
    if who.last_name == "Иванов" and "{f}" not in form and "{fi}" not in form:
        form = "{l} {f}"  # the surname alone names two people: that is a question, not a match
    name = form.format(l=last, f=first, m=middle[0] if middle else "", fi=who.first_name[0],
                       mi=(who.middle_name or " ")[0])
    script = draw(st.sampled_from(["cyrillic", "passport", "habit"]))
    if script != "cyrillic":
        name = latin(name, PASSPORT if script == "passport" else HABIT)
    left, right = draw(st.sampled_from(QUOTES))
    year = draw(st.sampled_from(YEARS)).format(y=who.birth_year)
    before = draw(st.sampled_from(BEFORE))
    phrase = f"{before} {left}{name}{right}{year}".strip()
    return who, phrase, draw(st.booleans())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(addressed())
def test_every_way_of_writing_the_name_finds_that_prisoner(example) -> None:
    who, phrase, in_subject = example
    if in_subject:
        result = resolve_recipient(phrase, "Держитесь!", [], DIRECTORY)
    else:
        result = resolve_recipient("Письмо", f"Кому: {phrase}\n\nДержитесь!", [], DIRECTORY)
        assert result.text == "Держитесь!"
    assert (result.kind, result.prisoner_id) == ("found", who.id), phrase
