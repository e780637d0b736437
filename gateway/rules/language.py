"""language: Russian only, judged by a real detector; transliteration gets a suggestion."""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass
from functools import cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings
from gateway.rules.normalize import Cleaned, clean_mapped, letters
from gateway.rules.transliteration import known_share, to_cyrillic

# The languages a letter to a Russian prison plausibly arrives in. Each one guards against a
# real confusion (Russian vs Ukrainian vs Belarusian vs Bulgarian...).
CANDIDATES = (
    Language.RUSSIAN,
    Language.UKRAINIAN,
    Language.BELARUSIAN,
    Language.BULGARIAN,
    Language.SERBIAN,
    Language.MACEDONIAN,
    Language.KAZAKH,
    Language.ENGLISH,
)
NAMES_RU = {
    Language.UKRAINIAN: "украинском",
    Language.BELARUSIAN: "белорусском",
    Language.BULGARIAN: "болгарском",
    Language.SERBIAN: "сербском",
    Language.MACEDONIAN: "македонском",
    Language.KAZAKH: "казахском",
    Language.ENGLISH: "английском",
}
_NON_RUSSIAN_LETTERS = re.compile(r"[іїєґўІЇЄҐЎ]")
# Any Cyrillic letter outside the Russian alphabet (і, ї, є, ў, ј, љ, ә, қ...).
_FOREIGN_CYRILLIC = re.compile(r"[\u0400\u0402-\u040f\u0450\u0452-\u04ff]")
# Not ъ: Bulgarian writes it in almost every sentence (със, къде, България).
_RUSSIAN_ONLY = re.compile(r"[ыэёЫЭЁ]")
_ALPHABET_MIN_LETTERS = 150
_PASSAGE_MIN_WORDS = 4
# Below this Cyrillic share a letter is in another script, not a Russian one with inserts.
_MIXED_MIN_SHARE = 0.3
_SENTENCE = re.compile(r"[^\s.!?…][^.!?…]*[.!?…]*")
_LATIN_WORD = re.compile(r"\b[A-Za-z][A-Za-z'’-]*[A-Za-z]\b")
_URLISH = re.compile(r"\S+@\S+|https?://\S+|www\.\S+|\b\S+\.(?:ru|com|org|net|рф|me|io)\b\S*", re.I)
# Every _URLISH match has "@", "://", "www." or a dot before one of its domains' first
# letters (or a letter matching one case-insensitively): a literal first, found in C, before
# the pattern is tried at every position.
_URLISH_HINT = re.compile(r"\.(?:[CIMNORcimnorРрİı]|(?<=[Ww]{3}\.))")


def _may_be_urlish(text: str) -> bool:
    return "@" in text or "://" in text or _URLISH_HINT.search(text) is not None


# Detecting a whole long letter adds nothing: the first few thousand characters decide.
_SAMPLE = 3000


@cache
def detector() -> LanguageDetector:
    # Built once per process, on first use; models preloaded so every later call is fast
    # and forked workers share them copy-on-write. Low-accuracy mode (trigrams only): ~13 MB
    # instead of ~195 MB for the eight languages, the largest single item of the stack.
    # What it cannot do alone (short texts, where a passage starts and ends) the letters
    # themselves and Russian morphology decide, sentence by sentence (`_segments`).
    built = (
        LanguageDetectorBuilder.from_languages(*CANDIDATES)
        .with_low_accuracy_mode()
        .with_preloaded_language_models()
        .build()
    )
    release_freed_heap()
    return built


