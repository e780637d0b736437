"""Values as the public lists write them: one-column names, birth dates in prose, gender
in words. Pure functions; each raises ValueError with a reason a person understands."""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {"январ": 1, "феврал": 2, "март": 3, "апрел": 4, "ма": 5, "июн": 6, "июл": 7,
           "август": 8, "сентябр": 9, "октябр": 10, "ноябр": 11, "декабр": 12}
_NUMERIC = re.compile(r"(?<!\d)(\d{1,4})[./\-](\d{1,2})[./\-](\d{2,4})(?!\d)")
_WORDY = re.compile(r"(?<!\d)(\d{1,2})\s+([а-яё]+)\s+(\d{4})(?!\d)")
_YEAR = re.compile(r"(?<!\d)(19\d{2}|20\d{2})(?!\d)")
# "12.03.1985 г.р." or "1985 г. р." inside a name cell (Родительская солидарность).
_BIRTH_IN_NAME = re.compile(r"[,;(]?\s*(\d{1,2}[./]\d{1,2}[./]\d{4}|\d{4})\s*г\.?\s*р\.?\)?",
                            re.IGNORECASE)


def split_full_name(raw: str) -> tuple[str, str, str | None, str]:
    """"Фамилия Имя Отчество" (patronymic optional) → (last, first, middle, the rest:
    a birth date written into the same cell, if any)."""
    text = " ".join(raw.split())
    born = ""
    found = _BIRTH_IN_NAME.search(text)
    if found:
        born = found.group(1)
        text = (text[:found.start()] + text[found.end():]).strip(" ,;")
    parts = text.split(" ")
    if len(parts) < 2 or not all(re.fullmatch(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", p) for p in parts):
        raise ValueError(f"{raw!r} is not a full name (surname, name and patronymic)")
    last, first, *rest = parts
    return last, first, " ".join(rest) or None, born


def parse_birth(raw: str, *, month_first: bool = False) -> tuple[date | None, int | None]:
    """(date, year) from "12.03.1985", "1985-03-12", "5/12/1985" (month first when the
    mapping says so: OVD-Info's export), "5 мая 1981 года", "1985 г.р.", "родился в 1981
    году". Only a year known: (None, year)."""
    text = raw.strip().lower().replace("ё", "е")
    if not text:
        return None, None
    if m := _NUMERIC.search(text):
        a, b, c = (int(x) for x in m.groups())
        if a > 31:  # ISO: year first
            return _date(raw, a, b, c), a
        day, month = (b, a) if month_first else (a, b)
        if month > 12 >= day:  # unambiguous whichever way the list writes it
            day, month = month, day
        year = c + (1900 if c > 30 else 2000) if c < 100 else c
        return _date(raw, year, month, day), year
    if m := _WORDY.search(text):
        month = next((n for stem, n in _MONTHS.items() if m.group(2).startswith(stem)), None)
        if month is None:
            raise ValueError(f"{raw!r}: {m.group(2)!r} is not a month")
        return _date(raw, int(m.group(3)), month, int(m.group(1))), int(m.group(3))
    if m := _YEAR.search(text):
        return None, int(m.group(1))
    raise ValueError(f"{raw!r} is not a birth date or year (12.03.1985, 1985 г.р.)")


def _date(raw: str, year: int, month: int, day: int) -> date:
    try:
        born = date(year, month, day)
    except ValueError:
        raise ValueError(f"{raw!r} is not a real date") from None
    if not 1900 <= year <= date.today().year - 14:
        raise ValueError(f"{raw!r}: a birth year of {year} is not plausible")
    return born


def parse_gender(raw: str) -> str | None:
    text = raw.strip().lower()
    if not text:
        return None
    if text[0] in "жfw" or text.startswith("жен"):
        return "f"
    if text[0] in "мm":
        return "m"
    raise ValueError(f"{raw!r} is not a gender (мужской / женский)")


def parse_yes_no(raw: str) -> bool | None:
    text = raw.strip().lower()
    if not text:
        return None
    if text in ("да", "yes", "y", "true", "1", "+", "можно", "хочет", "пишите"):
        return True
    if text in ("нет", "no", "n", "false", "0", "-", "нельзя", "не пишите", "пауза"):
        return False
    raise ValueError(f"{raw!r} is not yes or no (да / нет)")


def parse_tags(raw: str) -> list[str]:
    """"книги, история; шахматы" → ["книги", "история", "шахматы"]."""
    return [t for t in (" ".join(p.split()).lower() for p in re.split(r"[,;/\n]", raw)) if t]


def name_key(last: str, first: str, middle: str | None, year: int | None) -> str:
    """Who a row is when the list has no code: the name folded (ё as е), and the year."""
    name = " ".join(p for p in (last, first, middle) if p).lower().replace("ё", "е")
    return f"{name}|{year or ''}"
