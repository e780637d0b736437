"""Group postcards: short greetings to one prisoner of an evening gathered into one letter,
paid once; each greeting checked alone (a held one does not hold the rest); each signer told
and forwarded the reply alone. The pure parts, then through the real checks on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from gateway import actions, campaign_progress, campaigns, postcards
from gateway.config import Settings
from gateway.models import (
    Campaign,
    CensorDecision,
    Evening,
    Letter,
    LetterEvent,
    Postcard,
    Prisoner,
    Reply,
    utcnow,
)
from gateway.providers.services import route
from gateway.replies.intake import forward_postcard
from gateway.states import LetterState as S
from tests.intake.conftest import GATEWAY, SECRET, mail

pytestmark = pytest.mark.campaigns

GREETINGS = ["С днём рождения! Держитесь, мы с вами.", "Обнимаем из Казани, ждём домой.",
             "Вы не одна. Весной будет легче, мы пишем и помним.",
             "Привет из Тбилиси! Здесь тепло и все за вас.", "Сил вам и терпения. Мы рядом."]
FULL = ("Здравствуйте, Мария!\n\n" + "Пишу вам длинное письмо о нашем городе, о книгах и о "
        "том, как мы живём. " * 12 + "\n\nОбнимаю")
PROFANE = "Ну и х*йня творится, держитесь!"


# -- the pure parts --------------------------------------------------------------------------

def test_only_short_named_photo_less_letters_of_a_gathering_scope_are_greetings():
    kw = dict(photos=0, anyone=False, gathers=True, human_carried=False, max_chars=600)
    assert postcards.is_greeting("Держитесь!", **kw)
    assert not postcards.is_greeting("x" * 601, **kw)
    assert postcards.is_greeting("x" * 600, **kw)
    assert not postcards.is_greeting("Держитесь!", **{**kw, "anyone": True})
    assert not postcards.is_greeting("Держитесь!", **{**kw, "photos": 1})
    assert not postcards.is_greeting("Держитесь!", **{**kw, "gathers": False})
    assert not postcards.is_greeting("Держитесь!", **{**kw, "human_carried": True})
    assert not postcards.is_greeting("   ", **kw)


def test_a_greeting_is_signed_with_a_first_name_only():
    assert postcards.signature("Анна Смирнова") == "Анна"
    assert postcards.signature("anna@example.org") == postcards.NAMELESS
    assert postcards.signature(None) == postcards.NAMELESS
    assert postcards.block("Держитесь!", "Анна Смирнова") == "Держитесь!\n— Анна"
    assert postcards.block("Держитесь!\n\nОбнимаю,\nАнна", "Анна") == "Держитесь!\n\nОбнимаю,\nАнна"


def test_pages_fill_and_the_saving_is_the_letters_less_the_postcard():
    # 2,500 characters a page: a frame of 200, nine greetings of 2,000 with their eight
    # blank lines between and the one before the tenth: 282 characters are left.
    assert postcards.fits(200, 2000, 9, 282, page_chars=2500, pages=1)
    assert not postcards.fits(200, 2000, 9, 283, page_chars=2500, pages=1)
    assert postcards.fits(200, 2000, 9, 283, page_chars=2500, pages=2)
    assert postcards.saving([Decimal("110.00")] * 30, Decimal("165.00")) == Decimal("3135.00")


def test_the_postcard_names_the_evening_and_the_organization_and_no_surname():
    p = Prisoner(code="K102", last_name="Петрова", first_name="Мария", middle_name="Сергеевна",
                 facility_name="x", facility_id="y")
    text = postcards.compose(p, [postcards.block(g, n) for g, n in
                                 zip(GREETINGS[:2], ["Анна Смирнова", "Олег Петров"], strict=True)],
                             occasion="вечер писем, Тбилиси, 07.12.2026", org_name="Письма")
    assert text.startswith("Здравствуйте, Мария Сергеевна!")
    assert "вечер писем, Тбилиси" in text and text.rstrip().endswith("Письма")
    assert "— Анна" in text and "— Олег" in text
    assert "Смирнова" not in text and "Петров\n" not in text


# -- through the checks ------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway_settings(request, tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path}/gateway.db" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    return Settings(database_url=url, secret_key=SECRET, gateway_address=GATEWAY,
                    org_reply_email="replies@gw.example", broker_url="redis://127.0.0.1:1/0",
                    confirm_senders=False, sender_daily_limit=1000)


@pytest.fixture
def gw(gw):
    with gw.sessions() as session:
        session.add(Campaign(tag="8марта", title="8 марта"))
        session.commit()
    return gw


@pytest.fixture
def evening(gw):
    with gw.sessions() as session:
        found = Evening(code="ve-tbil", city="Тбилиси", held_on=date.today())
        session.add(found)
        session.commit()
    return campaigns.plus_address(GATEWAY, "ve-tbil")


def to(address: str, subject: str, body: str, i: int) -> bytes:
    raw = mail(subject, body, sender=f"Writer{i} Surname{i} <w{i}@example.org>")
    return raw.replace(f"To: {GATEWAY}".encode(), f"To: {address}".encode())


def states(gw, ids):
    with gw.sessions() as session:
        return [session.get(Letter, i).state for i in ids]


def close_all(gw) -> list[Letter]:
    with gw.sessions() as session:
        made = [actions.close_postcard(session, gw.settings, pid, actor="test", why="test")
                for pid in session.scalars(select(Postcard.id).where(
                    Postcard.closed_at.is_(None)))]
        session.commit()
        return [session.get(Letter, m.id) for m in made if m is not None]


def test_greetings_gather_and_a_held_one_stays_out(gw, evening):
    greet = gw.receive(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS)])
    other = gw.receive(to(evening, "Петровой Марии", FULL, 10),
                       to(evening, "Любому", GREETINGS[0], 11),
                       to(evening, "Петровой Марии", PROFANE, 12))
    result = gw.check(greet + other)
    assert states(gw, greet) == ["GATHERED"] * 5
    assert states(gw, other) == ["READY", "READY", "HELD"]
    assert sorted(result.ready) == sorted(other[:2])  # nothing of the postcard is submitted yet
    with gw.sessions() as session:
        [card] = session.scalars(select(Postcard)).all()
        assert card.greetings == 5 and card.closed_at is None and card.letter_id is None
        g = session.get(Letter, greet[0])
        assert g.postcard_id == card.id and g.price is None  # not paid on its own
        assert card.own_letters_rub == Decimal("110.00") * 5  # a page and a reply form each
        assert [e.reason_code for e in g.events][-1] == "gathered"
    [letter] = close_all(gw)
    assert letter.state == S.READY and letter.next_attempt_at is not None
    assert letter.sender_sealed is None and letter.writer_name is None  # the org signs it
    for i in range(5):
        assert f"— Writer{i}" in letter.rendered and f"Surname{i}" not in letter.rendered
    assert "@" not in letter.rendered and PROFANE not in letter.rendered
    assert letter.pages == 1 and letter.price == Decimal("110.00")
    with gw.sessions() as session:
        saved = postcards.savings(session, evening_id=letter.evening_id)
        assert (saved.postcards, saved.greetings, saved.saved_rub) == (1, 5, Decimal("440.00"))
        # The evening counts its writers' letters, not the postcard's letter as one more.
        counts = campaign_progress.counts(session, evening_id=letter.evening_id)
        assert counts.received == 8 and counts.held == 1
        event = session.scalar(select(LetterEvent).where(LetterEvent.letter_id == letter.id))
        assert (event.from_state, event.to_state, event.reason_code) == \
            (None, "READY", "postcard_closed")


def test_a_full_page_closes_the_postcard_and_the_next_greeting_opens_another(gw, evening):
    gw.settings.postcard_max_pages = 1
    long_greeting = "Держитесь! " + "Мы помним о вас каждый день. " * 18  # ~530 characters
    ids = gw.receive(*[to(evening, "Петровой Марии", long_greeting + str(i), i)
                       for i in range(10)])
    result = gw.check(ids)
    with gw.sessions() as session:
        cards = session.scalars(select(Postcard).order_by(Postcard.id)).all()
        closed = [c for c in cards if c.letter_id is not None]
        assert len(cards) >= 3 and len(closed) == len(cards) - 1
        assert sorted(result.ready) == sorted(c.letter_id for c in closed)  # submitted now
        for c in closed:
            assert session.get(Letter, c.letter_id).pages == 1 and c.pages == 1
        assert sum(c.greetings for c in cards) == 10
    assert states(gw, ids) == ["GATHERED"] * 10


def test_a_held_greeting_approved_joins_the_open_postcard_or_the_next(gw, evening):
    [held] = gw.receive(to(evening, "Петровой Марии", PROFANE, 1))
    [first] = gw.receive(to(evening, "Петровой Марии", GREETINGS[0], 2))
    gw.check([held, first])
    approve = lambda: actions.approve(  # noqa: E731
        session, session.get(Letter, held), route("http", gw.settings), "moderator",
        settings=gw.settings)
    with gw.sessions() as session:
        assert approve() is False
        session.commit()
        card = session.scalar(select(Postcard))
        assert session.get(Letter, held).postcard_id == card.id and card.greetings == 2
    # Held again, approved after that postcard went: it opens the next one.
    with gw.sessions() as session:
        actions.defer(session, session.get(Letter, held), "moderator", "look again")
        session.commit()
    close_all(gw)
    with gw.sessions() as session:
        assert approve() is False
        session.commit()
        cards = session.scalars(select(Postcard).order_by(Postcard.id)).all()
        assert len(cards) == 2 and cards[1].closed_at is None
        assert session.get(Letter, held).postcard_id == cards[1].id
    [second] = close_all(gw)
    assert "х*йня" in second.rendered and GREETINGS[0] not in second.rendered


def test_a_campaign_gathers_only_when_its_organizer_turned_postcards_on(gw):
    plus = campaigns.plus_address(GATEWAY, "8марта")
    [off] = gw.send(to(plus, "Петровой Марии", GREETINGS[0], 1))
    with gw.sessions() as session:
        for c in session.scalars(select(Campaign)):
            c.postcards = True
        session.commit()
    [on] = gw.send(to(plus, "Петровой Марии", GREETINGS[1], 2))
    assert states(gw, [off, on]) == ["READY", "GATHERED"]


def test_the_window_closes_a_postcard_and_the_sweep_sees_none_of_it_before(gw, evening):
    gw.settings.postcard_window_minutes = 30
    ids = gw.send(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS[:3])])
    with gw.sessions() as session:
        assert postcards.close_due(session, gw.settings) == []
        made = postcards.close_due(session, gw.settings, now=utcnow() + timedelta(minutes=31))
        session.commit()
        assert len(made) == 1
        assert postcards.close_due(session, gw.settings, now=utcnow() + timedelta(days=1)) == []
    assert states(gw, ids) == ["GATHERED"] * 3


def test_sent_then_the_reply_reaches_each_signer_alone(gw, evening):
    ids = gw.send(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS[:3])])
    [card] = close_all(gw)
    with gw.sessions() as session:
        letter = session.get(Letter, card.id)
        actions.start_attempts(session, [letter])  # the usual claim: READY -> SUBMITTING
        actions.record_submitted(session, gw.settings, letter, "FP-1", price=Decimal("110"),
                                 how="by API", notify=False)
        sent = actions.notify_sent(session, gw.settings, [letter])
        session.commit()
        assert sorted(sent) == sorted(ids)  # the postcard's letter has nobody to tell
    assert states(gw, ids) == ["SUBMITTED"] * 3
    notices = gw.outbox("sent")
    assert sorted(gw.recipient(n) for n in notices) == [f"w{i}@example.org" for i in range(3)]
    for n in notices:
        assert "FP-1" in gw.message(n).get_body(("plain",)).get_content()
    with gw.sessions() as session:
        reply = Reply(source="api", external_id="r1", letter_number="FP-1")
        session.add(reply)
        session.flush()
        card_row = session.scalar(select(Postcard))
        mail_ids = forward_postcard(session, gw.settings, reply, card_row,
                                    [("image/jpeg", b"\xff\xd8\xff scan")])
        assert reply.letter_id == card.id and reply.state == "FORWARDED"
        # Routed twice (a person confirms a match already forwarded): nobody gets a second.
        again = forward_postcard(session, gw.settings, reply, card_row,
                                 [("image/jpeg", b"\xff\xd8\xff scan")])
        session.commit()
        assert len(mail_ids) == 3 and again == [] and reply.state == "DUPLICATE"
        assert session.get(Letter, card.id).state == S.DELIVERED
    assert states(gw, ids) == ["DELIVERED"] * 3
    forwards = gw.outbox("reply")
    assert len(forwards) == 3
    for i, row in enumerate(sorted(forwards, key=lambda r: gw.recipient(r))):
        assert gw.recipient(row) == f"w{i}@example.org"
        raw = gw.message(row).as_string()
        others = [j for j in range(3) if j != i]
        assert not any(f"w{j}@example.org" in raw or f"Writer{j}" in raw for j in others)


def test_a_censored_postcard_is_told_to_each_signer(gw, evening):
    ids = gw.send(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS[:2])])
    [card] = close_all(gw)
    with gw.sessions() as session:
        letter = session.get(Letter, card.id)
        actions.start_attempts(session, [letter])
        actions.record_submitted(session, gw.settings, letter, "FP-2", how="by API")
        actions.record_censored(session, gw.settings, letter, "Не прошло цензуру")
        session.commit()
    assert states(gw, ids) == ["CENSORED"] * 2
    assert sorted(gw.recipient(n) for n in gw.outbox("censored")) == \
        ["w0@example.org", "w1@example.org"]
    with gw.sessions() as session:  # the censor's memory keeps the postcard once
        assert session.query(CensorDecision).count() == 1
    assert not [r for r in gw.outbox() if r.letter_id == card.id]


def test_the_purge_forgets_a_postcard_with_its_greetings(gw, evening):
    from gateway.retention import purge

    ids = gw.send(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS[:2])])
    [card] = close_all(gw)
    with gw.sessions() as session:
        letter = session.get(Letter, card.id)
        actions.start_attempts(session, [letter])
        actions.record_submitted(session, gw.settings, letter, "FP-3", how="by API")
        actions.record_delivered(session, gw.settings, letter)
        session.commit()
    assert states(gw, ids) == ["DELIVERED"] * 2
    done = purge(gw.sessions, gw.settings, now=utcnow() + timedelta(days=400))
    assert done.letters == 3
    with gw.sessions() as session:
        for letter in session.scalars(select(Letter)):
            assert letter.body is None and letter.rendered is None and letter.writer_name is None
        row = session.scalar(select(Postcard))  # counts and money stay, no text to forget
        assert row.greetings == 2 and row.price_rub is not None


def test_a_discarded_postcard_leaves_its_greetings_to_a_person_not_lost(gw, evening):
    ids = gw.send(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS[:2])])
    [card] = close_all(gw)
    with gw.sessions() as session:
        actions.discard(session, session.get(Letter, card.id), "organizer", "wrong prisoner")
        session.commit()
    assert states(gw, ids) == ["HELD"] * 2
    with gw.sessions() as session:  # approved, each joins a new postcard
        for i in ids:
            actions.approve(session, session.get(Letter, i), route("http", gw.settings),
                            "moderator", settings=gw.settings)
        session.commit()
    assert states(gw, ids) == ["GATHERED"] * 2
    [again] = close_all(gw)
    assert again.id != card.id and all(GREETINGS[i] in again.rendered for i in range(2))
    with gw.sessions() as session:  # still priced as a letter each: the saving is right
        row = session.scalar(select(Postcard).where(Postcard.letter_id == again.id))
        assert row.own_letters_rub == Decimal("220.00")


def test_a_greeting_gathered_while_its_postcard_closes_is_in_it_or_in_the_next(gw, evening):
    """The closer's compare-and-set waits on the row the gathering greeting has counted
    itself into: when that commits, the closer composes with it. Nothing is left behind in
    a closed postcard."""
    import threading
    import time as clock

    [first] = gw.send(to(evening, "Петровой Марии", GREETINGS[0], 0))
    [late] = gw.receive(to(evening, "Петровой Марии", GREETINGS[1], 1))
    made: list = []

    def close() -> None:
        made.extend(close_all(gw))

    with gw.sessions() as session:
        prisoner_id, evening_id = session.execute(select(
            Letter.prisoner_id, Letter.evening_id).where(Letter.id == first)).one()
    with gw.sessions() as session:  # as the checks leave a greeting, then gathered
        letter = session.get(Letter, late)
        letter.body, letter.writer_name = GREETINGS[1], "Гость1"
        letter.prisoner_id, letter.evening_id = prisoner_id, evening_id
        actions.gather(session, gw.settings, letter, route("http", gw.settings))
        closer = threading.Thread(target=close)
        closer.start()
        clock.sleep(0.5)  # the closer is waiting on the postcard's row now
        session.commit()
    closer.join(timeout=30)
    assert not closer.is_alive()
    [card] = made
    assert GREETINGS[0] in card.rendered and GREETINGS[1] in card.rendered
    with gw.sessions() as session:
        left = session.scalars(select(Letter).where(
            Letter.state == S.GATHERED, Letter.postcard_id.in_(
                select(Postcard.id).where(Postcard.closed_at.is_not(None),
                                          Postcard.letter_id != card.id)))).all()
        assert left == []


def test_a_refused_postcard_is_told_to_each_signer_in_plain_words(gw, evening):
    from gateway.providers.base import PermanentError
    from gateway.providers.refusals import explain

    ids = gw.send(*[to(evening, "Петровой Марии", g, i) for i, g in enumerate(GREETINGS[:2])])
    [card] = close_all(gw)
    with gw.sessions() as session:
        letter = session.get(Letter, card.id)
        actions.start_attempts(session, [letter])
        actions.after_attempt(session, letter, S.FAILED, "provider refused", "provider_refused",
                              None)
        mail = actions.notify_refused(session, gw.settings, letter, explain(
            PermanentError("bad", code="validation", fields={"text": "too long"}, status=422)))
        session.commit()
    assert len(mail) == 2 and states(gw, ids) == ["GATHERED"] * 2  # they wait with it
    rows = gw.outbox("refused")
    assert sorted(gw.recipient(r) for r in rows) == ["w0@example.org", "w1@example.org"]
    text = gw.message(rows[0]).get_body(("plain",)).get_content()
    # Russian first, English below; nothing for the signer to fix: a person decides.
    assert text.index("Служба тюремной почты не приняла") < text.index("Hello")
    assert "Вам ничего делать не нужно" in text
    with gw.sessions() as session:  # a person retries: the greetings go with it after all
        letter = session.get(Letter, card.id)
        actions.retry(session, letter, "organizer")
        actions.start_attempts(session, [letter])
        actions.record_submitted(session, gw.settings, letter, "FP-4", how="by API")
        session.commit()
    assert states(gw, ids) == ["SUBMITTED"] * 2