def release_freed_heap() -> None:
    """Hand freed C heap back to the OS. Building the detector leaves 35-60 MB of freed
    decompression buffers in malloc's arenas, which glibc keeps; trimmed before the worker
    forks, no process carries them. Does nothing where malloc_trim is missing (not glibc)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def detect(text: str) -> tuple[Language | None, float]:
    values = detector().compute_language_confidence_values(text[:_SAMPLE])
    if not values:
        return None, 0.0
    return values[0].language, values[0].value


# Share of read-back words Russian morphology must know to call a letter translit.
TRANSLIT_KNOWN_SHARE = 0.7


def transliterated_russian(text: str, min_confidence: float = 0.6) -> str | None:
    """The Cyrillic reading of `text` if it is Russian written in Latin letters, else None."""
    if known_share(text) < TRANSLIT_KNOWN_SHARE:
        return None
    suggestion = to_cyrillic(text)
    language, confidence = detect(suggestion)
    return suggestion if language == Language.RUSSIAN and confidence >= min_confidence else None


def _finding(code: str, severity: str, ru: str, en: str, org: str, **kw) -> Finding:
    return Finding(
        rule="language",
        code=code,
        severity=severity,
        reason_ru=ru,
        reason_en=en,
        reason_organizer=org,
        passages=kw.pop("passages", ()),
        **kw,
    )  # type: ignore[arg-type]


def alphabet_says_russian(prose: str, total_letters: int) -> bool:
    """Long enough, uses ы/э/ё, and no letter Russian lacks: among the candidate languages
    only Russian writes so (Ukrainian and Bulgarian have no ы, э or ё, Belarusian always
    shows і or ў, Serbian, Macedonian and Kazakh have letters of their own). Lets a plain
    Russian letter skip the detector; everything else is the detector's to judge."""
    return (
        total_letters >= _ALPHABET_MIN_LETTERS
        and _RUSSIAN_ONLY.search(prose) is not None
        and _FOREIGN_CYRILLIC.search(prose) is None
    )


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    cleaned = clean_mapped(draft.text)
    # Addresses and links are the contacts rule's business, not a foreign language;
    # blanked to the same length so offsets still point into the letter.
    prose = cleaned.text
    if _may_be_urlish(prose):
        prose = _URLISH.sub(lambda m: " " * len(m.group()), prose)
    total, cyr, lat = letters(prose)
    if total == 0:
        return []
    share = cyr / total
    if share < settings.cyrillic_min_share:
        return [_not_cyrillic(prose, share, lat / total, settings)]

    findings: list[Finding] = []
    segments: list[Segment] = []
    if alphabet_says_russian(prose, total):
        language, confidence = Language.RUSSIAN, 1.0
    else:
        language, confidence = detect(prose)
        if language != Language.RUSSIAN or _FOREIGN_CYRILLIC.search(prose):
            # One confidence for a whole mixed letter misleads (a Russian letter quoting
            # a Ukrainian greeting can score "Macedonian 1.0"): weigh it span by span.
            segments = _segments(prose, language)
            majority, share = _majority(segments)
            if majority == Language.RUSSIAN and share >= 0.5:
                language, confidence = Language.RUSSIAN, share
            elif majority is not None and majority != language:
                language, confidence = majority, share
    if language == Language.RUSSIAN and segments:
        findings += _foreign_passages(prose, segments, cleaned, draft.text)
    if language != Language.RUSSIAN:
        name = NAMES_RU.get(language, "другом")  # type: ignore[arg-type]
        lang_en = language.name.title() if language else "another language"
        findings.append(
            _finding(
                "not_russian",
                "return" if confidence >= settings.language_min_confidence else "hold",
                f"Похоже, письмо написано на {name} языке. Цензура пропускает только письма на русском: "
                "другие задерживают или не передают. Пожалуйста, напишите по-русски.",
                f"Your letter seems to be in {lang_en}. Censors pass only letters in Russian; others "
                "are delayed or withheld. Please write in Russian.",
                f"Language detected as {lang_en} ({confidence:.2f}), not Russian.",
            )
        )
    elif (
        confidence < settings.language_min_confidence
        and _NON_RUSSIAN_LETTERS.search(prose)
        and not findings
    ):
        # Short Russian letters score low; only letters Russian lacks (і, ї, є, ґ, ў)
        # make a low score worth a person's look.
        findings.append(
            _finding(
                "uncertain",
                "hold",
                "Мы не уверены, что письмо написано по-русски; его посмотрит организатор.",
                "We are not sure your letter is in Russian; an organizer will look at it.",
                f"Russian, but with low confidence ({confidence:.2f}): check the language.",
            )
        )
    foreign = [
        (m.start(), m.end())
        for m in _LATIN_WORD.finditer(draft.text)
        if not _inside_link(draft.text, m.start())
    ]
    if len(foreign) > settings.foreign_words_allowed:
        words = tuple(dict.fromkeys(draft.text[a:b] for a, b in foreign))
        findings.append(
            _finding(
                "foreign_words",
                "hold",
                "В письме есть слова латиницей: "
                + ", ".join(words[:10])
                + ". Цензура часто задерживает "
                "письма с иностранными словами; лучше написать их по-русски.",
                "Your letter has words in Latin letters: "
                + ", ".join(words[:10])
                + ". Censors often "
                "delay letters with foreign words; better write them in Russian.",
                f"{len(foreign)} Latin-script word(s) in a Russian letter.",
                passages=words,
                spans=tuple(foreign),
            )
        )
    return findings


