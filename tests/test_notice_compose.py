"""A notice is serialized once: the stored bytes are the ones verified, and the same bytes
the email package writes with its stock policy (the cached header classes change nothing)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import policy

import pytest

from gateway.mail import compose as c
from gateway.mail.compose import Page, compose_bytes
from gateway.notices import SUBJECTS

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


# The 'sent' notice (and every plain one) is filled into a skeleton: it must be the very
# bytes the email package writes, whatever the context holds.
ODD = dict(CONTEXT, prisoner_name="Ёлкина-Д'Артаньян Анна\u2028Мария", subject="x" * 300,
           number="FP-\r\nBcc: x@example.org", org_name="", letter_date_en="=?= =3D ==",
           prisoner_datv="  \t ", reply_ordered=True, token_shown="12 34",
           reason_ru="Причина. " * 40, reason_en="Reason " * 40, candidates=[], conflict=True,
           reason="цензура " * 30, tends_to_stop_ru="", tends_to_stop_en="", findings=[],
           fixable=True, refusals=[], limit=3, parts=2, by_post=True, facility_limits=[])


@pytest.mark.perf
@pytest.mark.parametrize("context", [CONTEXT, ODD], ids=["plain", "odd"])
@pytest.mark.parametrize("kind", sorted(k for k in SUBJECTS if not c._has_html(k)))
def test_a_plain_notice_from_the_skeleton_is_the_email_packages_bytes(kind, context):
    subject = SUBJECTS[kind].format_map(dict(context, token_shown="12 34"))
    kw = dict(to=None, from_addr="letters@gateway.local", from_name="Письма «Поддержка» " * 5,
              subject=subject + "\r\nBcc: y@example.org", context=context,
              dedup_key=f"{kind}:7", domain="gateway.local")
    try:
        general = c._build(kind, **kw)
    except Exception as exc:  # a template this context cannot fill: both paths must fail
        with pytest.raises(type(exc)):
            compose_bytes(kind, **kw)
        return
    fast = compose_bytes(kind, **kw)
    assert fast.data == bytes(general)
    assert fast.message_id == str(general["Message-ID"]).strip("<>")
    c._verify(general, fast.data)


@pytest.mark.perf
def test_answers_pages_and_html_kinds_take_the_general_path(monkeypatch):
    calls = []
    monkeypatch.setattr(c, "_from_skeleton", lambda *a, **k: calls.append(a))
    compose_bytes("reply", **KW)
    compose_bytes("sent", **dict(KW, pages=(), in_reply_to="a@b"))
    assert c._has_html("guidance")
    with pytest.raises(Exception):  # noqa: B017 - no guide in this context; not our path
        compose_bytes("guidance", **dict(KW, pages=(), in_reply_to=None))
    assert calls == []
    compose_bytes("sent", **dict(KW, pages=(), in_reply_to=None))
    assert len(calls) == 1
