"""Which prisoner is this letter for?

Sources, strongest first: a plus-address ``letters+<code>@…`` among the recipients; a first
line "Кому: …" (removed from the text); the subject; and, when nothing names anyone, the
prisoner of the letter whose notice this message answers (In-Reply-To our Message-ID). In the line and the subject the prisoner
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

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

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
                      directory: Sequence[Candidate], *,
                      answered_prisoner: int | None = None) -> Resolution:
    """`answered_prisoner`: the letter's message answers one of our notices about a letter
    to this prisoner; it is the weakest source, used when nothing in the message names anyone."""
    directory = tuple(directory)
    text, line = _split_address_line(text)
    results = [_from_recipients(recipients, directory)]
    if line is not None:
        results.append(_from_phrase(line, directory))
    results.append(_from_phrase(_strip_reply_prefixes(subject), directory))
    answered = next((c for c in directory if c.id == answered_prisoner), None)
    for kind in ("found", "anyone", "ambiguous"):
        for result in results:
            if result is not None and result.kind == kind:
                if kind == "ambiguous" and answered in result.candidates:
                    break  # "Кому: Иванову" in answer to our notice about a letter to him
                return Resolution(result.kind, result.prisoner_id, result.candidates, text)
    if answered is not None:
        return Resolution("found", answered.id, (answered,), text)
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


class _CodeIndex:
    """Normalized code -> the candidates with it (the index itself is cached by the codes,
    like the names index: the directory changes far less often than letters arrive)."""

    def __init__(self, directory: tuple[Candidate, ...]):
        self._directory = directory
        self._positions = _code_positions(tuple(c.code for c in directory))

    def get(self, code: str) -> tuple[Candidate, ...] | None:
        found = self._positions.get(code)
        return tuple(self._directory[i] for i in found) if found else None


@functools.lru_cache(maxsize=8)
def _code_positions(codes: tuple[str | None, ...]) -> dict[str, tuple[int, ...]]:
    index: dict[str, list[int]] = {}
    for i, code in enumerate(codes):
        if code:
            index.setdefault(_norm_code(code), []).append(i)
    return {k: tuple(v) for k, v in index.items()}


def _code_index(directory: tuple[Candidate, ...]) -> _CodeIndex:
    return _CodeIndex(directory)


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
# A directory is indexed once (cached by its contents): every inflected form, Latin skeleton
# and initial points at (person, part). A token is looked up, not compared with everyone;
# only typos go through rapidfuzz, whose loop runs in C.

_KINDS = ("last", "first", "middle")
_EXACT, _LATIN, _DIMINUTIVE, _TYPO, _INITIAL = 2.0, 1.8, 1.6, 1.4, 1.0


@dataclass(frozen=True)
class _Token:
    text: str  # normalized
    initial: bool
    latin: bool


@dataclass
class _Index:
    forms: dict[str, set[tuple[int, str]]]  # inflected Cyrillic form -> (person, part)
    skeletons: dict[str, set[tuple[int, str]]]  # Latin skeleton of a part -> (person, part)
    firsts: dict[str, set[int]]  # normalized nominative first name -> persons
    initials: dict[tuple[str, str], set[int]]  # (part, Cyrillic or Latin letter) -> persons
    form_keys: list[str]
    skeleton_keys: list[str]


def _index(directory: tuple[Candidate, ...]) -> _Index:
    # Keyed by the names alone: letters_recent and can_receive change with every letter sent,
    # and must not cost a rebuild. Index positions are positions in the directory.
    return _index_names(tuple((c.last_name, c.first_name, c.middle_name) for c in directory))


@functools.lru_cache(maxsize=8)
def _index_names(names: tuple[tuple[str, str, str | None], ...]) -> _Index:
    index = _Index({}, {}, {}, {}, [], [])
    for i, (last, first, middle) in enumerate(names):
        gender = guess_gender(first, middle, last)
        parts = {"last": last, "first": first, "middle": middle}
        for kind, value in parts.items():
            if not value or not value.strip():
                continue
            words = [w for w in re.split(r"[\s-]+", value.strip()) if w]
            if "-" in value:  # double surnames: each half, and the whole
                words.append(value.strip())
            for word in words:
                for form in name_forms(word, kind, gender):
                    index.forms.setdefault(form, set()).add((i, kind))
                index.skeletons.setdefault(skeleton(word), set()).add((i, kind))
            if kind != "last":
                letter = normalize(value)[:1]
                index.initials.setdefault((kind, letter), set()).add(i)
                index.initials.setdefault((kind, skeleton(letter)[:1]), set()).add(i)
            if kind == "first":
                index.firsts.setdefault(normalize(value), set()).add(i)
    index.form_keys = list(index.forms)
    index.skeleton_keys = list(index.skeletons)
    return index


def _tokens(phrase: str) -> list[_Token]:
    tokens: list[_Token] = []
    for raw in _TOKEN.findall(phrase):
        word = raw.rstrip(".")
        tokens.append(_Token(normalize(word), len(word) == 1, not is_cyrillic(word)))
    return tokens


def _near(word: str, keys: list[str]) -> list[str]:
    """Keys within a small typo of word (see names.typo_distance_ok)."""
    if len(word) < 5:
        return []
    cutoff = 2 if len(word) >= 9 else 1
    found = process.extract(word, keys, scorer=DamerauLevenshtein.distance,
                            score_cutoff=cutoff, limit=None)
    return [key for key, _, _ in found if typo_distance_ok(word, key)]


def _token_matches(token: _Token, index: _Index) -> dict[tuple[int, str], float]:
    """Every (person, part) the token may stand for, with how well."""
    found: dict[tuple[int, str], float] = {}

    def add(keys, strength: float) -> None:
        for key in keys:
            if found.get(key, 0.0) < strength:
                found[key] = strength

    if token.initial:
        for kind in ("first", "middle"):
            add(((i, kind) for i in index.initials.get((kind, token.text), ())), _INITIAL)
        return found
    if token.latin:
        sk = skeleton(token.text)
        add(index.skeletons.get(sk, ()), _LATIN)
        for key in _near(sk, index.skeleton_keys):
            add(index.skeletons[key], _TYPO)
        return found
    add(index.forms.get(token.text, ()), _EXACT)
    for name in lemma_candidates(token.text):
        add(((i, "first") for i in index.firsts.get(name, ())), _DIMINUTIVE)
    if not found:
        for key in _near(token.text, index.form_keys):
            add(index.forms[key], _TYPO)
    return found


def _score(group: list[tuple[_Token, dict]], person: int) -> float:
    """Best assignment of the group's tokens to distinct parts of one person's name; 0 if
    the group names someone else (an unexplained initial or given name) or holds neither a
    surname nor a first name with patronymic."""
    best: dict[str, float] = {}
    unexplained: list[_Token] = []
    for token, matches in group:
        options = sorted(((matches.get((person, k), 0.0), k) for k in _KINDS if k not in best),
                         reverse=True)
        strength, kind = options[0] if options else (0.0, "")
        if strength <= 0:
            unexplained.append(token)
        else:
            best[kind] = strength
    if any(t.initial or looks_like_given_name(t.text) for t in unexplained):
        return 0.0
    if "last" not in best and not {"first", "middle"} <= best.keys():
        return 0.0
    return sum(best.values())


def _groups(tokens: list[_Token], index: _Index) -> list[list[tuple[_Token, dict]]]:
    """Runs of consecutive tokens that could be part of some prisoner's name."""
    groups: list[list[tuple[_Token, dict]]] = []
    current: list[tuple[_Token, dict]] = []
    for token in tokens:
        matches = _token_matches(token, index)
        if matches or token.initial:
            current.append((token, matches))
            continue
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
    index = _index(directory)
    scores: dict[int, float] = {}
    for group in _groups(_tokens(phrase), index):
        people = {i for _, matches in group for i, _ in matches}
        for person in people:
            score = _score(group, person)
            if score > scores.get(person, 0.0):
                scores[person] = score
    if not scores:
        return None
    top = max(scores.values())
    return _decide([directory[i] for i, s in scores.items() if s >= top - 1e-9])
