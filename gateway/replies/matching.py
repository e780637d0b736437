"""Which letter does a scanned reply answer? Only the gateway's own mapping decides:
the provider's letter number, as the prisoner wrote it. Anything less certain goes to a
person (UNMATCHED), never to a guess."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Letter

# Handwriting turns Latin into Cyrillic look-alikes and adds spaces: "ФП-2026-000123",
# "FP 2026 123". Normalise both sides the same way before comparing.
_LOOKALIKES = str.maketrans({"Ф": "F", "П": "P", "Р": "P", "А": "A", "В": "B", "Е": "E",
                             "К": "K", "М": "M", "Н": "H", "О": "O", "С": "C", "Т": "T",
                             "Х": "X", "З": "3", "—": "-", "–": "-"})
NUMBER_IN_TEXT = re.compile(r"№\s*([A-Za-zА-Яа-я]{1,4}[\s-]*\d{4}[\s-]*\d{1,8})")


def normalise_number(value: str) -> str:
    value = value.upper().translate(_LOOKALIKES)
    value = re.sub(r"[\s_]+", "-", value.strip())
    m = re.fullmatch(r"([A-Z]{1,4})-*(\d{4})-*(\d{1,8})", value.replace("--", "-"))
    if not m:
        return value
    prefix, year, serial = m.groups()
    return f"{prefix}-{year}-{int(serial):06d}"


def find_number(*texts: str) -> str | None:
    for text in texts:
        m = NUMBER_IN_TEXT.search(text or "")
        if m:
            return m.group(1)
    return None


def match_letter(session: Session, letter_number: str | None) -> Letter | None:
    if not letter_number:
        return None
    wanted = normalise_number(letter_number)
    letter = session.scalar(select(Letter).where(Letter.provider_number == wanted))
    if letter is None and wanted != letter_number:
        letter = session.scalar(select(Letter).where(Letter.provider_number == letter_number))
    return letter
