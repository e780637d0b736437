"""Latin-script Russian ("Privet, kak dela?") read back into Cyrillic, to offer, never to apply.

cyrtranslit does the letter mapping; chat-style digraphs it does not know (kh, ts, shch,
ja/ju/jo) are mapped first, and the ambiguous Latin "y" (ы, й or и) is settled per word by
asking pymorphy3 which reading is a Russian word.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

import cyrtranslit

from gateway.rules.morphology import analyzer

_LATIN_WORD = re.compile(r"[A-Za-z']+")
_DIGRAPHS = (
    ("shch", "щ"),
    ("sch", "щ"),
    ("kh", "х"),
    ("ts", "ц"),
    ("tz", "ц"),
    ("ja", "я"),
    ("ju", "ю"),
    ("jo", "ё"),
    ("je", "е"),
    ("x", "х"),
    ("w", "в"),
    ("q", "к"),
)
_Y_READINGS = ("ы", "й", "и")


_CONSONANT = re.compile(r"[бвгджзклмнпрстфхцчшщ]")


def _soft_sign_variants(word: str) -> list[str]:
    """Chat translit drops ь ("pisma", "chuvstvuesh"): try it back in, once, anywhere."""
    return [word[: m.end()] + "ь" + word[m.end() :] for m in _CONSONANT.finditer(word)]


@lru_cache(maxsize=8192)
def word_to_cyrillic(word: str) -> str:
    low = word.lower()
    for latin, cyr in _DIGRAPHS:
        low = low.replace(latin, cyr)
    # Every "y" not starting ya/yu/yo/ye becomes a slot to try readings in.
    parts = re.split(r"y(?![aeuo])", low)
    pieces = [cyrtranslit.to_cyrillic(p, "ru") for p in parts]
    best = None
    slots = len(pieces) - 1
    for combo in itertools.islice(itertools.product(_Y_READINGS, repeat=slots), 27):
        candidate = pieces[0] + "".join(r + p for r, p in zip(combo, pieces[1:], strict=True))
        candidate = candidate.replace("'", "ь")
        if best is None:
            best = candidate
        if analyzer().word_is_known(candidate):
            best = candidate
            break
    assert best is not None
    if not analyzer().word_is_known(best) and len(best) > 3:
        best = next((v for v in _soft_sign_variants(best) if analyzer().word_is_known(v)), best)
    if word[:1].isupper():
        best = best[:1].upper() + best[1:]
    return best


def to_cyrillic(text: str) -> str:
    return _LATIN_WORD.sub(lambda m: word_to_cyrillic(m.group()), text)


def known_share(text: str) -> float:
    """Share of the Latin words of 3+ letters that, read in Cyrillic, Russian morphology
    knows: Latin-script Russian scores high, English or German scores low."""
    words = [word_to_cyrillic(w).lower() for w in _LATIN_WORD.findall(text) if len(w) >= 3]
    if not words:
        return 0.0
    morph = analyzer()
    return sum(morph.word_is_known(w) for w in words) / len(words)
