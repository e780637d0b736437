"""check_letters reads a batch together (letters, parse, writers, their recent letters) but
must decide each letter exactly as if it were checked alone, in order; and its SQL must not
grow with the batch."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import event, select

from gateway.config import Settings
from gateway.crypto import address_hash
from gateway.db import engine_for, session_factory
from gateway.devstack.postgres import throwaway_database
from gateway.models import (
    Base,
    Letter,
    LetterEvent,
    OutboundMail,
    Sender,
    Suppression,
    utcnow,
)
from gateway.pipeline.checking import CheckResult, check_letters
from tests.intake.conftest import (
    GATEWAY,
    LETTERS,
    SECRET,
    WARM,
    Gateway,
    mail,
    seeded_gateway,
)

pytestmark = pytest.mark.intake

ANNA = "Анна Смирнова <anna@example.org>"
BORIS = "Борис <boris@example.org>"
VERA = "Вера <vera@example.org>"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request, tmp_path) -> Iterator[Callable[[], str]]:
    """Fresh databases of one kind: PostgreSQL too, for its row locks and its upserts."""
    urls: list[str] = []
    with ExitStack() as stack:
        names = itertools.count()
        first = [request.getfixturevalue("pg_url")] if request.param == "postgres" else []

        def new() -> str:
            if request.param == "sqlite":
                urls.append(f"sqlite:///{tmp_path}/{next(names)}.db")
            else:  # pg_url skips (or fails in CI) without a server
                urls.append(first.pop() if first else stack.enter_context(throwaway_database()))
            return urls[-1]

        yield new
        for url in urls:
            engine_for(url).dispose()


def gateway(url: str) -> Gateway:
    settings = Settings(database_url=url, secret_key=SECRET,
                        gateway_address=GATEWAY, org_reply_email="replies@gw.example",
                        broker_url="redis://127.0.0.1:1/0", confirm_senders=True,
                        sender_daily_limit=3, own_authserv_id="mx.gw.example")
    return seeded_gateway(settings)


def outcome(gw: Gateway) -> dict:
    with gw.sessions() as session:
        return {
            "letters": [(x.state, x.reason, x.findings, x.prisoner_id, x.writer_name, x.body,
                         x.rendered, x.pages, x.price) for x in
                        session.scalars(select(Letter).order_by(Letter.id))],
            "events": [(e.letter_id, e.from_state, e.to_state, e.note) for e in  # by letter:
                       session.scalars(select(LetterEvent)  # receiving interleaves otherwise
                                       .order_by(LetterEvent.letter_id, LetterEvent.id))],
            "notices": [(o.kind, o.letter_id, o.state) for o in
                        session.scalars(select(OutboundMail).order_by(OutboundMail.id))],
            "writers": sorted(((s.pseudonym, s.verified_at is not None, s.letters_today)
                               for s in session.scalars(select(Sender))), key=str),
            "suppressed": sorted(s.reason for s in session.scalars(select(Suppression))),
        }


def signed(subject: str, body: str, sender: str, **headers: str) -> bytes:
    """As our MTA marks mail whose domain vouched for it."""
    return mail(subject, body, sender=sender, **headers,
                Authentication_Results="mx.gw.example; dmarc=pass header.from=example.org")


def replying_to(gw: Gateway, letter_id: int, body: str, sender: str) -> bytes:
    """The writer's answer to our notice about this letter."""
    [row] = [r for r in gw.outbox() if r.letter_id == letter_id]
    return mail("Re: " + str(gw.message(row)["Subject"]), body, sender=sender,
                In_Reply_To=gw.message(row)["Message-ID"])


