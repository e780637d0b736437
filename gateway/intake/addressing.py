"""Which prisoner is this letter for?

Sources, strongest first: a plus-address ``letters+<code>@…`` among the recipients; a first
line "Кому: …" (removed from the text); the subject. In the line and the subject the prisoner
is found by the directory's short code ("K123") or by name the way Russians write names: any
grammatical case, with or without patronymic, ё/е, initials, diminutives, Latin
transliteration and small typos. "Любому"/"anyone" picks the prisoner who can receive letters
and has had the fewest lately. Two equally good matches are "ambiguous": the writer is asked.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.intake.names import (
    guess_gender,
    is_cyrillic,
    lemma_candidates,
    looks_like_given_name,
    name_forms,
    normalize,
    skeleton,
    typo_distance_ok,
)


@dataclass(frozen=True)
class Candidate:
    id: int
    last_name: str
    first_name: str
    middle_name: str | None
    birth_year: int | None
    facility_name: str
    code: str | None
    can_receive: bool = True
    letters_recent: int = 0


@dataclass(frozen=True)
class Resolution:
    kind: Literal["found", "ambiguous", "not_found", "anyone"]
    prisoner_id: int | None
    candidates: tuple[Candidate, ...]  # the choices when ambiguous
    text: str  # the letter text with a leading "Кому: ..." addressing line removed


_ADDRESS_LINE = re.compile(
    r"^\s*(кому|для|адресат|получатель|to)\s*(:|-|–|—)\s*(?P<who>.+?)\s*$", re.IGNORECASE
)
_ANYONE = re.compile(
    r"(?<![\w])(любому|любой|любого|любым|любому\s+заключенному|кому\s+угодно|кому-нибудь|"
    r"anyone|any\s+one|anybody|any\s+prisoner)(?![\w])",
    re.IGNORECASE,
)
_PLUS_ANYONE = {"anyone", "any", "lyubomu", "liubomu"}
_TOKEN = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:[-'][A-Za-zА-Яа-яЁё]+)*\.?")
# Cyrillic letters that look like Latin ones, for codes typed on a Russian keyboard.
_LOOKALIKE = str.maketrans("АВЕКМНОРСТУХавекмнорстух", "ABEKMHOPCTYXabekmhopctyx")


def resolve_recipient(subject: str, text: str, recipients: Sequence[str],
                      directory: Sequence[Candidate]) -> Resolution:
    directory = tuple(directory)
    text, line = _split_address_line(text)
    results = [_from_recipients(recipients, directory)]
    if line is not None:
        results.append(_from_phrase(line, directory))
    results.append(_from_phrase(_strip_reply_prefixes(subject), directory))
    for kind in ("found", "anyone", "ambiguous"):
        for result in results:
            if result is not None and result.kind == kind:
                return Resolution(result.kind, result.prisoner_id, result.candidates, text)
    return Resolution("not_found", None, (), text)


def _split_address_line(text: str) -> tuple[str, str | None]:
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        found = _ADDRESS_LINE.match(line)
        if not found or len(found.group("who")) > 120:
            return text, None
        rest = "\n".join(lines[i + 1 :]).lstrip("\n")
        return rest, found.group("who")
    return text, None


def _strip_reply_prefixes(subject: str) -> str:
    return re.sub(r"^\s*((re|fwd?|fw|ответ|пересл)\s*(\[\d+\])?\s*:\s*)+", "", subject or "",
                  flags=re.IGNORECASE)


# -- codes and "anyone" ------------------------------------------------------------------------

def _norm_code(code: str) -> str:
    return code.strip().translate(_LOOKALIKE).upper()


def _from_recipients(recipients: Sequence[str], directory: tuple[Candidate, ...]) -> Resolution | None:
    codes = _code_index(directory)
    for addr in recipients:
        local = addr.partition("@")[0]
        if "+" not in local:
            continue
        tag = local.split("+", 1)[1]
        if tag.lower() in _PLUS_ANYONE:
            return _anyone(directory)
        found = codes.get(_norm_code(tag))
        if found:
            return _decide(list(found))
    return None


@functools.lru_cache(maxsize=8)
def _code_index(directory: tuple[Candidate, ...]) -> dict[str, tuple[Candidate, ...]]:
    index: dict[str, list[Candidate]] = {}
    for cand in directory:
        if cand.code:
            index.setdefault(_norm_code(cand.code), []).append(cand)
    return {k: tuple(v) for k, v in index.items()}


def _anyone(directory: tuple[Candidate, ...]) -> Resolution:
    able = [c for c in directory if c.can_receive]
    if not able:
        return Resolution("anyone", None, (), "")
    chosen = min(able, key=lambda c: (c.letters_recent, c.id))
    return Resolution("anyone", chosen.id, (chosen,), "")


def _decide(matches: list[Candidate]) -> Resolution:
    unique = list({c.id: c for c in matches}.values())
    if len(unique) == 1:
        return Resolution("found", unique[0].id, (unique[0],), "")
    return Resolution("ambiguous", None, tuple(unique), "")


# -- names -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Token:
    text: str  # normalized
    initial: bool
    latin: bool


@dataclass(frozen=True)
class _Person:
    cand: Candidate
    forms: dict  # kind -> frozenset of normalized Cyrillic forms
    skeletons: dict  # kind -> Latin skeleton of the nominative
    initials: dict  # kind -> normalized first letter


@functools.lru_cache(maxsize=8)
def _people(directory: tuple[Candidate, ...]) -> tuple[_Person, ...]:
    people = []
    for cand in directory:
        gender = guess_gender(cand.first_name, cand.middle_name, cand.last_name)
        parts = {"last": cand.last_name, "first": cand.first_name}
        if cand.middle_name:
            parts["middle"] = cand.middle_name
        forms = {}
        for kind, value in parts.items():
            words = [w for w in re.split(r"\s+", value.strip()) if w]
            merged: set[str] = set()
            for w in words:
                merged |= name_forms(w, kind, gender)
            if "-" in value:  # double surnames: each half, and the whole
                for half in value.split("-"):
                    merged |= name_forms(half, kind, gender)
            forms[kind] = frozenset(merged)
        people.append(_Person(
            cand, forms,
            {k: skeleton(v) for k, v in parts.items()},
            {k: normalize(v)[:1] for k, v in parts.items()},
        ))
    return tuple(people)


def _tokens(phrase: str) -> list[_Token]:
    tokens: list[_Token] = []
    for raw in _TOKEN.findall(phrase):
        word = raw.rstrip(".")
        latin = not is_cyrillic(word)
        if len(word) == 1:
            tokens.append(_Token(normalize(word), True, latin))
        else:
            tokens.append(_Token(normalize(word), False, latin))
    return tokens


def _match_strength(token: _Token, person: _Person, kind: str) -> float:
    """How well one token stands for one part of a person's name (0 = not at all)."""
    if kind not in person.forms:
        return 0.0
    if token.initial:
        if kind == "last":
            return 0.0
        letter = token.text
        if token.latin:
            return 1.0 if skeleton(person.initials[kind]) [:1] == letter else 0.0
        return 1.0 if person.initials[kind] == letter else 0.0
    if token.latin:
        a, b = skeleton(token.text), person.skeletons[kind]
        if a == b:
            return 1.8
        return 1.4 if typo_distance_ok(a, b) else 0.0
    forms = person.forms[kind]
    if token.text in forms:
        return 2.0
    if kind == "first" and normalize(person.cand.first_name) in lemma_candidates(token.text):
        return 1.6  # a diminutive
    if any(typo_distance_ok(token.text, form) for form in forms):
        return 1.4
    return 0.0


