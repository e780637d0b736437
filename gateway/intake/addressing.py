"""Which prisoner is this letter for?

Sources, strongest first: a plus-address ``letters+<code>@…`` among the recipients; a first
line "Кому: …" (removed from the text); the subject; and, when nothing names anyone, the
prisoner of the letter whose notice this message answers (In-Reply-To our Message-ID). In the line and the subject the prisoner
is found by the directory's short code ("K123") or by name the way Russians write names: any
grammatical case, with or without patronymic, ё/е, initials, diminutives, Latin
transliteration and small typos. "Любому"/"anyone" picks the prisoner who can receive letters
and has had the fewest lately. Two equally good matches are "ambiguous": a birth year, region
or facility the writer gave narrows them, else the writer is asked. Sources that name different
prisoners (a plus-address code against the "Кому:" line, say) are a conflict: the writer is
asked too, never guessed for.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    region: str = ""


@dataclass(frozen=True)
class Resolution:
    kind: Literal["found", "ambiguous", "not_found", "anyone"]
    prisoner_id: int | None
    candidates: tuple[Candidate, ...]  # the choices when ambiguous
    text: str  # the letter text with a leading "Кому: ..." addressing line removed
    conflict: bool = False  # ambiguous because two sources name different prisoners


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
                      answered_prisoner: int | None = None,
                      notes: Sequence[str] = ()) -> Resolution:
    """`answered_prisoner`: the letter's message answers one of our notices about a letter
    to this prisoner; it is the weakest source, used when nothing in the message names anyone.
    `notes`: other places where a writer names the addressee, weaker than the subject (a
    forwarding note, a forwarded message's subject)."""
    directory = tuple(directory)
    text, line = _split_address_line(text)
    phrases = [p for p in (line, _strip_reply_prefixes(subject)) if p is not None]
    named = [_from_recipients(recipients, directory)]
    named += [_from_phrase(p, directory) for p in phrases]
    named = [r for r in named if r is not None]
    if not any(r.kind in ("found", "ambiguous", "anyone") for r in named):
        named = [r for r in (_from_phrase(n, directory) for n in notes) if r is not None]
    answered = next((c for c in directory if c.id == answered_prisoner), None)
    stated_years = {int(m.group(1)) for p in phrases for m in _BIRTH_YEAR.finditer(p)}

    found = {r.prisoner_id: r.candidates[0] for r in named if r.kind == "found"}
    unsure = [r for r in named if r.kind == "ambiguous"]
    if len(found) > 1:
        return Resolution("ambiguous", None, _ordered(found.values()), text, conflict=True)
    if found:
        (chosen,) = found.values()
        for other in unsure:
            if chosen not in other.candidates:
                return Resolution("ambiguous", None, _ordered([chosen, *other.candidates]), text,
                                  conflict=True)
        if stated_years and chosen.birth_year and chosen.birth_year not in stated_years:
            # "Иванову Ивану 1979 г.р." and ours was born in 1980: ask, do not pay for a guess
            return Resolution("ambiguous", None, (chosen,), text, conflict=True)
        return Resolution("found", chosen.id, (chosen,), text)
    for result in named:
        if result.kind == "anyone":
            return Resolution("anyone", result.prisoner_id, result.candidates, text)
    if unsure:
        if answered is not None and all(answered in r.candidates for r in unsure):
            return Resolution("found", answered.id, (answered,), text)
        common = set.intersection(*(set(r.candidates) for r in unsure))
        # Only now, for namesakes: what else the writer said about the person where they
        # addressed it (not the letter: "пишу вам из Москвы" is the writer's city).
        hints = _hints(" \n".join([*phrases, *notes]))
        narrowed = _narrow(_ordered(common or {c for r in unsure for c in r.candidates}), hints)
        if len(narrowed) == 1:
            return Resolution("found", narrowed[0].id, narrowed, text)
        return Resolution("ambiguous", None, narrowed, text)
    if answered is not None:
        return Resolution("found", answered.id, (answered,), text)
    return Resolution("not_found", None, (), text)


# The whole first line is the number ("2", "№ 2", "номер 2."): "2 дня назад…" is not a choice.
_CHOICE_NUMBER = re.compile(r"^\s*(?:№|#|no\.?|number|номер|вариант)?\s*(\d{1,2})\s*[.)!]?\s*$",
                            re.IGNORECASE)


def read_choice(subject: str, text: str, choices: Sequence[Candidate]) -> Candidate | None:
    """Which of the listed prisoners the writer's answer names: the number from our list
    ("2"), a directory code, or a name. None when it names none or several."""
    choices = _ordered(choices)
    lines = [line for line in text.split("\n") if line.strip()][:3]
    for line in lines[:1]:
        found = _CHOICE_NUMBER.match(line)
        if found and 1 <= int(found.group(1)) <= len(choices):
            return choices[int(found.group(1)) - 1]
    for phrase in [*lines, _strip_reply_prefixes(subject)]:
        result = _from_phrase(phrase, choices)
        if result is not None and result.kind == "found":
            return result.candidates[0]
    return None


def _ordered(candidates) -> tuple[Candidate, ...]:
    """Stable order (the notice numbers the choices)."""
    return tuple(sorted(set(candidates), key=lambda c: c.id))


# -- what tells namesakes apart: birth year, region, facility -----------------------------

_BIRTH_YEAR = re.compile(
    r"(?<!\d)((?:19|20)\d\d)(?!\d)\s*(?:г\.?\s*р\.?|года?\s+рожд\w*|г\.?\s*рожд\w*|"
    r"(?:years?\s+)?b\.|гр\b|г\.?(?!\w))?", re.IGNORECASE)
_FACILITY_CODE = re.compile(r"([а-яёa-z]{2,6})\s*[-№#]?\s*(\d{1,3})(?!\d)", re.IGNORECASE)
_WORD = re.compile(r"[а-яёa-z]{4,}", re.IGNORECASE)


@dataclass(frozen=True)
class _Hints:
    years: frozenset[int]
    words: frozenset[str]  # lemmas of the words, and facility codes as "ик2"


def _hints(text: str) -> _Hints:
    years = frozenset(int(m.group(1)) for m in _BIRTH_YEAR.finditer(text))
    return _Hints(years, _place_words(text))


@functools.lru_cache(maxsize=4096)
def _place_words(text: str) -> frozenset[str]:
    words = {f"{normalize(a)}{b}" for a, b in _FACILITY_CODE.findall(text)}
    for word in _WORD.findall(text):
        words.update(lemma_candidates(word.lower()) if is_cyrillic(word) else {word.lower()})
        words.update(_lemmas(word))
    return frozenset(words)


@functools.lru_cache(maxsize=16384)
def _lemmas(word: str) -> frozenset[str]:
    from gateway.intake.names import morph

    return frozenset(normalize(p.normal_form) for p in morph().parse(word.lower())[:3])


def _narrow(candidates: tuple[Candidate, ...], hints: _Hints) -> tuple[Candidate, ...]:
    """The namesakes the writer's birth year, then region and facility, fit (all when none
    fits: then the writer is asked). A year outranks a place: people are transferred."""
    if hints.years:
        born = tuple(c for c in candidates if c.birth_year in hints.years)
        if not born:
            return candidates
        candidates = born

    def fit(c: Candidate) -> int:
        return len(_place_words(f"{c.facility_name} {c.region}") & hints.words)

    best = max((fit(c) for c in candidates), default=0)
    return candidates if best == 0 else tuple(c for c in candidates if fit(c) == best)


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
    return _last(_CODE_INDEX, directory, _CodeIndex)


# The indexes of the last directory asked about, by identity: a check batch hands every
# letter the same tuple, so its names and codes are not gathered and hashed again for each
# letter's look-up of the cached index (a fresh tuple, however equal, is looked up afresh).
_CODE_INDEX: list = [(None, None)]
_NAME_INDEX: list = [(None, None)]


def _last(slot: list, directory: tuple[Candidate, ...], build):
    known, value = slot[0]  # one pair, replaced whole: threads may share the slot
    if known is directory:
        return value
    value = build(directory)
    slot[0] = (directory, value)
    return value


def least_written(pool: Sequence[Candidate], counts: dict[int, int] | None = None
                  ) -> Candidate | None:
    """The prisoner of the pool who can receive letters and has had the fewest (by `counts`
    when given, the live numbers; else each candidate's letters_recent), lowest id on a tie.
    The pool is any candidate set: the directory, or one campaign's prisoners."""
    able = [c for c in pool if c.can_receive]
    if not able:
        return None
    if counts is None:
        return min(able, key=lambda c: (c.letters_recent, c.id))
    return min(able, key=lambda c: (counts.get(c.id, 0), c.id))


def _anyone(directory: tuple[Candidate, ...]) -> Resolution:
    # A proposal from the batch's snapshot; the pipeline claims the real choice under a lock
    # (CheckBatch.claim_anyone), so concurrent workers spread "anyone" letters evenly.
    chosen = least_written(directory)
    if chosen is None:
        return Resolution("anyone", None, (), "")
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
    # What each token seen so far matches here (read-only): subjects repeat their words
    # ("письмо", the same names), and a word the names lack costs a typo search each time.
    known: dict[_Token, dict[tuple[int, str], float]] = field(default_factory=dict)


_KNOWN_MAX = 8192  # tokens remembered per index; then forgotten at once and relearned


def _index(directory: tuple[Candidate, ...]) -> _Index:
    # Keyed by the names alone: letters_recent and can_receive change with every letter sent,
    # and must not cost a rebuild. Index positions are positions in the directory.
    return _last(_NAME_INDEX, directory, lambda d: _index_names(
        tuple((c.last_name, c.first_name, c.middle_name) for c in d)))


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
                    # "Petrovoi Marii": the Latin of every case, not only the nominative
                    index.skeletons.setdefault(skeleton(form), set()).add((i, kind))
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


# One-letter Russian words ("письмо к Ивану", "о Льве", "с Марией") are not initials unless
# written with a dot or in capitals after a name ("Иванову И И").
_ONE_LETTER_WORDS = frozenset("авиксоуя")


def _tokens(phrase: str) -> list[_Token | None]:
    """The phrase's words; None where a word that cannot be part of a name breaks a run."""
    tokens: list[_Token | None] = []
    phrase = _BIRTH_YEAR.sub(" , ", phrase)  # "1985 г.р." copied from a list
    for raw in _TOKEN.findall(phrase):
        word = raw.rstrip(".")
        if len(word) == 1 and not raw.endswith(".") and word.lower() in _ONE_LETTER_WORDS \
                and (word.islower() or not tokens or tokens[-1] is None):
            tokens.append(None)
            continue
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


def _known_matches(token: _Token, index: _Index) -> dict[tuple[int, str], float]:
    found = index.known.get(token)
    if found is None:
        if len(index.known) >= _KNOWN_MAX:
            index.known.clear()
        found = index.known[token] = _token_matches(token, index)
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
        matches = _known_matches(token, index) if token is not None else {}
        if token is not None and (matches or token.initial):
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
