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


# -- the cheap tests that let a pattern be skipped: never skip one that would match ------

_PIECES = ["письмо", "Привет", " ", " ", "\n", ".", ",", "@", "://", "www.", "WwW.", "г.",
           "гор.", "пос.", "дер.", "д.", "д. 12", "пгт", "ул.", "ул Мира 5", "Невский проспект",
           "кв. 5", "кв 7", "170100", "170100, г. Тверь", "индекс 170100", "а/я 12", "ст. 207",
           "207.3 УК", "ч. 2 ст. 280", "*", "#", "х*й", "ru", "рф", "РФ", "com", "Ru", "ſu",
           "İo", "ı", "\u212a", "ivan@mail.ru", "@ivan_petrov", "site.ru/x", "mail.Ru", "1",
           "12", "2024", "٣", "\u00ad", "\u200b", "е\u0308", "ﬁ", "①", "vk.com", "t.me/x",
           "Иванову", "Тверь,", "Москва", "д.Мирная,", "xг. Тверь"]


def _random_texts(count: int = 3000) -> list[str]:
    rng = random.Random(16)
    return [*LETTERS, "", *("".join(rng.choice(_PIECES) for _ in range(rng.randrange(1, 30)))
                            for _ in range(count))]


def test_an_address_pattern_is_skipped_only_where_it_cannot_match() -> None:
    from gateway.rules import addresses

    every = (addresses.STREET, addresses.HOUSE_FLAT, addresses.PLACE, addresses.POSTCODE,
             addresses.PO_BOX)
    matched = set()
    for text in _random_texts():
        tried = addresses._patterns(text)
        for pattern in every:
            if pattern.search(text):
                matched.add(pattern.pattern)
                assert pattern in tried, (pattern.pattern[:40], text)
    assert len(matched) == len(every)  # the texts exercise every pattern


def test_links_e_mail_and_handles_are_skipped_only_where_they_cannot_match() -> None:
    from gateway.rules import language, profanity, topics

    seen = {"url": 0, "urlish": 0, "email": 0, "article": 0, "masked": 0}
    for text in _random_texts():
        if contacts.URL.search(text):
            seen["url"] += 1
            assert contacts._may_link(text), text
        if language._URLISH.search(text):
            seen["urlish"] += 1
            assert language._may_be_urlish(text), text
        if contacts.EMAIL.search(text) or contacts.HANDLE.search(text):
            seen["email"] += 1
            assert "@" in text
        if topics._ARTICLE.search(text):
            seen["article"] += 1
            assert topics._THREE_DIGITS.search(text)
        if profanity._MASKED.search(text):
            seen["masked"] += 1
            assert "*" in text or "#" in text
    assert all(seen.values()), seen


def test_the_link_hints_take_every_letter_a_domain_can_start_with() -> None:
    """The patterns are case-insensitive: a dot before any character that matches a
    domain's first letter so must pass the hint (İ, ı, ſ and the Kelvin sign included)."""
    from gateway.rules import language

    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    for firsts, hint in ((contacts._TLDS, contacts._URL_HINT),
                         ("ru|com|org|net|рф|me|io", language._URLISH_HINT)):
        letters_ = "".join(sorted({tld[0] for tld in firsts.split("|")}))
        for ch in re.findall(f"[{letters_}]", everything, re.IGNORECASE):
            assert hint.search("x." + ch), (hint.pattern, ch)
    for www in ("www.1", "WWW.!", "wWw.-"):
        assert contacts._may_link(www) and language._may_be_urlish(www)


def test_topic_words_are_normalized_as_the_tokens_were() -> None:
    from gateway.rules.normalize import WORD, deobfuscate
    from gateway.rules.topics import _mixed, _norm

    for text in _random_texts(500) + ["вoйна ВОЙНА‐СВО xyй пи3да Ёлка", "İstanbul ſun"]:
        tokens = [deobfuscate(t.norm) if _mixed(t.norm) else t.norm for t in words(text)]
        assert list(map(_norm, WORD.findall(text))) == tokens
        assert [m.span() for m in WORD.finditer(text)] == [(t.start, t.end) for t in words(text)]


def test_a_text_already_clean_is_returned_as_the_long_way_returns_it() -> None:
    import unicodedata

    from gateway.rules.normalize import _INVISIBLE, clean

    for text in _random_texts(1000) + ["ﬁ", "е\u0308", "\u00ad", "①", "Å", ""]:
        assert clean(text) == unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
