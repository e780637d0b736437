"""The facility's limits through the whole pipeline on real servers (Dovecot, Redis, a
Celery worker, the simulator over HTTP), on SQLite and PostgreSQL: a letter over its
facility's page limit and a photo to a facility that takes none are returned to their
writers before a single call to the service, while an ordinary letter goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.stack import WARM, letter

pytestmark = [pytest.mark.e2e, pytest.mark.rules, pytest.mark.timeout(240)]

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def _text(message) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def test_over_the_page_limit_and_a_photo_nobody_takes_cost_nothing(make_stack, database_url):
    stack = make_stack(database_url).start()
    stack.gateway("providers", "sync")  # the organizer's first step: the service's catalogue
    stack.send((CORPUS / "long_letter_over_facility_limit.eml").read_bytes())
    stack.send((CORPUS / "photo_to_facility_without_photos.eml").read_bytes())
    stack.send(letter("Петровой Марии", WARM, sender="Вера <vera@example.org>"))

    stack.wait("two letters returned and one submitted", lambda: sorted(
        r["state"] for r in stack.letters()) == ["REJECTED", "REJECTED", "SUBMITTED"])
    at_provider = stack.sim_letters()
    assert [m["facility_id"] for m in at_provider] == ["77-sizo-2"]  # only the ordinary one
    assert [m["charges"] for m in at_provider] == [1]
    attempts = stack.query("SELECT letter_id FROM submission_attempts")
    assert len(attempts) == 1  # the two returned were never even tried

    long_notice = stack.wait("the long letter's notice",
                             lambda: stack.mail_to("svetlana@example.org"))[0]
    text = _text(long_notice.message)
    assert "можно не больше 3 стр." in text and "at most 3" in text
    assert "разделить на" in text  # the offered split, with where to cut
    photo_notice = stack.wait("the photo's notice", lambda: stack.mail_to("kirill@example.org"))[0]
    text = _text(photo_notice.message)
    assert "не принимает фотографии" in text and "does not accept photos" in text
    rows = stack.query("SELECT reason FROM letters WHERE state = 'REJECTED' ORDER BY id")
    assert "over the limit of 3" in rows[0]["reason"]
    assert "accepts none" in rows[1]["reason"]
