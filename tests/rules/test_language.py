"""language: Russian passes; Ukrainian and Belarusian are not taken for Russian; translit
gets a Cyrillic suggestion, never a silent conversion."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.rules import LetterDraft, RuleSettings, run_rules
from gateway.rules.language import alphabet_says_russian, check, detector

pytestmark = pytest.mark.rules

RUSSIAN = (
    "Здравствуй, Ваня! Как ты себя чувствуешь? У нас всё хорошо, дети растут, весна пришла рано."
)
UKRAINIAN = (
    "Привіт, Іване! Як ти себе почуваєш? У нас усе добре, діти ростуть, весна прийшла "
    "рано. Ми часто згадуємо тебе і чекаємо листа."
)
BELARUSIAN = (
    "Прывітанне, Іван! Як ты сябе адчуваеш? У нас усё добра, дзеці растуць, вясна "
    "прыйшла рана. Мы часта ўспамінаем цябе і чакаем ліста."
)
BULGARIAN = "Здравей, Иване! Как си? При нас всичко е наред, децата растат, пролетта дойде рано."
ENGLISH = (
    "Hello Ivan! How are you feeling? We are all well, the children are growing, spring came early."
)
TRANSLIT = (
    "Privet, Vanya! Kak ty sebya chuvstvuesh? U nas vse horosho, deti rastut, "
    "vesna prishla rano. My chasto vspominaem tebya i zhdem pisma."
)


def _check(text: str, **kw):
    return check(LetterDraft(text=text), RuleSettings(**kw))


def test_detector_is_built_once():
    assert detector() is detector()


@pytest.mark.parametrize("text", [RUSSIAN, "Привет, как ты?", "Скучаю. Обнимаю!"])
def test_russian_passes(text):
    assert _check(text) == []


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (UKRAINIAN, "Ukrainian"),
        (BELARUSIAN, "Belarusian"),
        (BULGARIAN, "Bulgarian"),
        ("Привіт, як ти?", "Ukrainian"),
        ("Прывітанне, як ты?", "Belarusian"),
    ],
)
def test_other_cyrillic_languages_are_not_taken_for_russian(text, language):
    (finding,) = _check(text)
    assert finding.code == "not_russian"
    assert finding.severity == "return"
    assert language in finding.reason_en
    assert "русском" in finding.reason_ru


def test_english_is_returned_without_a_bogus_cyrillic_suggestion():
    (finding,) = _check(ENGLISH)
    assert (finding.code, finding.severity, finding.suggestion) == ("not_russian", "return", None)


def test_translit_gets_a_suggestion_and_is_never_converted_silently():
    draft = LetterDraft(text=TRANSLIT)
    decision = run_rules(draft)
    assert decision.outcome == "return"
    (finding,) = decision.by_rule("language")
    assert finding.code == "translit"
    assert finding.suggestion is not None
    assert finding.suggestion.startswith("Привет, Ваня! Как ты себя чувствуешь?")
    assert "весна пришла рано" in finding.suggestion
    assert draft.text == TRANSLIT  # the letter itself is untouched
    assert "проверьте" in finding.reason_ru and "never change" in finding.reason_en


def test_latin_words_inside_a_russian_letter_are_held_as_foreign():
    text = RUSSIAN + " Вчера купила новый iPhone и слушала Beatles."
    (finding,) = _check(text)
    assert (finding.code, finding.severity) == ("foreign_words", "hold")
    assert finding.passages == ("iPhone", "Beatles")
    assert [text[a:b] for a, b in finding.spans] == ["iPhone", "Beatles"]
    assert _check(text, foreign_words_allowed=2) == []


def test_links_and_addresses_are_not_foreign_words():
    # Those are the contacts rule's to report, once.
    text = RUSSIAN + " Пиши на ivan@mail.ru или смотри https://example.org/page"
    assert _check(text) == []


def test_cyrillic_share_gate_holds_a_mixed_letter():
    text = (
        "Привет! " + "Today I went to the park and it was lovely and sunny. " * 2 + "Обнимаю, мама."
    )
    (finding,) = _check(text, cyrillic_min_share=0.7)
    assert finding.code in ("mixed_script", "not_russian")
    assert finding.severity in ("hold", "return")


def test_threshold_is_tunable():
    text = RUSSIAN + " Today was fine."
    findings = _check(text, cyrillic_min_share=0.99)
    assert findings and findings[0].code == "mixed_script"


LONG_UKRAINIAN = (UKRAINIAN + " ") * 3 + "Вчора ходили до театру, дивилися виставу про кохання."
LONG_BELARUSIAN = (BELARUSIAN + " ") * 3 + "Учора хадзілі ў тэатр, глядзелі спектакль пра каханне."


@pytest.mark.parametrize(
    ("text", "language"), [(LONG_UKRAINIAN, "Ukrainian"), (LONG_BELARUSIAN, "Belarusian")]
)
def test_long_ukrainian_and_belarusian_letters_are_returned(text, language):
    (finding,) = _check(text)
    assert (finding.code, finding.severity) == ("not_russian", "return")
    assert language in finding.reason_en


def test_alphabet_shortcut_is_only_for_plainly_russian_text():
    long_ru = RUSSIAN * 3
    assert alphabet_says_russian(long_ru, 200)
    assert not alphabet_says_russian(RUSSIAN, 60)  # too short: the detector decides
    assert not alphabet_says_russian(LONG_UKRAINIAN, 200)
    assert not alphabet_says_russian(LONG_BELARUSIAN, 200)
    assert not alphabet_says_russian(BULGARIAN * 3, 200)  # no ы/э in Bulgarian


# Bulgarian as it is written: ъ in most sentences, all in letters Russian also has.
LONG_BULGARIAN = (
    "Здравей, Иване! Как си? Ние сме добре, децата растат, пролетта дойде рано. Мислим за "
    "теб всеки ден и чакаме писмото ти. Вчера бяхме в парка със съседите, беше много хубаво. "
    "Къде си сега и какво правиш? Пиши ни, когато можеш. Обичаме те и те чакаме у дома."
)


def test_a_long_bulgarian_letter_with_hard_signs_does_not_take_the_russian_shortcut():
    assert not alphabet_says_russian(LONG_BULGARIAN, 196)
    (finding,) = _check(LONG_BULGARIAN)
    assert (finding.code, finding.severity) == ("not_russian", "return")
    assert "Bulgarian" in finding.reason_en


def test_a_ukrainian_passage_inside_a_russian_letter_is_held_and_marked():
    passage = "Привіт, Іване! Як ти себе почуваєш? Ми часто згадуємо тебе і чекаємо листа."
    text = (
        RUSSIAN
        + " Бабушка просила передать слово в слово: "
        + passage
        + " Обнимаю тебя крепко, твоя мама. Пиши нам чаще, мы очень ждём."
    )
    (finding,) = _check(text)
    assert (finding.code, finding.severity) == ("foreign_passage", "hold")
    ((a, b),) = finding.spans
    assert "Як ти себе почуваєш?" in text[a:b]
    assert "Ukrainian" in finding.reason_organizer


@pytest.mark.parametrize(
    "text",
    [
        "Guten Tag, Iwan! Wie geht es dir? Wir sind alle gesund, das Wetter ist schön.",
        "გამარჯობა, ივანე! როგორ ხარ? ჩვენთან ყველაფერი კარგადაა.",
    ],
)
def test_other_scripts_and_latin_languages_are_returned(text):
    (finding,) = _check(text)
    assert (finding.code, finding.severity, finding.suggestion) == ("not_russian", "return", None)


def test_building_the_detector_hands_its_freed_buffers_back():
    # Before the trim, a worker parent and each forked child carried 35-60 MB of freed
    # decompression buffers. A fresh process, so the models load here and now.
    probe = (
        "import ctypes, os\n"
        "from gateway.rules.language import detector\n"
        "libc = ctypes.CDLL(None)\n"
        "assert hasattr(libc, 'malloc_trim')\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        "detector()\n"
        "before = rss()\n"
        "libc.malloc_trim(0)\n"
        "print((before - rss()) // 2**20)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    if "AssertionError" in done.stderr:
        pytest.skip("no malloc_trim here (not glibc)")
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 15  # MB still freeable after the build
