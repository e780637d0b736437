"""Text normalization for matching: what a censor reads, not how it was typed."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

# Zero-width and soft-hyphen characters hide words from naive matchers.
_INVISIBLE_CHARS = "\u00ad\u200b\u200c\u200d\u2060\ufeff\u180e"
_INVISIBLE = dict.fromkeys(map(ord, _INVISIBLE_CHARS), None)
_ANY_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]")

# Latin (and digit/symbol) look-alikes of Cyrillic letters, used inside words that already
# mix scripts or consist of look-alikes only ("xyй", "пи3да", "бл@").
HOMOGLYPHS = str.maketrans(
    {
        "a": "а",
        "b": "в",
        "c": "с",
        "e": "е",
        "h": "н",
        "k": "к",
        "m": "м",
        "o": "о",
        "p": "р",
        "t": "т",
        "x": "х",
        "y": "у",
        "u": "и",
        "n": "п",
        "r": "г",
        "3": "з",
        "0": "о",
        "6": "б",
        "@": "а",
        "$": "с",
        "4": "ч",
    }
)
_LOOKALIKE_ONLY = set("abcehkmoptxyu3064@$")

WORD = re.compile(r"[^\W\d_]+(?:[-‐][^\W\d_]+)*")
# A word that may carry digits or @/$ as letters ("пи3дец", "бл@дь").
OBFUSCATED_WORD = re.compile(r"[^\W_]*[^\W\d_][\w@$]*")
_REPEATS = re.compile(r"(.)\1+")
CYRILLIC = re.compile(r"[\u0400-\u04ff]")
LATIN = re.compile(r"[a-zA-Z]")


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str  # as written
    norm: str  # lower-cased, ё→е, look-alikes mapped


def clean(text: str) -> str:
    """NFKC and no invisible characters."""
    # Most letters are already NFKC with nothing to delete: two scans in C tell so, where
    # normalizing and translating a Cyrillic text cost ten times more to return it unchanged.
    if unicodedata.is_normalized("NFKC", text) and _ANY_INVISIBLE.search(text) is None:
        return text
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


@dataclass(frozen=True)
class Cleaned:
    """A cleaned text that remembers where each of its characters came from, so findings
    point at the letter as written even after "ху\u200bй" became "хуй"."""

    text: str
    # origin[i]: index in the original of cleaned char i; +1 entry. None: the same text.
    origin: tuple[int, ...] | None

    def span(self, start: int, end: int) -> tuple[int, int]:
        if self.origin is None:
            return (start, start) if start >= end else (start, end)
        if start >= end:
            return self.origin[start], self.origin[start]
        return self.origin[start], self.origin[end - 1] + 1


@lru_cache(maxsize=1)  # every rule cleans the same letter: once is enough
def clean_mapped(text: str) -> Cleaned:
    cleaned = clean(text)
    if cleaned == text:  # the usual case: nothing to map
        return Cleaned(text, None)
    out: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if ord(ch) in _INVISIBLE:
            continue
        if unicodedata.combining(ch) and out:
            merged = unicodedata.normalize("NFKC", out[-1] + ch)
            if len(merged) == 1:  # "е" + U+0308 → "ё"
                out[-1] = merged
                continue
        for piece in unicodedata.normalize("NFKC", ch):
            out.append(piece)
            origin.append(i)
    origin.append(len(text))
    return Cleaned("".join(out), tuple(origin))


def fold(word: str) -> str:
    """Lower case and ё→е: the form every lexicon entry is compared in."""
    return word.lower().replace("ё", "е")


def deobfuscate(word: str) -> str:
    """Map look-alikes to Cyrillic when the word is mixed-script or made of look-alikes."""
    w = fold(word)
    has_cyr = CYRILLIC.search(w) is not None
    if has_cyr or (set(w) <= _LOOKALIKE_ONLY and not w.isdigit()):
        return w.translate(HOMOGLYPHS) if (has_cyr or LATIN.search(w)) else w
    return w


def collapse_repeats(word: str) -> str:
    """ "хуууй" → "хуй": letters stretched to dodge a list."""
    return _REPEATS.sub(r"\1", word)


def words(text: str) -> Iterator[Token]:
    """Words with their offsets, folded for lookup."""
    for m in WORD.finditer(text):
        yield Token(m.start(), m.end(), m.group(), fold(m.group()).replace("‐", "-"))


# Runs, not single letters: one string a word rather than one a letter (a Cyrillic letter
# is a new object each time).
_ANY_LETTER = re.compile(r"[^\W\d_]+")
_CYRILLIC_LETTER = re.compile(r"[\u0400-\u04ff]+")
_LATIN_LETTER = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=2)  # the language and profanity rules count the same letter
def letters(text: str) -> tuple[int, int, int]:
    """(all letters, Cyrillic letters, Latin letters), counted in C by the regex engine."""
    return (
        sum(map(len, _ANY_LETTER.findall(text))),
        sum(map(len, _CYRILLIC_LETTER.findall(text))),
        sum(map(len, _LATIN_LETTER.findall(text))),
    )
