"""Russian personal names as people write them: inflected forms (pymorphy3), ё/е, Latin
transliteration skeletons, initials, diminutives and small typos.

The MorphAnalyzer is built once per process and shared with the rules (gateway.morph) and the forms
of each name are cached, so matching a letter against a directory is dictionary look-ups.
"""

from __future__ import annotations

import functools
import re
from typing import Literal

import pymorphy3
from rapidfuzz.distance import DamerauLevenshtein

from gateway.morph import analyzer

Kind = Literal["last", "first", "middle"]
_TAG = {"last": "Surn", "first": "Name", "middle": "Patr"}

# Common diminutives -> full first names (a letter often says "Маше Петровой").
DIMINUTIVES: dict[str, tuple[str, ...]] = {
    "маша": ("мария",), "саша": ("александр", "александра"), "женя": ("евгений", "евгения"),
    "петя": ("петр",), "ваня": ("иван",), "оля": ("ольга",), "аня": ("анна",),
    "катя": ("екатерина",), "наташа": ("наталья", "наталия"), "леша": ("алексей",),
    "алеша": ("алексей",), "дима": ("дмитрий",), "миша": ("михаил",), "сережа": ("сергей",),
    "коля": ("николай",), "таня": ("татьяна",), "лена": ("елена",), "юля": ("юлия",),
    "настя": ("анастасия",), "вова": ("владимир",), "володя": ("владимир",),
    "костя": ("константин",), "паша": ("павел",), "гоша": ("георгий",), "лиза": ("елизавета",),
    "даша": ("дарья",), "ира": ("ирина",), "света": ("светлана",), "надя": ("надежда",),
    "люба": ("любовь",), "галя": ("галина",), "варя": ("варвара",), "олежка": ("олег",),
    "игорек": ("игорь",), "андрюша": ("андрей",), "витя": ("виктор",), "слава": ("вячеслав",),
    "толя": ("анатолий",), "гриша": ("григорий",), "леня": ("леонид",), "рома": ("роман",),
    "илюша": ("илья",), "сеня": ("семен",), "тема": ("артем",), "никита": ("никита",),
}

_CYR_TO_SKELETON = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "ch", "ш": "sh",
    "щ": "sh", "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "iu", "я": "ia",
}
# Latin spellings of the same sounds across GOST, ICAO, BGN/PCGN, passports and habit.
_LATIN_RULES = [
    ("shch", "sh"), ("sch", "sh"), ("tch", "ch"), ("zh", "zh"), ("kh", "h"), ("tz", "c"),
    ("ts", "c"), ("cz", "ch"), ("yo", "e"), ("jo", "e"), ("ye", "e"), ("je", "e"),
    ("yu", "iu"), ("ju", "iu"), ("ya", "ia"), ("ja", "ia"), ("ck", "k"), ("x", "ks"),
    ("w", "v"), ("q", "k"), ("y", "i"), ("j", "i"), ("ë", "e"), ("'", ""),
]


def normalize(word: str) -> str:
    """Lower case, ё -> е, no stray punctuation."""
    return word.lower().replace("ё", "е").strip(".-'’")


def is_cyrillic(word: str) -> bool:
    return bool(re.search(r"[а-яё]", word, re.IGNORECASE))


def morph() -> pymorphy3.MorphAnalyzer:
    return analyzer()  # the process's one analyzer, shared with the rules


@functools.lru_cache(maxsize=65536)
def name_forms(word: str, kind: Kind, gender: str | None = None) -> frozenset[str]:
    """Every grammatical form of a name part (normalized), in the given gender if known.

    "Петрова" (last, femn) -> петрова, петровой, петрову …; "Сидоренко" -> сидоренко
    (indeclinable). A name pymorphy does not know as a name falls back to the lexeme of its
    best nominative parse, so adjectival surnames (Толстой, Навальный) decline too.
    """
    base = normalize(word)
    if not base:
        return frozenset()
    forms = {base}
    tag = _TAG[kind]
    parses = morph().parse(base)
    chosen = [p for p in parses if tag in p.tag and "nomn" in p.tag
              and _gender_ok(p.tag, gender)]
    if not chosen:
        chosen = [p for p in parses if tag in p.tag and "nomn" in p.tag]
    if not chosen and kind == "last":
        chosen = [p for p in parses if "nomn" in p.tag and "sing" in p.tag
                  and p.tag.POS in ("NOUN", "ADJF")][:1]
    for parse in chosen:
        for form in parse.lexeme:
            if "plur" in form.tag:
                continue
            if not _gender_ok(form.tag, gender):
                continue
            forms.add(normalize(form.word))
    return frozenset(forms)


