"""Moving a letter through its state machine, always with an event in the same transaction.

Only gateway.actions calls these (tests/test_one_home.py checks it from the source): an
outcome is decided there once, with its reason code, its notice and its bookkeeping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from gateway.db import one_of
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
    _log(session, letter_id=letter.id, from_state=current, to_state=target, actor=actor,
         note=note, reason_code=code)


_TOGETHER = "lifecycle.events_together"


@contextmanager
def events_together(session: Session) -> Iterator[None]:
    """Within it, the events move() and annotate() write are kept and inserted in one
    multi-row INSERT when it ends, in the same transaction as the moves (a batch's
    outcomes: no ORM object for each). Nothing inside may read LetterEvent back; an
    exception drops them with the transaction it rolls back."""
    if _TOGETHER in session.info:  # an outer block writes them
        yield
        return
    events: list[dict] = []
    session.info[_TOGETHER] = events
    try:
        yield
    finally:
        del session.info[_TOGETHER]
    if events:
        session.execute(insert(LetterEvent), events)


def _log(session: Session, **event) -> None:
    together = session.info.get(_TOGETHER)
    if together is None:
        session.add(LetterEvent(**event))
    else:
        together.append(event)


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
    _log(session, letter_id=letter_id, from_state=current, to_state=target, actor=actor,
         note=note, reason_code=code)
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
        update(Letter).where(one_of(session, Letter.id, ids), Letter.state == expected)
        .values(state=target, **values)
        .returning(Letter.id, Letter.attempts)
        .execution_options(synchronize_session=False)).tuples().all())


def annotate(session: Session, letter: Letter, text: str, *, actor: str = "system",
         code: str | None = None) -> None:
    """An event that changes no state (a replay asked for, a price that differs)."""
    _log(session, letter_id=letter.id, from_state=letter.state, to_state=letter.state,
         actor=actor, note=text, reason_code=code)
