"""The parser under generated input: a well-formed letter keeps its writer and its words;
no From header, however crafted, yields an address it does not contain; nothing a
stranger wrote comes out able to break a header; quoted history with its addresses is cut."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.mail.parse import UnparseableMessage, parse_message

pytestmark = pytest.mark.corpus

CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ"
WORD = st.text(alphabet=CYRILLIC, min_size=2, max_size=12)
# Real words for bodies: the charset ladder weighs letter frequencies, so a declared
# single-byte charset is (rightly) doubted on strings like "ЁЁ ЁЁ ЁЁ".
VOCABULARY = st.sampled_from(
    "здравствуйте пишу вам из города весна пришла рано во дворе цветёт сирень мы все "
    "помним о вас и ждём домой берегите себя обнимаю книги читаю вечерами снег летом "
    "набережной друзья передают привет мама папа дети погода хорошая новости работа".split())
LOCAL = st.from_regex(r"[a-z][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda s: ".." not in s)
DOMAIN = st.sampled_from(["example.org", "mail.example.net", "почта.example.com"])
NASTY = st.lists(st.one_of(WORD, st.sampled_from(
    ["\r\n", "\n", "\0", "\u2028", "\x85", "=?UTF-8?Q?=0A?=", "Bcc: x@evil.example", '"', "<",
     ">", "@", ",", ";", "(", ")", "\\"])), max_size=8).map(" ".join)
BREAKS = re.compile(r"[\r\n\0\u2028\u2029\x85]")


def _letter(sender: str, name: str, subject: str, body: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = Address(display_name=name, addr_spec=sender)
    msg["To"] = "letters@gateway.local"
    msg["Subject"] = subject
    msg["Message-ID"] = "<prop@example.org>"
    msg.set_content(body)
    return bytes(msg)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(local=LOCAL, domain=DOMAIN, name=st.lists(WORD, min_size=1, max_size=4).map(" ".join),
       words=st.lists(VOCABULARY, min_size=5, max_size=60),
       charset=st.sampled_from(["utf-8", "windows-1251", "koi8-r"]))
def test_a_plain_letter_keeps_its_writer_and_words(local, domain, name, words, charset):
    assume(domain.isascii())
    sender = f"{local}@{domain}"
    msg = EmailMessage()
    msg["From"] = Address(display_name=name, addr_spec=sender)
    msg["To"] = "letters@gateway.local"
    msg["Subject"] = "Петровой Марии"
    msg.set_content(" ".join(words) + "\n", charset=charset)
    letter = parse_message(bytes(msg))
    assert letter.sender == sender.lower()
    # Without whitespace: the stdlib folder can drop a space between two encoded words.
    assert "".join((letter.sender_name or "").split()) == "".join(name.split())
    assert letter.text.split() == words


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw_from=st.one_of(
    NASTY,
    st.builds(lambda a, b, glue: f"{a}{glue}{b}", st.emails(), st.emails(),
              st.sampled_from([")<", "@<", ", ", " <", "\r\n <", ":", ";"])),
))
def test_no_from_header_yields_an_address_it_does_not_contain(raw_from):
    raw = (b"From: " + raw_from.encode("utf-8", "surrogateescape") +
           b"\r\nTo: letters@gateway.local\r\nSubject: x\r\n\r\nhello there\r\n")
    try:
        letter = parse_message(raw)
    except UnparseableMessage:
        return
    if letter.sender is not None:
        unfolded = re.sub(r"\r?\n[ \t]", " ", raw_from).lower()
        assert letter.sender in unfolded
        # exactly one address in the header, and it is this one
        assert unfolded.count("@") == 1 or letter.sender_problem is None
    for value in (letter.subject, letter.sender_name or ""):
        assert not BREAKS.search(value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NASTY, subject=NASTY)
def test_nothing_parsed_from_a_stranger_can_break_a_header(name, subject):
    raw = (b"From: =?UTF-8?B?" + __import__("base64").b64encode(name.encode()) +
           b"?= <w@example.org>\r\nTo: letters@gateway.local\r\nSubject: " +
           subject.encode("utf-8", "surrogateescape").replace(b"\r", b" ").replace(b"\n", b" ")
           + b"\r\nMessage-ID: <m@example.org>\r\n\r\nhello there\r\n")
    try:
        letter = parse_message(raw)
    except UnparseableMessage:
        return
    for value in (letter.subject, letter.sender_name or "", letter.message_id or ""):
        assert not BREAKS.search(value), repr(value)
    assert letter.message_id is None or not re.search(r"[\s<>\x00-\x1f]", letter.message_id)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(VOCABULARY, min_size=5, max_size=30), local=LOCAL,
       quoted=st.lists(WORD, min_size=1, max_size=10))
def test_quoted_history_and_its_addresses_are_cut(words, local, quoted):
    third = f"{local}@elsewhere.example"
    body = (" ".join(words) + "\n\n" + f"On Mon, 1 Jan 2026 at 10:00, Ivan <{third}> wrote:\n"
            + "".join(f"> {w}\n" for w in quoted))
    letter = parse_message(_letter("w@example.org", "Ольга", "Петровой Марии", body))
    assert third not in letter.text
    assert letter.text.split() == words


# Found by hypothesis: the koi8-r reading of this (all capitals) once beat its label.
def test_a_correctly_labelled_cp1251_letter_is_read_as_labelled():
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["Subject"] = "Петровой Марии"
    msg.set_content(" ".join(["здравствуйте"] * 5) + "\n", charset="windows-1251")
    assert parse_message(bytes(msg)).text.split() == ["здравствуйте"] * 5
