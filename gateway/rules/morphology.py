"""Russian morphology through pymorphy3: one analyzer per process, built on first use."""

from __future__ import annotations

from functools import lru_cache

from gateway.morph import analyzer  # the process's one analyzer, shared with name matching
from gateway.rules.normalize import fold


@lru_cache(maxsize=65536)
def lemmas(word: str) -> frozenset[str]:
    """Every normal form of every parse (побегу → {побег, побежать}), folded."""
    return frozenset(fold(p.normal_form) for p in analyzer().parse(word))


@lru_cache(maxsize=65536)
def known_lemmas(word: str) -> frozenset[str]:
    """Normal forms of the parses the dictionary vouches for (no guessed paradigms): an
    exception must not be granted on pymorphy3's guess ("похуй" guessed as поховать)."""
    return frozenset(fold(p.normal_form) for p in analyzer().parse(word) if p.is_known)


@lru_cache(maxsize=16384)
def inflections(lemma: str) -> frozenset[str]:
    """Every inflected form of a lemma, across all parses whose normal form it is.

    Lexicons are expanded once this way so that a letter is matched by set lookups
    instead of parsing each of its words (microseconds, not milliseconds)."""
    lemma = fold(lemma)
    forms = {lemma}
    parses = analyzer().parse(lemma)
    own = [p for p in parses if fold(p.normal_form) == lemma]
    # An entry written in an inflected form ("борьбы") still expands to its whole lexeme.
    for parse in own or parses:
        forms.update(fold(f.word) for f in parse.lexeme)
    return frozenset(forms)
