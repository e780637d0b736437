"""Hostile and broken mail: parse_message ends in a ParsedLetter or UnparseableMessage, never in
another exception, within its limits; and what comes out carries no header injection."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.mail.parse import ParsedLetter, UnparseableMessage, parse_message

pytestmark = pytest.mark.intake

CHARSETS = ["utf-8", "koi8-r", "windows-1251", "cp866", "iso-8859-5", "mac-cyrillic", "unknown-8bit",
            "utf-8 junk", "1", "", "x-unknown", "uft-8", "utf-16", "us-ascii"]
CTES = ["7bit", "8bit", "8-bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"]
TEXT = st.text(alphabet=st.sampled_from(list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВЁ abc.,!\n<>@=?\"'\r\t\x00")),
               max_size=200)


def outcome(raw: bytes) -> ParsedLetter | None:
    try:
        letter = parse_message(raw)
    except UnparseableMessage as exc:
        assert exc.reason
        return None
    for value in (letter.subject, letter.sender_name or "", *(n for n, _ in letter.declined)):
        assert "\n" not in value and "\r" not in value and "\x00" not in value
    return letter


@st.composite
def mime_tree(draw, depth: int = 0) -> bytes:
    if depth < 4 and draw(st.booleans()):
        boundary = draw(st.sampled_from(["b1", "b10", "=_x", "", "a b"]))
        children = draw(st.lists(mime_tree(depth + 1), max_size=4))
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "signed"]))
        body = b"".join(b"--" + boundary.encode() + b"\n" + c + b"\n" for c in children)
        if draw(st.booleans()):
            body += b"--" + boundary.encode() + b"--\n"
        return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n'.encode() + body
    ctype = draw(st.sampled_from(["text/plain", "text/html", "image/jpeg", "application/pdf",
                                  "message/rfc822", "text/plain; format=flowed"]))
    charset = draw(st.sampled_from(CHARSETS))
    cte = draw(st.sampled_from(CTES))
    text = draw(TEXT)
    encoding = draw(st.sampled_from(["utf-8", "koi8-r", "cp1251", "cp866"]))
    payload = text.encode(encoding, errors="replace")
    disposition = draw(st.sampled_from(["", "Content-Disposition: attachment; filename*=UTF-8''..%2F%E2%80%AEx.jpg\n",
                                        'Content-Disposition: inline; filename="a.jpg"\n']))
    return (f"Content-Type: {ctype}; charset={charset}\nContent-Transfer-Encoding: {cte}\n{disposition}\n"
            .encode() + payload)


HEADERS = st.sampled_from([
    b"From: alice@example.org)<bob@example.org>\n", b"From: alice@example.org@<bob@example.org>\n",
    b'To: "\n', b"From: =?koi8-r?B?###?= <a@b.c>\n", b"Subject: =?x-unknown?Q?a?=\n",
    b"Subject: Hi =?UTF-8?Q?=0A?=Bcc: x@evil\n", b"From: Group: a@b.c, d@e.f;\n",
    b"Subject: " + b"(" * 500 + b"\n", b"From: \xd0\x9c\xd0\xb0\xd1\x88\xd0\xb0 <m@example.org>\n",
    b"Message-ID: <<a@b>>\n", b"Return-Path: <>\n", b"Auto-Submitted: no\n", b"From:\n",
    b"From: a@example.org\nFrom: b@example.org\n", b"Header With Space: x\n", b"Received: x\n \n",
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(headers=st.lists(HEADERS, max_size=5), tree=mime_tree())
def test_generated_mime_trees_end_in_a_letter_or_quarantine(headers: list[bytes], tree: bytes) -> None:
    outcome(b"".join(headers) + b"MIME-Version: 1.0\n" + tree)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_end_in_a_letter_or_quarantine(raw: bytes) -> None:
    outcome(raw)


@pytest.mark.parametrize("raw", [
    b"From: a@example.org\r\nSubject: x\r\n",  # no body at all
    b"From: a@example.org\rSubject: x\r\rbody",  # bare CR
    b"Content-Type: multipart/mixed\n\n--\n--\n",  # no boundary parameter
    b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nunterminated",
    b"Content-Type: text/plain; charset=utf-16\n\n" + "Привет".encode("utf-16-le"),
    b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n0J/RgNC4===\n=\n",
    b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nabc=",
    b"Content-Type: text/html\n\n" + b"<div>" * 10000 + b"deep" + b"</div>" * 10000,
    b"Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
    + __import__("base64").b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452") + (60000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00" + b"\x00" * 4),
])
def test_known_nasty_inputs(raw: bytes) -> None:
    outcome(raw)


def test_fifty_thousand_parts_are_refused_before_parsing() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\n\n" + b"--b\n\n" * 50000 + b"--b--\n"
    with pytest.raises(UnparseableMessage, match="too many MIME parts"):
        parse_message(raw)


def test_declined_names_are_cleaned() -> None:
    raw = (b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n"
           b"--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
           b"filename*=UTF-8''..%2F..%2Fetc%2F%E2%80%AEgpj.exe\n\nMZ\x90\x00\n--b--\n")
    (name, reason), = parse_message(raw).declined
    assert "/" not in name and "\u202e" not in name and name.endswith("gpj.exe")
