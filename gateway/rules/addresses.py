"""Postal addresses in a letter: street and house, flat, a city written the way an
envelope is ("г. Тверь"), a postcode beside a place, a PO box.

No library fits: the Russian address extractors (natasha/yargy) need pymorphy2, which
does not run on Python 3.11, and they are built to parse an address one already knows is
there. These patterns look for the shape envelopes use — an abbreviation or a street word
*and* a number after it — so ordinary numbers, dates, years ("1985 г.") and words like
"улица" in a sentence are left alone. Neighbouring parts are joined into one passage, so
the organizer sees "170100, г. Тверь, ул. Некрасова, д. 12, кв. 5" as written."""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE | re.UNICODE
_W = r"[А-ЯЁа-яё]"  # a Cyrillic letter
# "Некрасова", "Мира", "3-я Строителей", "8 Марта", "Мусы Джалиля"
_NAME = rf"(?:\d{{1,2}}(?:-?(?:я|й|ая|ий|ый))?\s+)?{_W}[\w.-]*(?:\s+{_W}[\w.-]*){{0,2}}?"
# A house number: 12, 12а, 12/3, 12-14, "д. 12", "дом 12", with corpus and building.
_HOUSE = (r"(?:(?:д\.?|дом)\s*)?\d{1,4}(?:[а-я](?![а-я.]))?(?:\s?[/-]\s?\d{1,4})?"
          r"(?:\s*,?\s*(?:корп\.?|корпус|к\.|стр\.?|строение)\s*\d{1,3}[а-я]?)?")
_FLAT = r"(?:кв\.?|квартира|комн\.?|комната|оф\.?|офис)\s*\d{1,4}[а-я]?"
# Street words before the name ("ул. Некрасова", "пр-т Мира") or after it ("Невский проспект").
_ABBR = r"ул\.|просп\.|пер\.|ш\.|бул\.|наб\.|пл\.|туп\.|мкр\."
_WORDS = (r"ул|улица|пр-т|пр-кт|проспект|переулок|шоссе|б-р|бульвар|набережная|площадь|"
          r"пр-д|проезд|тупик|аллея|мкр|мкр-н|микрорайон|кв-л|квартал|тракт")
_AFTER = r"улица|проспект|переулок|шоссе|бульвар|набережная|площадь|проезд|тупик|аллея|тракт"
# A number of hours, times or years is not a house: "по Невскому проспекту 2 часа".
_NOT_HOUSE = r"(?!\s*(?:час|раз|лет|год|мин|дн|день|дня|недел|месяц|км|метр|шаг|человек|рубл))"

STREET = re.compile(
    rf"(?<!{_W})(?:(?:(?:{_ABBR})\s*|(?:{_WORDS})\s+){_NAME}"
    rf"|(?-i:[А-ЯЁ]){_W}+(?:-{_W}+)?\s+(?:{_AFTER})(?!{_W}))"
    rf"\s*,?\s*{_HOUSE}(?!\d){_NOT_HOUSE}(?:\s*[,-]?\s*{_FLAT})?(?!\d)", _FLAGS)
# "д. 12, кв. 5" without a street: the flat makes it an address.
HOUSE_FLAT = re.compile(rf"(?<!{_W})(?=д\.?\s*\d|дом\s*\d){_HOUSE}\s*[,-]?\s*{_FLAT}(?!\d)", _FLAGS)
# An envelope's place: "г. Москва", "пос. Сосновка", "пгт Янтарный" (never after a
# number: "1985 г. Москва" is a year, and "г.р." a birth year).
PLACE = re.compile(
    rf"(?<!\d)(?<!\d\s)(?<!{_W})(?:г\.|гор\.|пос\.|пгт|дер\.|д\.\s?(?=[А-ЯЁ]{_W}+\s*,))\s*"
    rf"[А-ЯЁ]{_W}+(?:[- ][А-ЯЁ]{_W}+)?", re.UNICODE)
# A six-digit postcode next to a place: "170100, г. Тверь", "170100 Тверь", "индекс 170100".
POSTCODE = re.compile(
    rf"(?<![\d.,])[1-6]\d{{5}}(?![\d.,]\d)(?=\s*,?\s*(?:г\.|гор\.|пос\.|[А-ЯЁ]{_W}))"
    rf"|(?:[Ии]ндекс|[Пп]очтовый индекс)\s*:?\s*[1-6]\d{{5}}(?!\d)"
    rf"|[А-ЯЁ]{_W}+,\s*[1-6]\d{{5}}(?![\d.,]\d)", re.UNICODE)
PO_BOX = re.compile(r"(?<![А-Яа-яЁё])(?:а/я|абонентский ящик|а\.я\.)\s*№?\s*\d{1,5}", _FLAGS)

_JOIN = re.compile(r"[\s,;.]{0,3}")

# What each pattern cannot match without, found far faster than the pattern itself is tried
# at every position (most letters have no address, many not a digit): a street, a house, a
# flat and a PO box all have a number, a postcode six digits, a place one of its words.
_DIGIT = re.compile(r"\d")
_SIX_DIGITS = re.compile(r"[1-6]\d{5}")
_PLACE_WORD = re.compile(r"\.(?:(?<=(?<![А-ЯЁа-яё])[гд]\.)|(?<=(?<![А-ЯЁа-яё])(?:гор|дер|пос)\.))")


def _patterns(text: str) -> list[re.Pattern[str]]:
    """The patterns that can match in this text (the others cannot)."""
    patterns = []
    if _DIGIT.search(text):
        patterns += [STREET, HOUSE_FLAT, PO_BOX]
        if _SIX_DIGITS.search(text):
            patterns.append(POSTCODE)
    if "пгт" in text or _PLACE_WORD.search(text):
        patterns.append(PLACE)
    return patterns


def find(text: str) -> list[tuple[int, int]]:
    """Spans of postal addresses, neighbouring parts joined, in order."""
    spans = sorted((m.start(), _trim(text, m.start(), m.end()))
                   for pattern in _patterns(text)
                   for m in pattern.finditer(text))
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and (start <= joined[-1][1] or
                       _JOIN.fullmatch(text[joined[-1][1]:start])):
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in " ,;:-":
        end -= 1
    return end
