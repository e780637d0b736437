"""What made the parse cheaper must not change what it reads: headers parsed once per message
read as the stock policy reads them, and the charset scores counted per distinct character
equal their per-character definition."""

from __future__ import annotations

import email.policy
import random
import unicodedata
from collections import Counter

import pytest

import gateway.mail.parse as parse_module
from gateway.mail import charsets, senders
from gateway.mail.parse import UnparseableMessage, parse_message
from tests.corpus.generate import cases
from tests.intake.conftest import LETTERS, mail

pytestmark = [pytest.mark.intake, pytest.mark.perf]


def outcome(raw: bytes):
    try:
        return parse_message(raw, own_addresses=frozenset({"letters@gw.example"}))
    except UnparseableMessage as exc:
        return exc.reason


def test_headers_parsed_once_read_as_the_stock_policy_reads_them(monkeypatch) -> None:
    raws = [c.build() for c in cases()]  # the hostile corpus: odd headers of every kind
    raws += [mail("Петровой Марии", text, Cc="a@example.org, b@example.org",
                  In_Reply_To="<x@example.org>") for text in LETTERS]
    fast = [outcome(raw) for raw in raws]
    with monkeypatch.context() as m:
        m.setattr(parse_module, "_FetchOncePolicy", lambda **_: email.policy.default)
        # The From and address headers too, read afresh by the stock registry.
        m.setattr(senders, "HEADER_CLASSES", email.policy.default.header_factory)
        m.setattr(senders, "_known_sender", senders._sender)
        m.setattr(senders, "_known_addresses", senders._addresses_from_raw)
        stock = [outcome(raw) for raw in raws]
    assert fast == stock
    assert sum(isinstance(x, str) for x in stock) > 10  # refusals are compared too


def test_each_header_value_is_parsed_once(monkeypatch) -> None:
    raw = mail("Петровой Марии", LETTERS[0])
    seen: list[tuple[str, str]] = []
    parse = email.policy.EmailPolicy.header_fetch_parse

    def counting(self, name, value):
        seen.append((name, value))
        return parse(self, name, value)

    monkeypatch.setattr(email.policy.EmailPolicy, "header_fetch_parse", counting)
    monkeypatch.setattr(parse_module, "_KNOWN_HEADERS", {})  # nothing read before
    outcome(raw)
    assert seen and len(seen) == len(set(seen))


def test_header_values_are_remembered_across_messages_within_bounds(monkeypatch) -> None:
    """A header value read in one message is not parsed again in the next (the same
    Content-Type in every letter), the letter read is the same; long values are parsed
    afresh each time, and the memory holds a bounded number of values."""
    seen: list[tuple[str, str]] = []
    parse = email.policy.EmailPolicy.header_fetch_parse

    def counting(self, name, value):
        seen.append((name, value))
        return parse(self, name, value)

    monkeypatch.setattr(email.policy.EmailPolicy, "header_fetch_parse", counting)
    monkeypatch.setattr(parse_module, "_KNOWN_HEADERS", {})
    raw = mail("Петровой Марии", LETTERS[0])
    first = outcome(raw)
    assert seen
    seen.clear()
    assert outcome(raw) == first and seen == []
    long_name = "x" * (parse_module._KNOWN_HEADER_CHARS + 1) + ".txt"
    odd = raw.replace(b"Content-Type: text/plain; charset=\"utf-8\"",
                      f'Content-Type: text/plain; charset="utf-8"; name="{long_name}"'.encode())
    assert odd != raw
    for _ in range(2):
        seen.clear()
        outcome(odd)
        assert any(long_name in value for _, value in seen)
    monkeypatch.setattr(parse_module, "_KNOWN_HEADERS_MAX", 3)
    for text in LETTERS[:5]:
        outcome(mail("Петровой Марии", text))
        assert len(parse_module._KNOWN_HEADERS) <= 3


# The definitions, one character at a time, as they were first written.

def garble_reference(text: str) -> float:
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return 0.0
    odd = sum(1 for c in visible
              if unicodedata.category(c) in ("So", "Sm", "Sc", "Sk", "Co", "Cc", "Cn", "Cf")
              or "\u2500" <= c <= "\u259f")
    letters = sum(1 for c in visible if c.isalpha()) or 1
    accented_latin = sum(1 for c in visible if "\u00c0" <= c <= "\u00ff")
    words = charsets._WORDS.findall(text)
    inverted = sum(1 for w in words if charsets._INVERTED.search(w))
    return min(1.0, max(inverted / max(len(words), 1) * 2, odd / len(visible) * 4,
                        accented_latin / letters if accented_latin / letters > 0.3 else 0.0,
                        vowels_reference(text) * 2 if len(text) >= 40 else 0.0))


def vowels_reference(text: str) -> float:
    cyrillic = [c for c in text.lower() if "а" <= c <= "я" or c == "ё"]
    if len(cyrillic) < 8:
        return 0.0
    return max(0.0, 0.3 - sum(1 for c in cyrillic if c in "аеёиоуыэюя") / len(cyrillic)) * 3


def foreign_reference(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    odd = sum(1 for c in letters if not (c.isascii() or "а" <= c.lower() <= "я" or c in "ёЁ"))
    return odd / len(letters)


def test_charset_scores_equal_their_per_character_definitions() -> None:
    rng = random.Random(8)
    alphabet = ("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙЯ abcXYZ\n\t.,!?─│╬♥€±"
                "\u00c0\u00e9\u00ff\u0130ЅЋЄ\ue000\u200b\x00\x7f°§¤")
    texts = ["", " \n", *LETTERS]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(80))) for _ in range(3000)]
    for text in LETTERS:  # every wrong reading of a real letter
        for wrote in ("koi8-r", "cp1251", "utf-8"):
            for read in ("koi8-r", "cp1251", "cp866", "mac-cyrillic", "latin-1"):
                texts.append(text.encode(wrote, errors="replace").decode(read, errors="replace"))
    for text in texts:
        assert charsets.garble_score(text) == garble_reference(text), text
        assert charsets._few_vowels(text) == vowels_reference(text), text
        assert charsets._few_vowels(text, Counter(text)) == vowels_reference(text), text
        assert charsets._foreign_letters(text) == foreign_reference(text), text
