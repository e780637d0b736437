"""A prisoner who asked for a pause in letters (the lists' "can write" column, or the
prisoner form): their letters wait for a person, and "anyone" letters go elsewhere."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.states import LetterState as S
from tests.intake.conftest import gateway_settings, gw, mail  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.directory, pytest.mark.intake]

ORDINARY = ("Здравствуйте, Мария!\n\nУ нас в Твери весна: на реке сошёл лёд, во дворе поют "
            "скворцы. Я прочитала «Войну и мир» и теперь начала Чехова.\n\nВаша Вера")

def test_a_letter_to_someone_who_asked_for_a_pause_waits_for_a_person(gw):  # noqa: F811
    from gateway.models import Prisoner
    gw.settings.confirm_senders = False
    with gw.sessions() as session:
        session.scalar(select(Prisoner).where(Prisoner.code == "K102")).wants_letters = False
        session.commit()
    [letter_id] = gw.send(mail("Петровой Марии", ORDINARY, sender="vera@example.org"))
    letter = gw.letter(letter_id)
    assert letter.state == S.HELD
    assert [f["code"] for f in letter.findings if f["rule"] == "recipient"] == ["paused"]


def test_anyone_letters_skip_who_asked_for_a_pause(gw):  # noqa: F811
    from gateway.models import Prisoner
    gw.settings.confirm_senders = False
    with gw.sessions() as session:
        session.scalar(select(Prisoner).where(Prisoner.code == "K101")).wants_letters = False
        session.commit()
    ids = gw.send(*[mail("Любому", ORDINARY + f"\n\nP.S. {i}", sender=f"a{i}@example.org")
                    for i in range(3)])
    chosen = {gw.letter(i).prisoner_id for i in ids}
    with gw.sessions() as session:
        assert {session.get(Prisoner, pid).code for pid in chosen} == {"K102"}
