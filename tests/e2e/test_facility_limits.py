"""The facility's limits through the whole pipeline on real servers (Dovecot, Redis, a
Celery worker, the simulator over HTTP), on SQLite and PostgreSQL: a letter over its
facility's page limit and a photo to a facility that takes none are returned to their
writers before a single call to the service, while an ordinary letter goes; where the
organization allows it, the long letter is split into numbered letters that each fit,
each charged exactly once."""

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


def test_a_long_letter_is_split_where_the_organization_allows_it(make_stack, database_url):
    stack = make_stack(database_url, extra_env={"GATEWAY_SPLIT_MAX_PARTS": "5"}).start()
    stack.gateway("providers", "sync")
    raw = (CORPUS / "long_letter_over_facility_limit.eml").read_bytes()
    stack.send(raw)
    stack.send((CORPUS / "photo_to_facility_without_photos.eml").read_bytes())

    def settled():
        states = [r["state"] for r in stack.letters()]
        return len(states) > 2 and "REJECTED" in states and \
            states.count("SUBMITTED") == len(states) - 1
    stack.wait("the parts submitted and the photo returned", settled, timeout=120)
    parts = stack.query("SELECT id, part_of_id, part_no, parts, public_id, pages FROM letters "
                        "WHERE state = 'SUBMITTED' ORDER BY part_no")
    total = len(parts)
    assert 2 <= total <= 5 and [p["part_no"] for p in parts] == list(range(1, total + 1))
    assert {p["parts"] for p in parts} == {total}
    first = parts[0]["id"]
    assert parts[0]["part_of_id"] is None and {p["part_of_id"] for p in parts[1:]} == {first}
    assert all(p["pages"] <= 3 for p in parts)

    at_provider = sorted(stack.sim_letters(), key=lambda m: m["text"][:6])
    assert len(at_provider) == total  # the photo letter was never sent
    assert [m["charges"] for m in at_provider] == [1] * total
    assert sorted(m["client_ref"] for m in at_provider) == sorted(p["public_id"] for p in parts)
    for n, sent in enumerate(at_provider, start=1):
        assert sent["text"].startswith(f"({n}/{total})\n\n") and sent["facility_id"] == "16-ik-2"
    # Every word the writer wrote reached the service, in order, once.
    bodies = [r["body"] for r in stack.query(
        "SELECT body FROM letters WHERE state = 'SUBMITTED' ORDER BY part_no")]
    assert " ".join(bodies).split() == _letter_words(raw)
    for body, sent in zip(bodies, at_provider, strict=True):
        assert body.strip() in sent["text"]  # each part carries its own piece

    told = stack.wait("the writer told of the split", lambda: [
        m for m in stack.mail_to("svetlana@example.org")
        if "разделено" in str(m.message["Subject"])])
    text = _text(told[0].message)
    assert f"разделили его на {total}" in text and f"split it into {total} letters" in text


def _letter_words(raw: bytes) -> list[str]:
    """The letter's words as written, without its "Кому:" line."""
    import email
    from email import policy

    body = email.message_from_bytes(raw, policy=policy.default).get_content()
    return body.split("\n", 1)[1].split()