def test_a_batch_is_decided_as_its_letters_one_by_one(database) -> None:
    together, alone = gateway(database()), gateway(database())
    for gw in (together, alone):
        [borises] = gw.send(mail("Петровой Марии", LETTERS[0], sender=BORIS))  # waits
        gw.send(mail("Иванову Ивану", LETTERS[1], sender=VERA))  # waits too
        with gw.sessions() as session:  # Anna is a returning, verified writer
            session.add(Sender(address_hash=address_hash(SECRET, "anna@example.org"),
                               verified_at=utcnow()))
            session.commit()

    def batch(gw: Gateway) -> list[bytes]:
        return [
            signed("Петровой Марии", LETTERS[2], ANNA),
            signed("Петровой Марии", LETTERS[2], ANNA),  # the same text again: held
            signed("Иванову Ивану", "Подпись: Лиса\n\n" + LETTERS[3], ANNA),
            signed("Иванову Ивану", LETTERS[4], ANNA),  # over the daily limit of 3
            mail("Петровой Марии", LETTERS[1], sender=ANNA),  # unsigned: asked to confirm
            b"   ",  # unreadable
            signed("Автоответ", "Я в отпуске", ANNA, Auto_Submitted="auto-replied"),
            replying_to(gw, borises, "Да, это я.", BORIS),  # releases Boris's first letter
            signed("Петровой Марии", LETTERS[5], BORIS),  # now confirmed: goes on
            mail("СТОП", "", sender=VERA),  # Vera's waiting letter goes to a person
            mail("Кому-то", WARM, sender=VERA),  # no notice: she asked for none
            signed("Петровой Марии", f"Пишите мне: anna@example.org\n{WARM}", ANNA),
        ]

    together.check(together.receive(*batch(together)))
    for raw in batch(alone):
        alone.check(alone.receive(raw))
    expected = outcome(alone)
    assert outcome(together) == expected
    states = [x[0] for x in expected["letters"]]
    # The scenario covers what it means to: every kind of outcome, in one batch.
    assert {"READY", "HELD", "REJECTED", "IGNORED", "QUARANTINED", "AWAITING_SENDER"} \
        <= set(states)
    assert any("daily limit" in (x[1] or "") for x in expected["letters"])
    assert any(f and f[0]["rule"] == "duplicate" for f in (x[2] for x in expected["letters"]))
    assert ("Лиса", True, 4) in expected["writers"]
    assert expected["letters"][0][0] == "READY"  # Boris's, released and checked in the batch


def test_a_batch_costs_the_same_sql_whatever_its_size(database) -> None:
    gw = gateway(database())
    gw.settings.confirm_senders = False
    gw.settings.confirm_failed_authentication = False  # own_authserv_id is set here
    gw.settings.sender_daily_limit = 100
    statements: list[str] = []
    event.listen(engine_for(gw.settings.database_url), "before_cursor_execute",
                 lambda _c, _cur, sql, *_a: statements.append(sql))

    def cost(n: int, offset: int) -> int:
        raws = [mail("Петровой Марии" if i % 2 else "Иванову Ивану",
                     f"{LETTERS[i % len(LETTERS)]}\n\nПисьмо {offset + i}.",
                     sender=f"Writer {offset + i} <w{offset + i}@example.org>")
                for i in range(n)]
        ids = gw.receive(*raws)
        statements.clear()
        result = gw.check(ids)
        assert len(result.ready) == n
        # SQLite inserts ORM rows one at a time (PostgreSQL in one statement): count the rest.
        return len([s for s in statements if not s.lstrip().upper().startswith("INSERT")])

    small, large = cost(5, 0), cost(20, 100)
    assert large == small


@pytest.mark.postgres
def test_two_workers_counting_one_writer_both_count(pg_url: str) -> None:
    """The daily count is kept in memory on a row locked for the batch: a second worker
    waits for the first to commit, then counts on from its figure."""
    from gateway.intake import writers

    Base.metadata.create_all(engine_for(pg_url))
    sessions = session_factory(pg_url)
    writer = address_hash(SECRET, "anna@example.org")
    first = sessions()
    [sender] = writers.senders_for(first, [writer]).values()  # created, and locked
    first.commit()
    [sender] = writers.senders_for(first, [writer]).values()
    assert writers.count_letter(sender) == 1
    counted: list[int] = []

    def second_worker() -> None:
        with sessions() as session:
            [same] = writers.senders_for(session, [writer]).values()
            counted.append(writers.count_letter(same))
            session.commit()

    thread = threading.Thread(target=second_worker)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive() and counted == []  # waits on the first worker's lock
    assert writers.count_letter(sender) == 2
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert counted == [3]
    engine_for(pg_url).dispose()


