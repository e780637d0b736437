"""Moving a letter through its state machine, always with an event in the same transaction.

Only gateway.actions calls these (tests/test_one_home.py checks it from the source): an
outcome is decided there once, with its reason code, its notice and its bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway.models import Letter, LetterEvent, utcnow
from gateway.states import LetterState, check_transition


def move(session: Session, letter: Letter, target: LetterState, *, actor: str = "system",
         note: str | None = None, code: str | None = None) -> None:
    """Record a transition of a letter this session already holds."""
    current = LetterState(letter.state)
    check_transition(current, target)
    letter.state = target
    letter.updated_at = utcnow()
    if note is not None:
        letter.reason = note
    session.add(LetterEvent(letter_id=letter.id, from_state=current, to_state=target,
                            actor=actor, note=note, reason_code=code))


def claim(session: Session, letter_id: int, expected: Iterable[LetterState],
          target: LetterState, *, actor: str = "system", note: str | None = None,
          code: str | None = None) -> Letter | None:
    """Atomically take a letter from one of the expected states: a compare-and-set in SQL,
    so two workers handed the same id cannot both proceed."""
    letter = session.get(Letter, letter_id, populate_existing=True)
    if letter is None or letter.state not in {LetterState(s) for s in expected}:
        return None
    current = LetterState(letter.state)
    check_transition(current, target)
    result = session.execute(
        update(Letter)
        .where(Letter.id == letter_id, Letter.state == current)
        .values(state=target, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    session.refresh(letter)
    if note is not None:
        letter.reason = note
    session.add(LetterEvent(letter_id=letter_id, from_state=current, to_state=target,
                            actor=actor, note=note, reason_code=code))
    return letter


def claim_many(session: Session, letters: list[Letter], expected: LetterState,
               target: LetterState, **values) -> dict[int, object]:
    """One compare-and-set UPDATE for a batch read in `expected`: returns {id: attempts} of
    the letters this session took (others were taken first). The caller writes the events."""
    check_transition(expected, target)
    ids = [le.id for le in letters if le.state == expected]
    if not ids:
        return {}
    return dict(session.execute(
        update(Letter).where(Letter.id.in_(ids), Letter.state == expected)
        .values(state=target, **values)
        .returning(Letter.id, Letter.attempts)
        .execution_options(synchronize_session=False)).tuples().all())


def annotate(session: Session, letter: Letter, text: str, *, actor: str = "system",
         code: str | None = None) -> None:
    """An event that changes no state (a replay asked for, a price that differs)."""
    session.add(LetterEvent(letter_id=letter.id, from_state=letter.state, to_state=letter.state,
                            actor=actor, note=text, reason_code=code))
