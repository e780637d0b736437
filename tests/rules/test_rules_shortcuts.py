"""The shortcuts that made the rules cheaper give exactly what the long way gives: the topic
lists read in one pass, letters counted by runs, the writer's own address looked for only
where its local part is, and the cleaned text mapped without a table when nothing changed."""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import pytest

from gateway.rules import contacts
from gateway.rules.lexicon import IndexSet, WordIndex, lexicon_dirs
from gateway.rules.normalize import clean_mapped, letters, words
from gateway.rules.topics import _all_indexes, categories, harmless

pytestmark = pytest.mark.rules

DIRS = lexicon_dirs()
LETTERS = [p.read_text(encoding="utf-8") for p in
           sorted((Path(__file__).parent / "letters").glob("*.txt"))]


def test_topic_lists_read_in_one_pass_match_each_list_read_alone() -> None:
    indexes = [harmless(DIRS), *(c.index for c in categories(DIRS))]
    vocabulary = sorted({w for i in indexes for w in (*i.single, *i.phrases)})
    prefixes = [p + "ов" for i in indexes for p in i.prefixes]
    rng = random.Random(8)
    texts = list(LETTERS)
    for _ in range(300):  # list words, phrase starts and prefixed words among ordinary ones
        pool = vocabulary + prefixes + " ".join(LETTERS).split()
        texts.append(" ".join(rng.choice(pool) for _ in range(rng.randrange(1, 60))))
    texts += [" ".join(vocabulary[i:i + 400]) for i in range(0, len(vocabulary), 400)]
    hits = 0
    for text in texts:
        tokens = list(words(text))
        together = _all_indexes(DIRS).find(tokens)
        assert together == [index.find(tokens) for index in indexes]
        hits += sum(map(len, together))
    assert hits > 1000


def test_one_pass_keeps_each_lists_own_precedence() -> None:
    """A word a list has exactly is not also taken by that list's prefix; another list's
    prefix still takes it; phrases come first, as in WordIndex.find."""
    lists = [WordIndex(["мобилиз*", "мобилизация", "военная операция"]),
             WordIndex(["мобилиз*", "=военная"]), WordIndex(["операция"])]
    tokens = list(words("Мобилизация и военная операция, мобилизованные"))
    together = IndexSet(lists).find(tokens)
    assert together == [index.find(tokens) for index in lists]
    assert [m.entry for m in together[0]] == ["мобилизация", "военная операция", "мобилиз*"]
    assert [m.entry for m in together[1]] == ["мобилиз*", "=военная", "мобилиз*"]


def test_letters_counted_by_runs_equal_letters_counted_one_by_one() -> None:
    rng = random.Random(8)
    alphabet = "абвгдеёжзАБЯЁ abcXYZ_1234-\n\u0400\u04ffß\u00e9ĳ\u0301"
    texts = [*LETTERS, "", "__", *("".join(rng.choice(alphabet) for _ in range(rng.randrange(50)))
                                   for _ in range(2000))]
    for text in texts:
        assert letters(text) == (len(re.findall(r"[^\W\d_]", text)),
                                 len(re.findall(r"[\u0400-\u04ff]", text)),
                                 len(re.findall(r"[A-Za-z]", text)))


def test_the_ascii_fold_table_is_every_character_matching_ascii_case_insensitively() -> None:
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    odd = {}
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789.-_+":
        found = set(re.findall(re.escape(ch), everything, re.IGNORECASE)) - {ch, ch.upper()}
        odd.update(dict.fromkeys(found, ch))
    assert odd == dict(contacts._ASCII_FOLD)


def own_address_the_long_way(text: str, sender: str) -> list[tuple[int, int]]:
    local, _, domain = sender.strip().lower().rpartition("@")
    pattern = re.compile(
        re.escape(f"{local}@{domain}") + "|" + rf"{re.escape(local)}\s*[\[(]?\s*"
        rf"(?:at|собака|собачка)\s*[\])]?\s*{re.escape(domain)}", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


@pytest.mark.parametrize("text", [
    "Пишите: Ivan.Petrov@Mail.ru", "ІVAN.PETROV@MAIL.RU", "İvan.petrov собака mail.ru",
    "ıvan.petrov (at) mail.ru", "ivan.petroſ@mail.ru", "Ivan.Petrov @ mail.ru",
    "\u212avan", "xivan.petrov@mail.ruy", "ИВАН.ПЕТРОВ@MAIL.RU", "", *LETTERS,
])
@pytest.mark.parametrize("sender", ["ivan.petrov@mail.ru", "Ivan.Petrov@Mail.RU ",
                                    "ſergei@mail.ru", "kirill@xn--80a.ru"])
def test_own_address_found_as_the_full_pattern_finds_it(text: str, sender: str) -> None:
    assert contacts._own_address(text, sender) == own_address_the_long_way(text, sender)


def test_own_address_in_disguise_is_still_found() -> None:
    assert contacts._own_address("пишите İvan собака MAİL.ru", "ivan@mail.ru") == [(7, 26)]


@pytest.mark.parametrize("text", ["обычный текст", "ху\u200bй и е\u0308ж", "", "\u00ad"])
def test_a_cleaned_text_maps_spans_back_as_a_full_table_would(text: str) -> None:
    cleaned = clean_mapped(text)
    table = list(range(len(text) + 1)) if cleaned.origin is None else list(cleaned.origin)
    for start in range(len(cleaned.text) + 1):
        for end in range(start, len(cleaned.text) + 1):
            expected = (table[start], table[start]) if start >= end \
                else (table[start], table[end - 1] + 1)
            assert cleaned.span(start, end) == expected
