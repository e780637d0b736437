"""censor_memory: a letter like one this facility's censor recently stopped is held for a
person, with that history beside it, before it is paid for.

"Like" means it shares a risky topic (the topics lexicons), a name (surnames, organizations:
capitalized words inside a sentence that are not first names or places), or enough of its
nouns, or it carries photos where the censor's reason was about photos."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from weakref import WeakKeyDictionary

from gateway.morph import analyzer
from gateway.rules.base import Finding, LetterDraft, PastCensorship, Rule, RuleSettings
from gateway.rules.lexicon import lexicon_dirs
from gateway.rules.normalize import clean, fold, words
from gateway.rules.topics import categories, find

# Nouns nearly every letter of support has: they make two letters alike in nothing.
_COMMON_NOUNS = frozenset("""письмо день дело время год жизнь человек раз друг семья мама
папа здоровье привет погода неделя месяц утро вечер ночь дом работа книга надежда сила
поддержка слово мысль вопрос ответ новость сердце душа мир спасибо пожалуйста фото
фотография""".split())
_NOT_NAMES = frozenset({"Name", "Patr", "Geox"})  # greetings and cities are in every letter
_PHOTO_REASON = re.compile(r"фот|снимк|снимок|изображен|картин|photo|picture|image", re.I)
_SENTENCE_END = re.compile(r"[.!?…]\s*$")
# Shared nouns that make two letters alike: at least this many, and this share of all.
MIN_SHARED_NOUNS = 3
MIN_NOUN_OVERLAP = 0.25


@dataclass(frozen=True)
class Profile:
    topics: frozenset[str]
    names: frozenset[str]
    nouns: frozenset[str]
    # Capitalized at a sentence's start too: a name only if the other letter shows it is.
    capitalized: frozenset[str] = frozenset()


@lru_cache(maxsize=65536)
def _parse(word: str):
    return analyzer().parse(word)[0]


def profile(text: str, settings: RuleSettings = RuleSettings()) -> Profile:  # noqa: B008
    """What a letter is about, in the terms letters are compared in."""
    return _profile(text, lexicon_dirs(settings.lexicon_dirs))


# A facility's stopped letters are compared with every next letter of the batch: each is
# profiled once, and forgotten with the batch that holds it (no letter text outlives it).
_PAST: WeakKeyDictionary[PastCensorship, dict] = WeakKeyDictionary()


def _past_profile(past: PastCensorship, settings: RuleSettings) -> Profile:
    dirs = lexicon_dirs(settings.lexicon_dirs)
    known = _PAST.setdefault(past, {})
    if dirs not in known:
        known[dirs] = _profile(past.text or "", dirs)
    return known[dirs]


def _profile(text: str, dirs) -> Profile:
    cleaned = clean(text)
    topics = frozenset(find(cleaned, dirs))
    names: set[str] = set()
    nouns: set[str] = set()
    capitalized: set[str] = set()
    for token in words(cleaned):
        parse = _parse(token.norm)
        lemma = fold(parse.normal_form)
        starts_sentence = token.start == 0 or _SENTENCE_END.search(cleaned[:token.start])
        name_like = token.text[:1].isupper() and len(token.text) > 2 \
            and not (_NOT_NAMES & parse.tag.grammemes)
        if name_like:
            capitalized.add(lemma)
        if name_like and not starts_sentence:
            names.add(lemma)
        elif "NOUN" in parse.tag and len(lemma) >= 4 and lemma not in _COMMON_NOUNS \
                and not ({"Name", "Surn", "Patr"} & parse.tag.grammemes):
            nouns.add(lemma)
    return Profile(topics, frozenset(names), frozenset(nouns - names), frozenset(capitalized))


def features(text: str | None, photo_types: tuple[str, ...] = ()) -> dict:
    """What censor_decisions.features keeps of a stopped letter: categories, not words,
    so it says nothing once retention has forgotten the letter."""
    return {"topics": sorted(profile(text or "").topics), "photos": list(photo_types)}


@dataclass(frozen=True)
class Likeness:
    past: PastCensorship
    topics: frozenset[str]
    names: frozenset[str]
    nouns: frozenset[str]
    photos: bool

    def __bool__(self) -> bool:
        return bool(self.topics or self.names or self.photos
                    or len(self.nouns) >= MIN_SHARED_NOUNS)


def likeness(mine: Profile, has_photos: bool, past: PastCensorship,
             settings: RuleSettings) -> Likeness:
    empty: frozenset[str] = frozenset()
    theirs = _past_profile(past, settings) if past.text else Profile(empty, empty, empty)
    topics = mine.topics & (theirs.topics | frozenset(past.topics))
    shared = mine.nouns & theirs.nouns
    union = mine.nouns | theirs.nouns
    nouns = shared if union and len(shared) / len(union) >= MIN_NOUN_OVERLAP else frozenset()
    photos = has_photos and past.photos > 0 and bool(_PHOTO_REASON.search(past.reason or ""))
    names = (mine.names & theirs.capitalized) | (mine.capitalized & theirs.names)
    return Likeness(past, topics, names, nouns, photos)


def _titles(codes: frozenset[str], settings: RuleSettings, lang: str) -> list[str]:
    by_name = {c.name: c for c in categories(lexicon_dirs(settings.lexicon_dirs))}
    return [getattr(by_name[c], f"title_{lang}") if c in by_name else c for c in sorted(codes)]


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    if not draft.censor_history:
        return []
    mine = profile(draft.text, settings)
    alike = [like for past in draft.censor_history
             if (like := likeness(mine, bool(draft.photos), past, settings))]
    if not alike:
        return []
    topics = frozenset().union(*(a.topics for a in alike))
    # The writer learns only the kind of likeness: the other letter may be someone else's.
    about_ru = ", ".join(f"«{t}»" for t in _titles(topics, settings, "ru")) or "те же имена и темы"
    about_en = ", ".join(_titles(topics, settings, "en")) or "the same names and subjects"
    if any(a.photos for a in alike) and not topics:
        about_ru, about_en = "фотографии", "photos"
    where = draft.facility_name or "this facility"
    history = "; ".join(
        f"letter {a.past.letter_id}: censor said {a.past.reason or 'nothing'!r}"
        + "".join(f", shares {label} {', '.join(sorted(v))}" for label, v in
                  (("topics", a.topics), ("names", a.names), ("nouns", a.nouns)) if v)
        + (", both with photos" if a.photos else "")
        for a in alike[:5])
    return [Finding(
        rule="censor_memory", code="resembles_censored", severity="hold",
        passages=(),
        reason_ru=f"Цензор этого учреждения недавно не пропустил похожее письмо ({about_ru}). "
                  "Прежде чем платить за отправку, организатор прочтёт ваше и подскажет, "
                  "если что-то лучше изменить.",
        reason_en=f"This facility's censor recently stopped a similar letter ({about_en}). "
                  "Before we pay to send it, an organizer will read yours and suggest a "
                  "change if one would help.",
        reason_organizer=f"Like {len(alike)} of the {len(draft.censor_history)} letters the "
                         f"censor at {where} stopped recently ({history}). See the "
                         "facility's history beside the letter.",
    )]


def tends_to_stop(history: list[PastCensorship], settings: RuleSettings = RuleSettings(),  # noqa: B008
                  top: int = 3) -> tuple[list[str], list[str]]:
    """The topics a facility's censor stopped most often (ru, en titles), for the notice a
    writer gets after a censorship; empty until at least two letters show a pattern."""
    counts: dict[str, int] = {}
    for past in history:
        for code in past.topics:
            counts[code] = counts.get(code, 0) + 1
    common = frozenset(sorted((c for c, n in counts.items() if n >= 2),
                              key=lambda c: -counts[c])[:top])
    if any(past.photos for past in history if _PHOTO_REASON.search(past.reason or "")):
        photos = (["фотографии"], ["photos"])
    else:
        photos = ([], [])
    return (_titles(common, settings, "ru") + photos[0], _titles(common, settings, "en") + photos[1])


RULE = Rule(
    name="censor_memory",
    description="A letter like one this facility's censor recently stopped: hold, with "
                "the history beside it.",
    check=check,
)
