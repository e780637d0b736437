"""The spine on real servers: Dovecot, Redis, a Celery worker process, the simulator over
HTTP, an aiosmtpd server, and SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.stack import REPLIES, WARM, letter

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

WRITER = "anna@example.org"


def test_letter_is_submitted_once_and_its_reply_reaches_the_writer_once(make_stack, database_url):
    stack = make_stack(database_url).start()
    stack.send(letter("Петровой Марии Сергеевне", WARM, sender=f"Анна Смирнова <{WRITER}>"))

    sent = stack.wait("the letter at the simulator", lambda: stack.sim_letters())
    assert len(sent) == 1
    at_provider = sent[0]
    assert at_provider["facility_id"] == "77-sizo-2"
    assert at_provider["recipient"]["last_name"] == "Петрова"
    assert at_provider["author"]["email"] == REPLIES
    assert at_provider["author"]["name"] == "Анна"
    assert "Мы все помним о вас" in at_provider["text"]
    assert WRITER not in json.dumps(at_provider, ensure_ascii=False).lower()
    assert "smirnova" not in json.dumps(at_provider).lower() and "Смирнова" not in at_provider["text"]

    number = stack.wait("the letter SUBMITTED", lambda: [
        r["provider_number"] for r in stack.letters() if r["state"] == "SUBMITTED"])[0]
    assert number == at_provider["number"]
    notice = stack.wait("the 'sent' notice", lambda: stack.mail_to(WRITER))[0]
    assert number in notice.message.get_body(("plain",)).get_content()
    assert notice.message["Auto-Submitted"].startswith("auto-")

    # The prisoner answers; the service offers the scan by API and by e-mail both.
    r = stack.sim("POST", f"/_sim/letters/{number}/reply", json={"pages": 2, "by_email": True})
    assert r.status_code in (200, 201), r.text

    def forwards():
        return [m for m in stack.mail_to(WRITER)
                if any(p.get_content_type() == "image/jpeg" for p in m.message.iter_attachments())]

    forward = stack.wait("the forwarded reply", forwards)[0]
    pages = [p for p in forward.message.iter_attachments()]
    assert len(pages) == 2 and pages[0].get_content()[:3] == b"\xff\xd8\xff"
    body = forward.message.get_body(("plain",)).get_content()
    assert "Петрова Мария" in body and number in body
    # Both copies of the reply arrive (API poll and reply mailbox); still one forward.
    stack.wait("both copies recorded", lambda: len(stack.query("SELECT id FROM replies")) == 2)
    time.sleep(3)
    assert len(forwards()) == 1
    states = sorted(r["state"] for r in stack.query("SELECT state FROM replies"))
    assert states == ["DUPLICATE", "FORWARDED"]
    assert all(m["charges"] == 1 for m in stack.sim_letters())
    # The reply is news of delivery: the letter is DELIVERED, and no 'delivered' notice follows.
    assert [r["state"] for r in stack.letters()] == ["DELIVERED"]
    assert sorted(r["kind"] for r in stack.query("SELECT kind FROM outbound_mail")) \
        == ["reply", "sent"]


def test_killing_the_worker_mid_pipeline_loses_nothing_and_charges_once(make_stack, tmp_path):
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}").start()
    # Slow the provider so submissions are in flight when the worker dies.
    stack.sim("POST", "/_sim/faults", json={"latency_ms": 1500, "error_rate": 0})
    names = ["Петровой Марии", "Иванову Ивану", "Сидоренко Олегу", "K105", "Ковалёву Петру"]
    for i, name in enumerate(names):
        stack.send(letter(name, WARM + f"\n\nP.S. {i}", sender=f"Writer {i} <w{i}@example.org>"))
    stack.wait("a submission in flight", lambda: any(
        r["state"] == "SUBMITTING" for r in stack.letters()), timeout=60)
    stack.kill("worker")  # SIGKILL to the whole group: parent and children
    stack.sim("POST", "/_sim/faults", json={"latency_ms": 0, "error_rate": 0})
    stack.start_process("worker")
    stack.wait("all five letters submitted", lambda: [r["state"] for r in stack.letters()]
               == ["SUBMITTED"] * 5, timeout=120)
    at_provider = stack.sim_letters()
    assert len(at_provider) == 5
    assert [m["charges"] for m in at_provider] == [1] * 5
    assert len({m["client_ref"] for m in at_provider}) == 5


def test_unknown_prisoner_gets_exactly_one_notice_and_nothing_is_submitted(make_stack, tmp_path):
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}").start()
    stack.send(letter("Неизвестному Адресату", WARM, sender=f"Анна <{WRITER}>"))
    stack.wait("the letter REJECTED", lambda: [r for r in stack.letters() if r["state"] == "REJECTED"])
    notice = stack.wait("the notice", lambda: stack.mail_to(WRITER))[0]
    assert notice.message["Auto-Submitted"] == "auto-replied"
    assert notice.message["In-Reply-To"]
    text = " ".join(notice.message.get_body(("plain",)).get_content().split())
    assert "не смогли понять, кому" in text and "could not tell who it is for" in text
    assert WRITER not in text
    time.sleep(3)  # the sweeper runs every second: give it the chance to misbehave
    assert len(stack.mail_to(WRITER)) == 1
    assert stack.sim_letters() == []


def test_the_same_message_seen_twice_is_one_letter(make_stack, tmp_path):
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}").start()
    raw = letter("Иванову Ивану Ивановичу", WARM.replace("Мария", "Иван"))
    stack.send(raw)
    stack.send(raw)  # the same message twice in the inbox
    stack.wait("the letter submitted", lambda: [r for r in stack.letters() if r["state"] == "SUBMITTED"])
    stack.send(raw)  # copied back after it was processed
    stack.wait("the inbox emptied", lambda: not stack.dovecot.messages("letters"))
    time.sleep(2)
    assert len(stack.letters()) == 1
    assert len(stack.query("SELECT id FROM inbound_messages")) == 1
    assert len(stack.sim_letters()) == 1