@pytest.mark.postgres
def test_a_letter_handed_to_two_workers_is_checked_once(pg_url: str) -> None:
    """The batch's letters are locked as they are read: the second worker waits, then
    finds the letter already moved on and leaves it."""
    gw = gateway(pg_url)
    gw.settings.confirm_senders = False
    gw.settings.confirm_failed_authentication = False  # own_authserv_id is set here
    [letter_id] = gw.receive(mail("Петровой Марии", WARM))
    first = gw.sessions()
    assert check_letters(first, [letter_id], gw.settings).ready == [letter_id]
    second: list[CheckResult] = []

    def second_worker() -> None:
        with gw.sessions() as session:
            second.append(check_letters(session, [letter_id], gw.settings))
            session.commit()

    thread = threading.Thread(target=second_worker)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive() and second == []  # waits on the first worker's lock
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert second[0].ready == []
    with gw.sessions() as session:
        moves = session.scalars(select(LetterEvent.to_state).where(
            LetterEvent.letter_id == letter_id)).all()
    assert moves == ["RECEIVED", "READY"]
    engine_for(pg_url).dispose()


def test_a_directory_edit_is_seen_by_the_next_batch(database) -> None:
    """Addressing keeps the last directory's name and code indexes (and what each subject
    word matched in them): a prisoner renamed or recoded between two batches is addressed
    by the new name and code in the second, never by the old ones."""
    from gateway.models import Prisoner

    gw = gateway(database())
    gw.settings.confirm_senders = False
    gw.settings.confirm_failed_authentication = False

    def prisoner_of(subject: str, n: int) -> tuple[str, int | None]:
        [letter_id] = gw.send(signed(subject, LETTERS[n], f"W{n} <w{n}@example.org>"))
        letter = gw.letter(letter_id)
        return letter.state, letter.prisoner_id

    with gw.sessions() as session:
        petrova = session.scalar(select(Prisoner).where(Prisoner.code == "K102"))
        ids = petrova.id
    assert prisoner_of("Петровой Марии", 0) == ("READY", ids)
    assert prisoner_of("K102", 1) == ("READY", ids)
    with gw.sessions() as session:
        petrova = session.get(Prisoner, ids)
        petrova.last_name, petrova.code = "Соколова", "K777"
        session.commit()
    assert prisoner_of("Соколовой Марии", 2) == ("READY", ids)
    assert prisoner_of("Петровой Марии", 3)[0] == "REJECTED"  # nobody of that name now
    assert prisoner_of("K777", 4) == ("READY", ids)
    assert prisoner_of("K102", 5)[0] == "REJECTED"


def test_messages_past_the_batchs_bytes_are_read_alone_with_the_same_outcome(
        database, monkeypatch) -> None:
    """A batch reads its messages together up to a number of bytes (fifty letters at 1 MB
    must not sit in memory at once); the rest are read one at a time, at their turn, and
    decided exactly as they would have been with the batch."""
    from gateway.pipeline import check_batch

    def scenario(gw: Gateway) -> list[int]:
        gw.settings.confirm_senders = False
        gw.settings.confirm_failed_authentication = False
        gw.settings.sender_daily_limit = 100
        return gw.receive(*[mail("Петровой Марии" if i % 2 else "Иванову Ивану",
                                 f"{LETTERS[i % len(LETTERS)]}\n\nПисьмо {i}.",
                                 sender=f"Writer {i} <w{i}@example.org>") for i in range(6)])

    roomy, tight = gateway(database()), gateway(database())
    roomy.check(scenario(roomy))
    alone: list[bytes] = []
    read_alone = check_batch.parse_message_bounded
    monkeypatch.setattr(check_batch, "parse_message_bounded",
                        lambda raw, **kw: alone.append(raw) or read_alone(raw, **kw))
    size = len(mail("Петровой Марии", f"{LETTERS[0]}\n\nПисьмо 0.", sender="w@example.org"))
    monkeypatch.setattr(check_batch, "_BATCH_INLINE_BYTES", 2 * size + 200)  # two of six
    result = tight.check(scenario(tight))
    assert len(alone) == 4  # the batch read two together, the other four alone
    assert len(result.ready) == 6
    assert outcome(tight) == outcome(roomy)
