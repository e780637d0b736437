"""parse_message on small hand-written messages: the interface and its guarantees."""

from __future__ import annotations

import pytest

from gateway.mail.bounded import parse_message_bounded
from gateway.mail.parse import ParseLimits, UnparseableMessage, parse_message

pytestmark = pytest.mark.intake


def message(body: bytes, *, headers: str = "", charset: str = "utf-8") -> bytes:
    head = (
        "From: =?utf-8?B?0JzQsNGA0LjRjyDQntGA?= =?utf-8?B?0LvQvtCy0LA=?= <Masha@Example.RU>\r\n"
        "To: letters@gw.example\r\nSubject: =?utf-8?B?0J/QuNGB0YzQvNC+?=\r\n"
        "Message-ID: <m1@example.ru>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n"
        + headers
    )
    return head.encode() + b"\r\n" + body


def test_plain_koi8r_letter() -> None:
    letter = parse_message(message("Кому: Петровой Марии\r\n\r\nПривет!\r\n".encode("koi8-r"),
                                   charset="koi8-r"))
    assert letter.sender == "masha@example.ru"
    assert letter.sender_name == "Мария Орлова"  # no space inside "Орлова" (gh-128110)
    assert letter.subject == "Письмо"
    assert letter.text == "Кому: Петровой Марии\n\nПривет!"
    assert letter.charset_step == "declared"
    assert letter.message_id == "m1@example.ru"
    assert letter.automated is None
    assert letter.recipients == ("letters@gw.example",)


def test_unlabeled_cp1251_is_detected() -> None:
    body = "Здравствуйте! Пишу вам из Москвы, у нас всё хорошо.".encode("cp1251")
    letter = parse_message(message(body, charset="us-ascii"))
    assert letter.text == "Здравствуйте! Пишу вам из Москвы, у нас всё хорошо."
    assert letter.charset_step == "detected:cp1251"


@pytest.mark.parametrize(
    "from_header",
    [
        "alice@example.org)<bob@example.org>",  # CVE-2023-27043
        "alice@example.org@<bob@example.org>",
        '"a@b.c"@evil.example',
        "a@example.org, b@example.org",
        "",
    ],
)
def test_unsafe_from_gives_no_sender(from_header: str) -> None:
    raw = f"From: {from_header}\r\nSubject: x\r\n\r\nhello\r\n".encode()
    letter = parse_message(raw)
    assert letter.sender is None
    assert letter.sender_problem


def test_too_big_is_unparseable() -> None:
    with pytest.raises(UnparseableMessage, match="MB"):
        parse_message(message(b"x" * 2_000_000), limits=ParseLimits(max_bytes=1_000_000))


def test_deep_nesting_is_unparseable_not_a_crash() -> None:
    parts = [f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n" for i in range(1000)]
    raw = b"From: a@example.org\r\n" + "".join(parts).encode() + b"\r\nx\r\n"
    with pytest.raises(UnparseableMessage):
        parse_message(raw)


def test_bounded_parse_gives_the_same_letter() -> None:
    raw = message("Привет из Твери!".encode())
    assert parse_message_bounded(raw) == parse_message(raw)


def test_bounded_parse_times_out_and_recovers() -> None:
    # Tens of thousands of encoded words on one Subject line take seconds to decode.
    slow = "Subject: " + " ".join(["=?utf-8?q?=D0=B0?="] * 40000)
    raw = b"From: a@example.org\r\n" + slow.encode() + b"\r\n\r\nbody\r\n"
    limits = ParseLimits(wall_seconds=0.3, max_header_bytes=10**6, max_header_line_bytes=10**6)
    with pytest.raises(UnparseableMessage, match="longer than"):
        parse_message_bounded(raw, limits=limits)
    assert parse_message_bounded(message(b"ok")).text == "ok"


def test_our_address_on_a_special_use_domain_is_read_for_routing() -> None:
    """The demo writes to letters@gateway.local (a special-use domain): its plus-addresses
    (campaign tags, prisoner codes) must reach addressing; a writer's From still may not."""
    from gateway.mail.senders import is_valid_address

    raw = ("From: Anna <anna@example.org>\r\nTo: letters+vesna@gateway.local\r\n"
           "Cc: \"x\" <bad@@gateway.local>\r\nSubject: hi\r\nMessage-ID: <m@example.org>\r\n"
           "\r\nПривет!\r\n").encode()
    assert parse_message(raw).recipients == ("letters+vesna@gateway.local",)
    assert not is_valid_address("anna@gateway.local")  # as a writer's address: refused


def test_a_header_read_before_is_read_the_same_and_a_long_one_is_not_kept() -> None:
    """The parse worker remembers the From and address headers it has read (a writer's
    From, our own To): the second reading is the first one's, safety checks included, and
    headers longer than ordinary ones are read afresh rather than kept."""
    from gateway.mail import senders

    for from_header in ("Анна <anna@example.org>", "alice@example.org)<bob@example.org>"):
        raw = f"From: {from_header}\r\nTo: letters@gateway.local\r\nSubject: x\r\n\r\nhi\r\n"
        first, again = parse_message(raw.encode()), parse_message(raw.encode())
        assert (again.sender, again.sender_name, again.sender_problem, again.recipients) \
            == (first.sender, first.sender_name, first.sender_problem, first.recipients)
    assert again.sender is None and first.recipients == ("letters@gateway.local",)
    before = senders._known_sender.cache_info().currsize
    name = "Я" * senders._REMEMBERED_CHARS
    letter = parse_message(f"From: {name} <long@example.org>\r\nSubject: x\r\n\r\nhi\r\n".encode())
    assert letter.sender == "long@example.org"
    assert senders._known_sender.cache_info().currsize == before
