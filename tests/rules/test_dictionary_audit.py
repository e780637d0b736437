"""Every word pymorphy3's dictionary knows (3 million forms) through the profanity matcher:
only words that really are rude may trip it. About 80 s, so opt-in:
RULES_DICTIONARY_AUDIT=1 .venv/bin/pytest -m rules tests/rules/test_dictionary_audit.py"""

from __future__ import annotations

import os

import pytest

from gateway.rules.lexicon import lexicon_dirs
from gateway.rules.morphology import analyzer
from gateway.rules.profanity import is_profane, lexicon

pytestmark = [
    pytest.mark.rules,
    pytest.mark.skipif(
        not os.environ.get("RULES_DICTIONARY_AUDIT"),
        reason="set RULES_DICTIONARY_AUDIT=1 to scan the whole dictionary",
    ),
]

# Lemmas the dictionary itself marks as obscene or rude: these must trip.
RUDE_LEMMAS = {
    "ахуй",
    "бля",
    "блядский",
    "блядь",
    "выблядок",
    "гандон",
    "гнида",
    "говно",
    "говнюк",
    "дерьмо",
    "дерьмовый",
    "ебальник",
    "еблан",
    "жопа",
    "заебись",
    "залупить",
    "залупиться",
    "залуплять",
    "залупляться",
    "засранец",
    "мразь",
    "мудак",
    "мудила",
    "нахуй",
    "нехуй",
    "охуение",
    "охуенно",
    "охуенный",
    "падла",
    "падло",
    "пидарас",
    "пидор",
    "пидорас",
    "пизда",
    "пиздец",
    "пиздобол",
    "похерить",
    "сраный",
    "ссать",
    "сука",
    "сукин",
    "ублюдок",
    "хер",
    "херить",
    "хериться",
    "херня",
    "херовый",
    "хуй",
    "хуйня",
    "хуёво",
    "хуёвый",
    "шлюха",
    "ёбаный",
}


def test_no_ordinary_dictionary_word_trips_profanity():
    lex = lexicon(lexicon_dirs())
    flagged: set[str] = set()
    seen: set[str] = set()
    for word, _tag, normal, _para, _idx in analyzer().dictionary.iter_known_words():
        if word in seen:
            continue
        seen.add(word)
        if is_profane(word, lex, translit=False):
            flagged.add(normal)
    assert flagged - RUDE_LEMMAS == set()
    assert RUDE_LEMMAS - flagged == set()
