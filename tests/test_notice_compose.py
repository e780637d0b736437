"""A notice is serialized once: the stored bytes are the ones verified, and the same bytes
the email package writes with its stock policy (the cached header classes change nothing)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import policy

import pytest

from gateway.mail import compose as c
from gateway.mail.compose import Page, compose_bytes

CONTEXT = {"org_name": "Письма", "letter_date": datetime(2026, 1, 1), "pages": 2,
           "letter_date_en": "1 January 2026", "prisoner_name": "Петрова Мария Сергеевна",
           "prisoner_datv": "Петровой Марии Сергеевне", "prisoner_gent": "Петровой Марии Сергеевны",
           "subject": "Привет =?utf-8?q?=0ABcc:_x?= из Петербурга", "number": "FP-1",
           "reply_ordered": False}
KW = dict(to=None, from_addr="letters@gateway.local", from_name="Письма «Поддержка»",
          subject="Ответ на ваше письмо / A reply\r\nBcc: x@example.org", context=CONTEXT,
          in_reply_to="abc.123@example.org", dedup_key="reply:7", domain="gateway.local",
          pages=(Page("scan 1.jpg", "image/jpeg", b"\xff\xd8\xff" * 40),))


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    at = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(c, "utcnow", lambda: at)


@pytest.mark.parametrize("kind", ["sent", "reply"])
def test_the_bytes_are_those_of_the_stock_policy(monkeypatch, kind):
    random.seed(8)  # the MIME boundary
    ours = compose_bytes(kind, **KW)
    monkeypatch.setattr(c, "_POLICY", policy.default)
    random.seed(8)
    stock = compose_bytes(kind, **KW)
    assert ours.data == stock.data
    assert f"Message-ID: <{ours.message_id}>".encode() in ours.data
    assert b"\nBcc:" not in ours.data and b"\nTo:" not in ours.data


def test_the_verified_bytes_are_checked_not_the_message():
    msg = c._build("sent", **KW)
    data = bytes(msg)
    c._verify(msg, data)  # what we wrote
    with pytest.raises(ValueError, match="headers we did not write"):
        c._verify(msg, b"Bcc: someone@example.org\n" + data)
