"""A letter evening end to end on real servers (Dovecot IMAP, Redis, a Celery worker process,
beat, the simulator over HTTP, the SMTP sink): thirty participants write to the evening's
address. Eighteen short greetings to one prisoner (one with starred-out swearing), six full
letters to named prisoners, six "to anyone". The organizer closes the postcard; the
simulator shows one postcard and twelve letters paid, each "anyone" spread over the
campaign's three; each of the seventeen signers gets one "sent" and, after the prisoner
answers, one forwarded scan with only their own address on it; the held greeting is alone
on the moderation queue."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from tests.e2e.stack import WARM, Stack, letter

pytestmark = [pytest.mark.e2e, pytest.mark.campaigns, pytest.mark.timeout(420)]

POOL = ("K103", "K104", "K105")  # the evening's campaign: "anyone" goes to one of them
SHORT = ["С днём рождения, Мария! Держитесь, мы с вами.", "Обнимаем из Тбилиси, ждём домой!",
         "Вы не одна. Весной будет легче.", "Сил вам и терпения, мы помним."]
PROFANE = "Ну и х*йня творится вокруг, держитесь!"
# A letter of its own: longer than GATEWAY_POSTCARD_MAX_CHARS (600).
FULL = WARM.replace("Обнимаю,", "Расскажу ещё: по выходным мы с друзьями ходим в парк, "
                    "кормим уток и говорим о вас. В библиотеке открыли новый зал, там тихо "
                    "и светло, и я подолгу сижу у окна с книгой. Недавно прочитала «Дар» "
                    "Набокова и думала, понравился бы он вам. Напишите, что вам прислать: "
                    "книги, журналы, открытки с видами города? Мы соберём и отправим, как "
                    "только узнаем, что можно.\n\nОбнимаю,")


def greeting(i: int) -> str:
    return PROFANE if i == 7 else SHORT[i % len(SHORT)] + f" ({i})"


def signer(i: int) -> str:
    return f"g{i}@example.org"


def test_an_evening_of_thirty_one_postcard_twelve_letters_each_signer_told_alone(
        make_stack, database_url):
    stack: Stack = make_stack(database_url)
    stack.start(processes=())
    assert len(FULL) > 600 >= max(len(greeting(i)) for i in range(18))
    stack.gateway("campaigns", "create", "vecher", "--title", "Вечер писем",
                  *[arg for code in POOL for arg in ("--prisoner", code)])
    code = stack.gateway("evenings", "create", "--city", "Тбилиси", "--date",
                         date.today().isoformat(), "--campaign", "vecher").strip()
    to = f"letters+{code}@gateway.local"

    def write(subject: str, body: str, sender: str) -> None:
        raw = letter(subject, body, sender=sender)
        stack.send(raw.replace(b"To: letters@gateway.local", f"To: {to}".encode()))

    for i in range(18):  # the greetings, signed by first names Гость0..Гость17
        write("Петровой Марии", greeting(i), f"Гость{i} Фамилиев <{signer(i)}>")
    for i, whom in enumerate(["Иванову Ивану"] * 3 + ["Петровой Марии"] * 3):
        write(whom, FULL + f"\n\nP.S. {i}", f"Писатель{i} <full{i}@example.org>")
    for i in range(6):
        write("Любому", WARM + f"\n\nP.S. любому {i}", f"Кто-то{i} <any{i}@example.org>")
    for name in ("worker", "beat", "watch"):
        stack.start_process(name)

    def settled():
        rows = stack.query("SELECT l.id, l.state, l.reason, l.sender_hash, p.code FROM letters l "
                           "LEFT JOIN prisoners p ON p.id = l.prisoner_id")
        states = Counter(r["state"] for r in rows)
        return rows if len(rows) == 30 and states == {"GATHERED": 17, "SUBMITTED": 12,
                                                       "HELD": 1} else None

    rows = stack.wait("17 gathered, 12 letters sent, 1 held", settled, timeout=240)
    assert len(stack.sim_letters()) == 12  # nothing of the postcard is paid yet

    stack.gateway("postcards", "close", "--evening", code)  # the organizer: "send it now"
    at_sim = stack.wait("the postcard at the simulator",
                        lambda: (lambda s: s if len(s) == 13 else None)(stack.sim_letters()),
                        timeout=60)
    assert all(m["charges"] == 1 for m in at_sim)
    [card] = [m for m in at_sim if "Гость0" in m["text"]]
    assert card["recipient"]["last_name"] == "Петрова"
    assert card["author"]["name"] == "Письма поддержки"  # the organization, no signer
    signed = set(re.findall(r"— (Гость\d+)", card["text"]))
    assert signed == {f"Гость{i}" for i in range(18) if i != 7}
    assert "х*йня" not in card["text"] and "Фамилиев" not in card["text"]
    assert "@" not in json.dumps(card, ensure_ascii=False).replace("replies@gateway.local", "")
    # "Anyone" went to the campaign's three, fairly; the twelve letters are one each.
    anyone = Counter(r["code"] for r in rows if r["state"] == "SUBMITTED"
                     and r["code"] in POOL)
    assert set(anyone) == set(POOL) and max(anyone.values()) - min(anyone.values()) <= 1

    [held] = stack.query("SELECT id, body FROM letters WHERE state = 'HELD'")
    assert held["body"].strip() == PROFANE  # alone on the moderation queue

    def told(kind_subject: str, who: str) -> list:
        return [m for m in stack.mail_to(who) if kind_subject in str(m.message["Subject"])]

    signers = [signer(i) for i in range(18) if i != 7]
    stack.wait("a 'sent' notice to each signer",
               lambda: all(told("Письмо отправлено", s) for s in signers), timeout=60)
    number = card["number"]
    for s in signers:
        [sent] = told("Письмо отправлено", s)
        assert sent.rcpt_tos == [s]
        assert number in sent.message.get_body(("plain",)).get_content()
    assert not told("Письмо отправлено", signer(7))

    r = stack.sim("POST", f"/_sim/letters/{number}/reply", json={"pages": 1, "by_email": True})
    assert r.status_code in (200, 201), r.text

    def forwards(who: str) -> list:
        return [m for m in stack.mail_to(who) if any(
            p.get_content_type() == "image/jpeg" for p in m.message.iter_attachments())]

    stack.wait("the scan forwarded to each signer",
               lambda: all(forwards(s) for s in signers), timeout=90)
    stack.wait("both copies of the reply recorded",
               lambda: len(stack.query("SELECT id FROM replies")) == 2, timeout=30)
    time.sleep(3)  # the sweeper and the pollers run every second or two: room to misbehave
    for s in signers:
        [fwd] = forwards(s)
        assert fwd.rcpt_tos == [s]
        raw = fwd.message.as_string()
        assert not any(o in raw for o in signers if o != s)
        assert len(told("Письмо отправлено", s)) == 1
    assert not forwards(signer(7))
    assert sorted(r["state"] for r in stack.query("SELECT state FROM replies")) == \
        ["DUPLICATE", "FORWARDED"]
    states = Counter(r["state"] for r in stack.query(
        "SELECT state FROM letters WHERE postcard_id IS NOT NULL"))
    assert states == {"DELIVERED": 17}, states  # the held one never joined a postcard

    # The money: seventeen letters of their own against one postcard.
    out = stack.gateway("postcards", "savings", "--evening", code)
    figures = dict(kv.split("=") for kv in out.split())
    assert figures["postcards"] == "1" and figures["greetings"] == "17"
    assert Decimal(figures["own_letters_rub"]) == Decimal("110.00") * 17
    assert Decimal(figures["saved_rub"]) == \
        Decimal(figures["own_letters_rub"]) - Decimal(figures["postcards_rub"]) > 0


def test_killing_the_worker_mid_postcard_charges_once_and_tells_each_signer_once(
        make_stack, tmp_path):
    """The postcard is a letter on the usual path: a worker killed while its call is in
    flight leaves it SUBMITTING, the sweeper replays its key, the service charges once, and
    each signer hears "sent" once."""
    stack: Stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}")
    stack.start(processes=())
    code = stack.gateway("evenings", "create", "--city", "Пермь", "--date",
                         date.today().isoformat()).strip()
    for i in range(5):
        raw = letter("Петровой Марии", SHORT[i % len(SHORT)] + f" ({i})",
                     sender=f"Гость{i} <{signer(i)}>")
        stack.send(raw.replace(b"To: letters@gateway.local",
                               f"To: letters+{code}@gateway.local".encode()))
    for name in ("worker", "beat", "watch"):
        stack.start_process(name)
    stack.wait("five greetings gathered", lambda: [r["state"] for r in stack.letters()]
               == ["GATHERED"] * 5, timeout=120)
    stack.sim("POST", "/_sim/faults", json={"latency_ms": 2500, "error_rate": 0})
    stack.gateway("postcards", "close", "--evening", code)
    stack.wait("the postcard's call in flight", lambda: any(
        r["state"] == "SUBMITTING" for r in stack.letters()), timeout=60)
    stack.kill("worker")
    stack.sim("POST", "/_sim/faults", json={"latency_ms": 0, "error_rate": 0})
    stack.start_process("worker")
    stack.wait("the postcard and its greetings SUBMITTED", lambda: [
        r["state"] for r in stack.letters()] == ["SUBMITTED"] * 6, timeout=120)
    [card] = stack.sim_letters()
    assert card["charges"] == 1
    stack.wait("a 'sent' notice to each signer", lambda: all(
        stack.mail_to(signer(i)) for i in range(5)), timeout=60)
    time.sleep(3)
    for i in range(5):
        assert [m.rcpt_tos for m in stack.mail_to(signer(i))] == [[signer(i)]]
