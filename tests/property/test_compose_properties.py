"""Outgoing mail composition under any subject, name or message id a stranger can make us
repeat: the bytes the outbox sends carry exactly the headers the gateway wrote, once each,
and the values read back as written (minus line breaks)."""

from __future__ import annotations

import email
import re
from email import policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import Settings
from gateway.mail.compose import Page, compose
from gateway.models import Letter, Prisoner
from gateway.notices import SUBJECTS, letter_context

pytestmark = pytest.mark.corpus

BREAKERS = ["\r", "\n", "\r\n", "\0", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
            "\u2029", "Bcc: x@evil.example", "=?UTF-8?Q?=0A?=", ":", ";", "\"", "<", ">", "\t"]
HOSTILE = st.lists(st.one_of(st.sampled_from(BREAKERS), st.text(max_size=12)),
                   max_size=12).map("".join)
# What parse_message can hand over as a message id: no brackets, no whitespace.
MSGID = st.from_regex(r"[!-;=?-~]{1,60}", fullmatch=True) | st.sampled_from(
    ["=?UTF-8?Q?a=0ABcc:_x@evil.example?=", "a=?b?q?=0D=0A?=@c", "id@example.org"])
EXPECTED = {"From", "Subject", "Date", "Message-ID", "Auto-Submitted",
            "X-Auto-Response-Suppress", "Content-Language", "MIME-Version", "Content-Type",
            "Content-Transfer-Encoding"}
SETTINGS = Settings(database_url="sqlite://", secret_key="property")
PRISONER = Prisoner(last_name="Петрова", first_name="Мария", middle_name="Сергеевна")


def _one_line(value: str) -> str:
    """The spec: control characters and line separators become spaces, runs collapse, and
    "=?" is broken up so it can never start an encoded word."""
    value = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", value).replace("=?", "= ?")
    return " ".join(value.split())


def _sent_bytes(msg, recipient: str) -> bytes:
    """What the outbox does: store bytes, re-read them, add To, send with the SMTP policy."""
    stored = bytes(msg)
    again = email.message_from_bytes(stored, policy=policy.SMTP)
    again["To"] = recipient
    return again.as_bytes(policy=policy.SMTP)


def _header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line.split(b":", 1)[0].decode() for line in head.split(b"\r\n")
            if line[:1] not in (b" ", b"\t")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=HOSTILE, from_name=HOSTILE, letter_subject=HOSTILE,
       in_reply_to=st.none() | MSGID, kind=st.sampled_from(["sent", "unknown_recipient",
                                                           "received"]))
def test_composed_mail_has_exactly_our_headers(subject, from_name, letter_subject, in_reply_to,
                                               kind):
    letter = Letter(subject=letter_subject, provider_number="FP-2026-000001", pages=1)
    context = letter_context(letter, PRISONER, SETTINGS)
    msg = compose(kind, to=None, from_addr="letters@gateway.local", from_name=from_name,
                  subject=subject, context=context, in_reply_to=in_reply_to,
                  dedup_key=f"{kind}:1", domain="gateway.local")
    raw = _sent_bytes(msg, "anna@example.org")

    names = _header_names(raw)
    # Kept only when it is a plain msg-id (RFC 5322 atext, dots and @), never an encoded word.
    threaded = bool(in_reply_to) and bool(re.fullmatch(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+",
                                                       in_reply_to)) and "=?" not in in_reply_to
    expected = EXPECTED | {"To"} | ({"In-Reply-To", "References"} if threaded else set())
    assert sorted(names) == sorted(expected), names
    back = email.message_from_bytes(raw, policy=policy.default)
    assert back["To"].addresses[0].addr_spec == "anna@example.org"
    assert len(back["To"].addresses) == 1 and back["Cc"] is None and back["Bcc"] is None
    # Compared without whitespace: the stdlib folder may drop a space between two encoded
    # words (cosmetic; our own subjects round-trip exactly, see below).
    assert "".join(str(back["Subject"]).split()) == "".join(_one_line(subject).split())
    for name, value in back.items():
        assert not re.search(r"[\r\n\0\x85\u2028\u2029]", str(value)), (name, str(value))
    if threaded:
        assert str(back["In-Reply-To"]) == f"<{in_reply_to}>"
    # The body is the template, with the hostile subject inside it as text, never above it.
    assert back.get_body(("plain",)).get_content().strip()


@settings(max_examples=60, deadline=None)
@given(filename=HOSTILE, data=st.binary(max_size=64))
def test_forwarded_pages_cannot_add_headers(filename, data):
    letter = Letter(subject="", provider_number="FP-2026-000002", pages=1)
    msg = compose("sent", to=None, from_addr="letters@gateway.local", from_name="Письма",
                  subject="Ответ", context=letter_context(letter, PRISONER, SETTINGS),
                  pages=(Page(filename or "p", "image/jpeg", data),), dedup_key="reply:2",
                  domain="gateway.local")
    raw = _sent_bytes(msg, "anna@example.org")
    # multipart/mixed now: no transfer encoding at the top
    assert sorted(_header_names(raw)) == sorted(EXPECTED - {"Content-Transfer-Encoding"} | {"To"})
    back = email.message_from_bytes(raw, policy=policy.default)
    [page] = list(back.iter_attachments())
    assert page.get_content() == data
    assert set(_header_names(page.as_bytes(policy=policy.SMTP))) <= {
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version"}


@pytest.mark.parametrize("kind", sorted(SUBJECTS))
def test_our_subjects_round_trip_exactly(kind):
    letter = Letter(subject="", provider_number="FP-2026-000003", pages=1)
    msg = compose("sent", to=None, from_addr="letters@gateway.local", from_name="Письма",
                  subject=SUBJECTS[kind], context=letter_context(letter, PRISONER, SETTINGS),
                  dedup_key=f"{kind}:3", domain="gateway.local")
    back = email.message_from_bytes(_sent_bytes(msg, "anna@example.org"), policy=policy.default)
    assert str(back["Subject"]) == SUBJECTS[kind]
