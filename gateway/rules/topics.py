"""topics: risky subjects (war, authorities, the case...) for a person to weigh, never to reject."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings
from gateway.rules.lexicon import IndexSet, WordIndex, entries, files, lexicon_dirs, metadata
from gateway.rules.normalize import LATIN, WORD, clean_mapped, deobfuscate, fold

# Criminal-code articles ("ст. 207.3 УК", "статья 280") are case details in digits.
_ARTICLE = re.compile(
    r"(?<!\w)(?:ст\.|статья|статье|статьи|статью|статьёй|статьей|ч\.\s*\d+\s*ст\.)\s*\d{3}(?:\.\d)?"
    r"|(?<!\w)\d{3}(?:\.\d)?\s*(?:УК|ук)(?!\w)",
)
_THREE_DIGITS = re.compile(r"\d{3}")


@dataclass(frozen=True)
class Category:
    name: str
    title_ru: str
    title_en: str
    advice_ru: str
    advice_en: str
    index: WordIndex


@cache
def categories(dirs: tuple[Path, ...]) -> tuple[Category, ...]:
    meta = metadata("topics/categories.toml", dirs)
    out = []
    for name in files("topics", dirs):
        m = meta.get(name, {})
        out.append(
            Category(
                name=name,
                title_ru=m.get("title_ru", name),
                title_en=m.get("title_en", name),
                advice_ru=m.get("advice_ru", ""),
                advice_en=m.get("advice_en", ""),
                index=WordIndex(list(entries(f"topics/{name}.txt", dirs))),
            )
        )
    return tuple(out)


def _mixed(word: str) -> bool:
    return not word.isascii() and LATIN.search(word) is not None


@lru_cache(maxsize=65536)
def _norm(word: str) -> str:
    """A word as the lists compare it: folded, and look-alike letters read as Cyrillic
    ("вoйна" with Latin o). Once a word: letters reuse most of theirs."""
    norm = fold(word).replace("‐", "-")
    return deobfuscate(norm) if _mixed(norm) else norm


@cache
def harmless(dirs: tuple[Path, ...]) -> WordIndex:
    phrases: list[str] = []
    for d in dirs:
        path = d / "topics" / "exceptions.toml"
        if path.is_file():
            with path.open("rb") as fh:
                phrases += tomllib.load(fh).get("phrases", [])
    return WordIndex(phrases)


@cache
def _all_indexes(dirs: tuple[Path, ...]) -> IndexSet:
    """The exceptions and every category, read in one pass over a letter's words."""
    return IndexSet([harmless(dirs), *(c.index for c in categories(dirs))])


def find(text: str, dirs: tuple[Path, ...]) -> dict[str, list[tuple[int, int]]]:
    """Spans of risky words and phrases in `text`, by category."""
    # The words alone first (the same run of words as normalize.words gives); their offsets
    # only when a list matched something, which most letters never do.
    norms = list(map(_norm, WORD.findall(text)))
    safe_matches, *by_category = _all_indexes(dirs).find_norms(norms)
    bounds: list[tuple[int, int]] = []
    if safe_matches or any(by_category):
        bounds = [m.span() for m in WORD.finditer(text)]
    safe = [(bounds[m.start][0], bounds[m.end - 1][1]) for m in safe_matches]
    hits: dict[str, list[tuple[int, int]]] = {}
    for cat, matches in zip(categories(dirs), by_category, strict=True):
        spans = [(bounds[m.start][0], bounds[m.end - 1][1]) for m in matches]
        if cat.name == "case" and _THREE_DIGITS.search(text):  # every article has 3 digits
            spans += [(m.start(), m.end()) for m in _ARTICLE.finditer(text)]
        spans = [(a, b) for a, b in spans if not any(s <= a and b <= e for s, e in safe)]
        if spans:
            hits[cat.name] = _outermost(spans)
    return hits


def _outermost(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop spans inside longer ones ("военный" inside "военная операция")."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(set(spans), key=lambda s: (s[0], -s[1])):
        if out and a >= out[-1][0] and b <= out[-1][1]:
            continue
        out.append((a, b))
    return out


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    dirs = lexicon_dirs(settings.lexicon_dirs)
    cleaned = clean_mapped(draft.text)
    by_name = {c.name: c for c in categories(dirs)}
    findings = []
    for name, found in find(cleaned.text, dirs).items():
        cat = by_name.get(name)
        spans = [cleaned.span(a, b) for a, b in found]
        passages = tuple(dict.fromkeys(draft.text[a:b] for a, b in spans))
        shown = ", ".join(f"«{p}»" for p in passages[:8])
        findings.append(
            Finding(
                rule="topics",
                code=name,
                severity="hold",
                passages=passages,
                spans=tuple(spans),
                reason_ru=f"Письмо касается темы «{cat.title_ru if cat else name}» ({shown}). "
                f"{cat.advice_ru if cat else ''} Организатор прочтёт это место и решит вместе с вами, "
                "как лучше; само письмо не отклонено.".replace("  ", " "),
                reason_en=f"Your letter touches on {cat.title_en if cat else name} ({shown}). "
                f"{cat.advice_en if cat else ''} An organizer will read that passage and decide with "
                "you what is best; the letter is not rejected.".replace("  ", " "),
                reason_organizer=f"Risky topic '{name}': {', '.join(passages[:12])}. Read the highlighted "
                "passages and approve, return or edit.",
            )
        )
    return findings


RULE = Rule(
    name="topics",
    description="Risky topics (war, authorities, the case, LGBTQ+, extremism, calls to action): hold for a person.",
    check=check,
)
