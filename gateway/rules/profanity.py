"""profanity: Russian obscene roots and rude words, seen through the usual disguises."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings
from gateway.rules.language import transliterated_russian
from gateway.rules.lexicon import entries, lexicon_dirs
from gateway.rules.morphology import inflections, known_lemmas
from gateway.rules.normalize import (
    CYRILLIC,
    LATIN,
    OBFUSCATED_WORD,
    clean_mapped,
    collapse_repeats,
    deobfuscate,
    fold,
    letters,
)
from gateway.rules.transliteration import word_to_cyrillic

# Letters spaced or dotted apart: "х у й", "п.и.з.д.е.ц", "б-л-я".
_SPACED = re.compile(r"(?<!\w)(?:[^\W\d_][\s.\-_*·]{1,3}){2,}[^\W\d_](?!\w)")
# A word with letters starred out ("х*й", "п**дец"): a disguise the censor still reads.
_MASKED = re.compile(r"(?<!\w)[^\W\d_]+[*#]+[^\W\d_]*(?!\w)|(?<!\w)[*#]+[^\W\d_]{2,}(?!\w)")


@dataclass(frozen=True)
class Lexicon:
    roots: tuple[re.Pattern[str], ...]
    combined: re.Pattern[str]
    words: frozenset[str]
    exceptions: frozenset[str]
    exception_prefixes: tuple[str, ...]
    exception_lemma_endings: tuple[str, ...]
    # Verdicts by (word, translit): letters reuse most of their words, so after a few
    # letters nearly every word is a dict lookup. Bounded by clearing when full.
    verdicts: dict[tuple[str, bool], bool] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    # The words judged clean, by `translit`: a letter's words minus these (a set difference
    # in C) are the only ones left to judge, usually none. Bounded like the verdicts.
    clean: dict[bool, set[str]] = field(
        default_factory=lambda: {True: set(), False: set()}, compare=False, hash=False, repr=False
    )


_VERDICTS_MAX = 200_000


def _root_pattern(line: str) -> str:
    if line.startswith("re:"):
        return line[3:]
    if line.startswith("^"):
        return "^" + re.escape(fold(line[1:]))
    return re.escape(fold(line))


@cache
def lexicon(dirs: tuple[Path, ...]) -> Lexicon:
    patterns = [_root_pattern(line) for line in entries("profanity/roots.txt", dirs)]
    roots = tuple(re.compile(p) for p in patterns)
    words: set[str] = set()
    for line in entries("profanity/words.txt", dirs):
        words |= {fold(line[1:])} if line.startswith("=") else inflections(line)
    exceptions: set[str] = set()
    prefixes: list[str] = []
    endings: list[str] = []
    for line in entries("profanity/exceptions.txt", dirs):
        if line.startswith("~"):
            endings.append(fold(line[1:]))
        elif line.endswith("*"):
            prefixes.append(fold(line[:-1]))
        else:
            exceptions |= inflections(line) | {fold(line)}
    return Lexicon(
        roots=roots,
        combined=re.compile("|".join(f"(?:{p})" for p in patterns)),
        words=frozenset(words),
        exceptions=frozenset(exceptions),
        exception_prefixes=tuple(prefixes),
        exception_lemma_endings=tuple(endings),
    )


def _exempt(word: str, lex: Lexicon) -> bool:
    return word in lex.exceptions or word.startswith(lex.exception_prefixes)


def is_profane(word: str, lex: Lexicon, translit: bool = True) -> bool:
    """One word, as written, against the lexicon through every normalization.
    `translit` also reads an all-Latin word as Russian ("blyad"); only sensible inside a
    Russian letter, where an English "here" is not read as "хере"."""
    key = (word, translit)
    verdict = lex.verdicts.get(key)
    if verdict is None:
        if len(lex.verdicts) >= _VERDICTS_MAX:
            lex.verdicts.clear()
        verdict = lex.verdicts[key] = _judge(word, lex, translit)
    return verdict


def _judge(word: str, lex: Lexicon, translit: bool) -> bool:
    raw = fold(word)
    if _exempt(raw, lex):
        return False
    variants = {deobfuscate(word)}
    if translit and LATIN.search(raw) and not CYRILLIC.search(raw) and raw.isalpha():
        variants.add(fold(word_to_cyrillic(raw)))  # "blyad", "nahuy"
    for v in list(variants):
        variants.add(collapse_repeats(v))
    for v in variants:
        if _exempt(v, lex):
            return False
    hit = next((v for v in variants if v in lex.words or lex.combined.search(v)), None)
    if hit is None:
        return False
    # Morphology last, and only for hits: "психуй" is a form of психовать, not mat.
    if lex.exception_lemma_endings and any(
        lemma.endswith(lex.exception_lemma_endings) for lemma in known_lemmas(hit)
    ):
        return False
    return True


def find(text: str, lex: Lexicon, translit: bool = True) -> list[tuple[int, int]]:
    """Spans of profane words in `text`."""
    spans: list[tuple[int, int]] = []
    # Each distinct word judged once; where each one stands only when one of them is profane.
    clean = lex.clean[translit]
    profane = False
    for word in set(OBFUSCATED_WORD.findall(text)) - clean:
        if is_profane(word, lex, translit):
            profane = True
        else:
            if len(clean) >= _VERDICTS_MAX:
                clean.clear()
            clean.add(word)
    if profane:
        for m in OBFUSCATED_WORD.finditer(text):
            if is_profane(m.group(), lex, translit):
                spans.append((m.start(), m.end()))
    for m in _SPACED.finditer(text):
        positions = [m.start() + i for i, ch in enumerate(m.group()) if ch.isalpha()]
        span = _shortest_profane(text, positions, lex, translit)
        if span:
            spans.append(span)
    return sorted(set(spans))


def _shortest_profane(
    text: str, positions: list[int], lex: Lexicon, translit: bool
) -> tuple[int, int] | None:
    """Drop leading one-letter words the run swallowed ("и п и з д е ц" → "п и з д е ц");
    the end is kept whole, since the root usually sits at the start of the word."""

    def profane(lo: int, hi: int) -> bool:
        return is_profane("".join(text[p] for p in positions[lo:hi]), lex, translit)

    lo, hi = 0, len(positions)
    if not profane(lo, hi):
        return None
    while hi - lo > 2 and profane(lo + 1, hi):
        lo += 1
    return positions[lo], positions[hi - 1] + 1


def find_masked(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if "*" not in text and "#" not in text:  # no mask: every match has a star or a hash
        return []
    return [
        (m.start(), m.end())
        for m in _MASKED.finditer(text)
        if not any(a <= m.start() < b for a, b in taken)
    ]


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    lex = lexicon(lexicon_dirs(settings.lexicon_dirs))
    cleaned = clean_mapped(draft.text)
    text = cleaned.text
    findings: list[Finding] = []
    total, cyr, _ = letters(text)
    mostly_cyrillic = total > 0 and cyr / total >= 0.5
    found = find(text, lex, translit=mostly_cyrillic)
    spans = [cleaned.span(a, b) for a, b in found]
    words = tuple(dict.fromkeys(draft.text[a:b] for a, b in spans))
    if not mostly_cyrillic and total and not spans:
        # A letter written in Latin letters: read it as Russian and look again. Only when
        # nothing was found as written: the reading's words have no place in the text, and a
        # letter that already names its words as written needs no second, Cyrillic list.
        reading = transliterated_russian(text, settings.language_min_confidence)
        if reading is not None:
            words += tuple(dict.fromkeys(reading[a:b] for a, b in find(reading, lex)))
    if words:
        findings.append(
            Finding(
                rule="profanity",
                code="obscene",
                severity="return",
                passages=words,
                spans=tuple(spans),
                reason_ru="В письме есть нецензурные или грубые слова: "
                + ", ".join(f"«{w}»" for w in words)
                + ". С ними письмо не передадут, а деньги не вернут. Пожалуйста, уберите их и пришлите письмо снова.",
                reason_en="Your letter has obscene or rude words: "
                + ", ".join(f"'{w}'" for w in words)
                + ". The censor will not pass it and the fee is not refunded. Please remove them and send the letter again.",
                reason_organizer=f"{len(words)} obscene/rude word(s): {', '.join(words)}.",
            )
        )
    masked = [cleaned.span(a, b) for a, b in find_masked(text, found)]
    if masked:
        words = tuple(dict.fromkeys(draft.text[a:b] for a, b in masked))
        findings.append(
            Finding(
                rule="profanity",
                code="masked",
                severity="hold",
                passages=words,
                spans=tuple(masked),
                reason_ru="В письме есть слова, где буквы заменены звёздочками ("
                + ", ".join(words)
                + "). Цензор может счесть их бранью; организатор посмотрит письмо.",
                reason_en="Your letter has words with letters starred out ("
                + ", ".join(words)
                + "). A censor may read them as swearing; an organizer will look at the letter.",
                reason_organizer="Starred-out word(s), possibly masked swearing: "
                + ", ".join(words),
            )
        )
    return findings


RULE = Rule(
    name="profanity",
    description="No obscene or rude words, however spelled (look-alikes, spacing, repeats, translit).",
    check=check,
)
