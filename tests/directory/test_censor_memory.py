"""The censor remembered: letters the censor stopped at a facility are weighed against the
next letters to it, through the real check step, the real status recording and the real
moderation page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway import actions
from gateway.lifecycle import move
from gateway.models import Letter
from gateway.states import LetterState as S
from gateway.web.accounts import create_user
from gateway.web.app import create_app
from tests.dashboard.conftest import login
from tests.intake.conftest import gateway_settings, gw, mail  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.directory, pytest.mark.rules]

STOPPED = [
    "Здравствуйте, Мария!\n\nЧитал, что адвокат подал жалобу, а суд опять отложил заседание "
    "по вашему делу. Все вспоминают Навального и говорят о нём.\n\nДержитесь,\nАнна",
    "Мария, добрый день!\n\nСлышала про приговор и про то, что следователь снова приходил. "
    "Адвокат говорит, что будет апелляция. Мы помним Навального.\n\nОльга",
]
REASON = "упоминание уголовного дела и политических деятелей"
ALIKE = ("Здравствуйте, Мария!\n\nКак вы? Слышал, что суд снова перенесли, адвокат надеется "
         "на апелляцию. Навального у нас вспоминают часто.\n\nСергей")
ORDINARY = ("Здравствуйте, Мария!\n\nУ нас в Твери весна: на реке сошёл лёд, во дворе поют "
            "скворцы. Я прочитала «Войну и мир» и теперь начала Чехова — рассказы "
            "короткие и смешные.\n\nВаша Вера")


def _censor(gw, letter_id: int) -> None:  # noqa: F811
    """The letter paid for and then stopped, as the status poller records it."""
    with gw.sessions() as session:
        letter = session.get(Letter, letter_id)
        for state in (S.READY, S.SUBMITTING, S.SUBMITTED):
            if letter.state != state:
                move(session, letter, state, note="test: on its way")
        actions.record_censored(session, gw.settings, letter, REASON)
        session.commit()


def test_a_letter_like_a_censored_one_is_held_with_the_history_shown(gw):  # noqa: F811
    gw.settings.confirm_senders = False
    for n, body in enumerate(STOPPED):
        [letter_id] = gw.send(mail("Петровой Марии", body, sender=f"w{n}@example.org"))
        _censor(gw, letter_id)
    # The second censorship's notice says what this facility tends to stop.
    last = gw.outbox("censored")[-1]
    text = " ".join(gw.message(last).get_body(("plain",)).get_content().split())
    assert "чаще всего не пропускает письма, где есть: уголовное дело" in text
    assert "most often stops letters that mention the criminal case" in text

    [alike] = gw.send(mail("Петровой Марии", ALIKE, sender="sergey@example.org"))
    [ordinary] = gw.send(mail("Петровой Марии", ORDINARY, sender="vera@example.org"))
    held = gw.letter(alike)
    assert held.state == S.HELD
    [memory] = [f for f in held.findings if f["rule"] == "censor_memory"]
    assert "навальный" in memory["reason_organizer"] and REASON in memory["reason_organizer"]
    assert not [f for f in gw.letter(ordinary).findings if f["rule"] == "censor_memory"]
    assert gw.letter(ordinary).state == S.READY
    notice = [m for m in gw.outbox("held") if m.letter_id == alike][0]
    told = " ".join(gw.message(notice).get_body(("plain",)).get_content().split())
    assert "Цензор этого учреждения недавно не пропустил похожее письмо" in told
    assert "Навальн" not in told.split("Цензор этого учреждения")[1][:200]  # not the other's words

    app = create_app(gw.settings)
    app.config.update(TESTING=True, DASHBOARD_DEFAULT_LOCALE="en")  # reads English texts
    with gw.sessions() as session:
        create_user(session, "moderator", "correct horse battery", "moderator")
        session.commit()
    client = app.test_client()
    assert login(client, "moderator", "correct horse battery").status_code == 302
    page = client.get("/moderation").get_data(as_text=True)
    card = page.split(f'id="letter-{alike}"')[1].split("</article>")[0]
    assert "What the censor at СИЗО-2 Москва stopped recently" in card
    assert REASON in card and "<td>2</td>" in card
    ordinary_card = page.split(f'id="letter-{ordinary}"')
    assert len(ordinary_card) == 1  # READY: not in the queue at all


def test_the_memory_fades_with_retention_to_topics_only(gw):  # noqa: F811
    """A stopped letter's text purged: only its topic codes remain to compare."""
    from gateway.pipeline.statuses import recent_censorships
    gw.settings.confirm_senders = False
    [letter_id] = gw.send(mail("Петровой Марии", STOPPED[0], sender="w@example.org"))
    _censor(gw, letter_id)
    with gw.sessions() as session:
        session.get(Letter, letter_id).body = None
        session.commit()
        [past] = recent_censorships(session, "77-sizo-2")
        assert past.text is None and "case" in past.topics
        assert session.scalar(select(Letter.id).where(Letter.id == letter_id))

