"""Volunteers taking from one queue at the same moment, in threads on a real database:
each letter is taken by exactly one of them, and every letter is taken."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from gateway.human import desk
from gateway.models import LetterEvent
from gateway.states import LetterState as S
from gateway.states import Reason as R
from tests.providers.conftest import make_letter

pytestmark = [pytest.mark.desk, pytest.mark.providers]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_no_letter_is_taken_twice(sessions, settings):
    with sessions() as session:
        ids = {make_letter(session, state=S.DESK, provider="desk").id for _ in range(12)}
        session.commit()
    taken: dict[str, list[int]] = {}
    start = threading.Barrier(6)

    def volunteer(name: str) -> None:
        mine = taken.setdefault(name, [])
        start.wait()
        while True:
            with sessions() as session:
                letter = desk.take(session, settings, name)
                session.commit()
                if letter is None:
                    return
                mine.append(letter.id)

    threads = [threading.Thread(target=volunteer, args=(f"v{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everyone = [i for got in taken.values() for i in got]
    assert sorted(everyone) == sorted(ids)  # all taken, none twice
    with sessions() as session:
        per_letter = session.execute(
            select(LetterEvent.letter_id, func.count()).where(
                LetterEvent.reason_code == R.DESK_TAKEN).group_by(LetterEvent.letter_id)).all()
    assert sorted(n for _, n in per_letter) == [1] * 12
