"""Which letter does a scanned reply answer? Only the gateway's own mapping decides:
the provider's letter number, as the prisoner wrote it. Anything less certain goes to a
person (UNMATCHED), never to a guess: other evidence (a number one digit off, the
prisoner, the facility, the dates) is stored as a *suggestion* a person confirms."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Letter, Prisoner, Reply
from gateway.states import ReplyState as RS

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


@dataclass(frozen=True)
class Suggestion:
    letter_id: int
    why: str


# Replies come within weeks; older letters are not suggested from weak evidence.
SUGGEST_WINDOW = timedelta(days=90)


def _one_digit_away(number: str) -> list[str]:
    canonical = normalise_number(number)
    variants = {canonical}
    for i, ch in enumerate(canonical):
        if ch.isdigit():
            variants.update(canonical[:i] + d + canonical[i + 1:] for d in "0123456789")
    return sorted(variants)


def _awaiting_reply(received_at: datetime):
    """Letters that could be answered now: submitted before the reply came, in the window,
    with no reply forwarded yet."""
    answered = select(Reply.letter_id).where(Reply.letter_id.is_not(None),
                                             Reply.state == RS.FORWARDED)
    return (Letter.submitted_at.is_not(None), Letter.submitted_at <= received_at,
            Letter.submitted_at >= received_at - SUGGEST_WINDOW, Letter.id.not_in(answered),
            Letter.sender_sealed.is_not(None))


def suggest_letter(session: Session, letter_number: str | None, received_at: datetime, *,
                   prisoner_id: int | None = None,
                   facility_id: str | None = None) -> Suggestion | None:
    """Evidence short of an exact number, strongest first. Only ever a suggestion: a
    person confirms it in the triage queue before anything is forwarded."""
    awaiting = _awaiting_reply(received_at)
    if letter_number and re.search(r"\d", letter_number):
        close = list(session.scalars(select(Letter).where(
            Letter.provider_number.in_(_one_digit_away(letter_number)), *awaiting).limit(2)))
        if len(close) == 1:
            return Suggestion(close[0].id, f"the number written, {letter_number!r}, is one digit "
                                           f"away from {close[0].provider_number}")
    if prisoner_id is not None:
        letter = session.scalar(select(Letter).where(Letter.prisoner_id == prisoner_id, *awaiting)
                                .order_by(Letter.submitted_at.desc()).limit(1))
        if letter is not None:
            return Suggestion(letter.id, "the most recent letter to this prisoner still "
                                         "awaiting a reply")
    if facility_id is not None:
        letters = list(session.scalars(
            select(Letter).join(Prisoner, Prisoner.id == Letter.prisoner_id)
            .where(Prisoner.facility_id == facility_id, *awaiting).limit(2)))
        if len(letters) == 1:
            return Suggestion(letters[0].id, "the only letter to this facility awaiting a reply")
    return None