def _gender_ok(tag, gender: str | None) -> bool:
    if gender is None or "ms-f" in tag:
        return True
    own = tag.gender
    return own is None or str(own) == gender


@functools.lru_cache(maxsize=65536)
def lemma_candidates(token: str) -> frozenset[str]:
    """Full first names a token may stand for: its name lemmas, and a diminutive's names."""
    base = normalize(token)
    names = {base}
    for parse in morph().parse(base):
        if "Name" in parse.tag:
            names.add(normalize(parse.normal_form))
    for name in list(names):
        names.update(DIMINUTIVES.get(name, ()))
    # diminutives are declined too: "Маше" -> маша
    for parse in morph().parse(base):
        lemma = normalize(parse.normal_form)
        if lemma in DIMINUTIVES:
            names.update(DIMINUTIVES[lemma])
    return frozenset(names)


@functools.lru_cache(maxsize=65536)
def looks_like_given_name(token: str) -> bool:
    """The most likely reading of the token is a first name (used to spot conflicts)."""
    if not is_cyrillic(token):
        return False
    parses = morph().parse(normalize(token))
    return bool(parses) and "Name" in parses[0].tag


def guess_gender(first: str, middle: str | None, last: str) -> str | None:
    for word, tag in ((middle, "Patr"), (first, "Name")):
        if not word:
            continue
        for parse in morph().parse(normalize(word)):
            if tag in parse.tag and str(parse.tag.gender) in ("masc", "femn"):
                return str(parse.tag.gender)
    return None


def skeleton(word: str) -> str:
    """A spelling-insensitive Latin key: Ковалёв, Kovalev, Kovalyov -> "kovalev"."""
    w = word.lower()
    if is_cyrillic(w):
        return "".join(_CYR_TO_SKELETON.get(c, c if c.isascii() and c.isalpha() else "")
                       for c in w)
    for old, new in _LATIN_RULES:
        w = w.replace(old, new)
    return re.sub(r"[^a-z]", "", w)


def typo_distance_ok(a: str, b: str) -> bool:
    """Small typos: one edit (incl. a swap) from 5 letters, two from 9."""
    shortest = min(len(a), len(b))
    if shortest < 5:
        return False
    allowed = 2 if shortest >= 9 else 1
    return DamerauLevenshtein.distance(a, b, score_cutoff=allowed) <= allowed


@functools.lru_cache(maxsize=4096)
def inflect_full_name(last: str, first: str, middle: str | None, case: str) -> str:
    """"Петрова Мария Сергеевна" in another case ("gent": Петровой Марии Сергеевны,
    "datv": Петровой Марии Сергеевне), for notices that read naturally. A part pymorphy
    cannot inflect stays as written (Сидоренко, Ли)."""
    gender = guess_gender(first, middle, last)
    out = []
    for word, kind in ((last, "last"), (first, "first"), (middle, "middle")):
        if not word:
            continue
        tag = _TAG[kind]
        parses = [p for p in morph().parse(word) if tag in p.tag and "nomn" in p.tag
                  and _gender_ok(p.tag, gender)]
        wanted = {case, gender} if gender else {case}
        form = parses[0].inflect(wanted) if parses else None
        out.append(_same_case_as(word, form.word) if form else word)
    return " ".join(out)


def _same_case_as(original: str, word: str) -> str:
    return word[:1].upper() + word[1:] if original[:1].isupper() else word
