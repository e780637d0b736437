"""Guidance by e-mail through the real inbox: Dovecot, a Celery worker, the outbox, SMTP."""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import letter

pytestmark = [pytest.mark.e2e, pytest.mark.directory, pytest.mark.timeout(240)]

WRITER = "olga@example.org"
OTHER = "anna@example.org"


def test_help_gets_one_guide_a_day_and_a_robot_gets_nothing(make_stack, database_url):
    stack = make_stack(database_url).start()
    # Another writer's letter, so the directory has history: it must never show in a guide.
    stack.send(letter("Петровой Марии Сергеевне", "Здравствуйте, Мария! " * 20,
                      sender=f"Анна Волкова <{OTHER}>"))
    stack.wait("the other letter submitted", lambda: [
        r for r in stack.letters() if r["state"] == "SUBMITTED"])

    stack.send(letter("помощь", "", sender=f"Ольга <{WRITER}>"))
    guide = stack.wait("the guide", lambda: stack.mail_to(WRITER))[0].message
    assert guide["Subject"] == "Как написать письмо / How to write a letter"
    assert guide["Auto-Submitted"] == "auto-replied"
    text = guide.get_body(("plain",)).get_content()
    html = guide.get_body(("html",)).get_content()
    assert text.index("Как написать человеку") < text.index("How to write to someone")
    assert "Кому сейчас особенно нужны письма" in text and "Who needs letters now" in text
    # The list names prisoners with the exact subject to use; the one with letters is last.
    assert "Тема письма: «Иванову Ивану Ивановичу»" in text
    assert "Тема письма: «Петровой" not in text
    assert "<strong>" in html and "Иванову Ивану Ивановичу" in html
    for part in (text, html):
        assert OTHER not in part and "Волкова" not in part and WRITER not in part

    guided = stack.wait("the request IGNORED with its reason", lambda: [
        r for r in stack.letters() if r["state"] == "IGNORED"])
    assert guided[0]["reason"].startswith("guidance sent")

    # Asked again the same day: the letter is recorded, no second guide.
    stack.send(letter("Help", "how to write?", sender=f"Ольга <{WRITER}>"))
    stack.wait("the second request recorded", lambda: len(
        [r for r in stack.letters() if r["state"] == "IGNORED"]) == 2)
    # A robot's "help": an auto-reply gets nothing.
    stack.send(letter("help", "", sender="Robot <robot@example.net>",
                      Auto_Submitted="auto-replied"))
    stack.wait("the robot's message recorded", lambda: len(
        [r for r in stack.letters() if r["state"] == "IGNORED"]) == 3)
    # An empty letter, though addressed, is a first-timer who did not know what to write.
    stack.send(letter("Петровой Марии Сергеевне", "", sender="Новичок <new@example.org>"))
    first = stack.wait("the guide for an empty letter", lambda: stack.mail_to("new@example.org"))
    assert "Кому сейчас особенно нужны письма" in first[0].message.get_body(("plain",)).get_content()
    time.sleep(3)  # the sweeper runs every second: give it the chance to misbehave
    assert len(stack.mail_to(WRITER)) == 1 and len(stack.mail_to("new@example.org")) == 1
    assert stack.mail_to("robot@example.net") == []
    assert [r["kind"] for r in stack.query(
        "SELECT kind FROM outbound_mail WHERE kind = 'guidance'")] == ["guidance"] * 2
    assert stack.sim_letters()[0]["recipient"]["last_name"] == "Петрова"
    assert len(stack.sim_letters()) == 1


def test_the_weekly_digest_task_mails_only_opted_in_organizers(make_stack, tmp_path):
    from celery import Celery
    stack = make_stack(f"sqlite:///{tmp_path / 'gateway.db'}").start(processes=("worker",))
    stack.gateway("user", "add", "olga", "--role", "viewer")
    stack.gateway("user", "digest", "olga", "--email", "olga@org.example", "--on")
    stack.gateway("user", "add", "boris", "--role", "admin")
    stack.gateway("user", "digest", "boris", "--email", "boris@org.example", "--off")
    stored = stack.query("SELECT email_sealed FROM users WHERE username = 'olga'")[0]
    assert "olga" not in stored["email_sealed"]  # sealed at rest
    # What beat sends on Monday morning, by name, as beat does.
    Celery(broker=stack.redis_url).send_task("workers.tasks.send_digests", queue="letters")
    digest = stack.wait("the digest", lambda: stack.mail_to("olga@org.example"))[0].message
    assert digest["Subject"].startswith("Сводка за неделю / Weekly digest")
    body = digest.get_body(("plain",)).get_content()
    assert body.index("Отправлено: 0 писем.") < body.index("Sent: 0 letters.")
    assert "Не получали писем 30 дней: 6 человек." in body  # the demo directory, no letters yet
    time.sleep(2)
    assert stack.mail_to("boris@org.example") == []
    assert len(stack.sink.messages) == 1