@dataclass(frozen=True)
class Segment:
    language: Language
    start: int
    end: int
    words: int


_WORD = re.compile(r"\w+")
_RUSSIAN_WORD = re.compile(r"[а-яё]{2,}")
_UKRAINIAN_ONLY = re.compile(r"[їєґЇЄҐ]")
_BELARUSIAN_ONLY = re.compile(r"[ўЎ]")
_I = re.compile(r"[іІ]")
# Share of a sentence's words Russian morphology must know to call it Russian.
SENTENCE_KNOWN_SHARE = 0.7


def _sentence_language(piece: str, fallback: Language | None) -> Language | None:
    """One sentence's language from its letters where they decide (ы/э/ё only in Russian,
    ї/є/ґ only in Ukrainian, ў only in Belarusian, і with и Ukrainian, і with ы Belarusian),
    else Russian if Russian morphology knows its words, else the whole letter's verdict."""
    foreign = _FOREIGN_CYRILLIC.search(piece) is not None
    if not foreign:
        if _RUSSIAN_ONLY.search(piece):
            return Language.RUSSIAN
        words = _RUSSIAN_WORD.findall(piece.lower())
        if words:
            from gateway.morph import analyzer

            morph = analyzer()
            if sum(map(morph.word_is_known, words)) / len(words) >= SENTENCE_KNOWN_SHARE:
                return Language.RUSSIAN
        return fallback
    if _UKRAINIAN_ONLY.search(piece):
        return Language.UKRAINIAN
    if _BELARUSIAN_ONLY.search(piece):
        return Language.BELARUSIAN
    if _I.search(piece):
        with_i, with_y = "и" in piece.lower(), "ы" in piece.lower()
        if with_i != with_y:
            return Language.UKRAINIAN if with_i else Language.BELARUSIAN
    return fallback


def _segments(prose: str, fallback: Language | None = None) -> list[Segment]:
    """The letter sentence by sentence, runs of one language merged. Sentences, not the
    detector's own spans: trigram-only (low-accuracy) models place the edges of a passage
    badly, while the letters of a sentence (і, є, ў; ы, э, ё) are exact."""
    out: list[Segment] = []
    for m in _SENTENCE.finditer(prose[:_SAMPLE]):
        words = len(_WORD.findall(m.group()))
        language = _sentence_language(m.group(), fallback) if words else None
        if language is None:
            continue
        if out and out[-1].language == language:
            last = out[-1]
            out[-1] = Segment(language, last.start, m.end(), last.words + words)
        else:
            out.append(Segment(language, m.start(), m.end(), words))
    return out


def _majority(segments: list[Segment]) -> tuple[Language | None, float]:
    by_language: dict[Language, int] = {}
    for seg in segments:
        by_language[seg.language] = by_language.get(seg.language, 0) + seg.words
    total = sum(by_language.values())
    if not total:
        return None, 0.0
    language = max(by_language, key=lambda lang: by_language[lang])
    return language, by_language[language] / total