def _score(group: list[_Token], person: _Person) -> float:
    """Best assignment of the group's tokens to distinct name parts; 0 if the group names
    someone else (an unexplained initial or given name) or lacks a surname and first name +
    patronymic."""
    best: dict[str, float] = {}
    unexplained: list[_Token] = []
    used: set[str] = set()
    for token in group:
        options = sorted(((_match_strength(token, person, k), k) for k in ("last", "first", "middle")
                          if k not in used), reverse=True)
        strength, kind = options[0] if options else (0.0, "")
        if strength <= 0:
            unexplained.append(token)
            continue
        used.add(kind)
        best[kind] = strength
    if any(t.initial or looks_like_given_name(t.text) for t in unexplained):
        return 0.0
    if "last" not in best and not {"first", "middle"} <= best.keys():
        return 0.0
    return sum(best.values())


def _groups(tokens: list[_Token], people: tuple[_Person, ...]) -> list[list[_Token]]:
    """Runs of consecutive tokens that could be part of some prisoner's name."""
    groups: list[list[_Token]] = []
    current: list[_Token] = []
    for token in tokens:
        if token.initial or any(_match_strength(token, p, k) > 0 for p in people
                                for k in ("last", "first", "middle")):
            current.append(token)
        else:
            if current:
                groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def _from_phrase(phrase: str, directory: tuple[Candidate, ...]) -> Resolution | None:
    if not phrase.strip():
        return None
    if _ANYONE.search(phrase):
        return _anyone(directory)
    codes = _code_index(directory)
    for word in re.findall(r"[\wА-Яа-яЁё\-]+", phrase):
        found = codes.get(_norm_code(word))
        if found:
            return _decide(list(found))
    people = _people(directory)
    tokens = _tokens(phrase)
    scores: dict[int, tuple[float, Candidate]] = {}
    for group in _groups(tokens, people):
        for person in people:
            score = _score(group, person)
            if score > scores.get(person.cand.id, (0.0, None))[0]:
                scores[person.cand.id] = (score, person.cand)
    if not scores:
        return None
    top = max(s for s, _ in scores.values())
    return _decide([c for s, c in scores.values() if s >= top - 1e-9])