def _foreign_passages(
    prose: str, segments: list[Segment], cleaned: Cleaned, original: str
) -> list[Finding]:
    """A Russian letter with a passage in Ukrainian or Belarusian (a quote, a grandmother's
    greeting): a person decides whether the censor will mind. Only spans that show letters
    Russian lacks count, so the detector's noise on a few Russian words is ignored."""
    spans = []
    for r in segments:
        piece = prose[r.start : r.end]
        if (
            r.language != Language.RUSSIAN
            and r.words >= _PASSAGE_MIN_WORDS
            and _FOREIGN_CYRILLIC.search(piece)
        ):
            # The detector's edges wander by a word or two: keep the sentences that show
            # the foreign letters.
            marked = [m for m in _SENTENCE.finditer(piece) if _FOREIGN_CYRILLIC.search(m.group())]
            a, b = r.start + marked[0].start(), r.start + marked[-1].end()
            spans.append((cleaned.span(a, b), r.language))
    if not spans:
        return []
    passages = tuple(original[a:b].strip() for (a, b), _ in spans)
    names = ", ".join(dict.fromkeys(lang.name.title() for _, lang in spans))
    return [
        _finding(
            "foreign_passage",
            "hold",
            "Часть письма, похоже, написана не по-русски. Цензура может задержать такое письмо; "
            "организатор посмотрит это место.",
            "Part of your letter seems not to be in Russian. Censors may hold such a letter; an "
            "organizer will look at that passage.",
            f"Passage(s) detected as {names} inside a Russian letter.",
            passages=passages,
            spans=tuple(span for span, _ in spans),
        )
    ]


def _inside_link(text: str, pos: int) -> bool:
    start = text.rfind(" ", 0, pos) + 1
    end = text.find(" ", pos)
    word = text[start : end if end != -1 else len(text)]
    return _URLISH.fullmatch(word.strip(".,;:!?()«»\"'")) is not None


def _not_cyrillic(prose: str, share: float, latin_share: float, settings: RuleSettings) -> Finding:
    if latin_share >= 0.5:
        suggestion = transliterated_russian(prose, settings.language_min_confidence)
        if suggestion is not None:
            return _finding(
                "translit",
                "return",
                "Письмо написано латиницей. Цензура пропускает только письма русскими буквами. "
                "Ниже — как мы прочли его кириллицей; проверьте, исправьте и пришлите снова "
                "(мы ничего не меняем сами).",
                "Your letter is written in Latin letters. Censors pass only letters in Cyrillic. "
                "Below is how we read it in Cyrillic; please check it, correct it and send it again "
                "(we never change a letter ourselves).",
                f"Transliterated Russian (Cyrillic share {share:.0%}); Cyrillic suggestion offered.",
                suggestion=suggestion,
            )
    if latin_share >= 0.5 or share < _MIXED_MIN_SHARE:
        return _finding(
            "not_russian",
            "return",
            "Похоже, письмо написано не по-русски. Цензура пропускает только письма на русском языке. "
            "Пожалуйста, напишите по-русски.",
            "Your letter does not seem to be in Russian. Censors pass only letters in Russian. "
            "Please write in Russian.",
            # Only English is a Latin-script candidate, so naming "English" here could be
            # wrong (German, Georgian...): say what was measured instead.
            f"Cyrillic share {share:.0%}, Latin {latin_share:.0%}; not transliterated Russian.",
        )
    return _finding(
        "mixed_script",
        "hold",
        "В письме много букв не кириллицей. Организатор посмотрит его, прежде чем отправить.",
        "Much of your letter is not in Cyrillic letters. An organizer will look at it before it is sent.",
        f"Cyrillic share {share:.0%} is below the {settings.cyrillic_min_share:.0%} threshold.",
    )


RULE = Rule(
    name="language",
    description="Russian in Cyrillic, judged by lingua over likely languages; translit gets a suggestion.",
    check=check,
)
