"""Lexicon files: plain-text word lists organizers extend without touching code.

See gateway/rules/lexicons/README.md for the format. The shipped directory is read first,
then every extra directory from the settings, so organizers' files add to ours.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.rules.morphology import inflections
from gateway.rules.normalize import Token, fold

SHIPPED = Path(__file__).with_name("lexicons")


def lexicon_dirs(extra: tuple[str, ...] = ()) -> tuple[Path, ...]:
    return (SHIPPED, *(Path(d) for d in extra))


def entries(relative: str, dirs: tuple[Path, ...]) -> Iterator[str]:
    """Non-empty lines of `relative` in each directory, comments (`# ...`) stripped."""
    for d in dirs:
        path = d / relative
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
            if line:
                yield line


def files(subdir: str, dirs: tuple[Path, ...], suffix: str = ".txt") -> list[str]:
    """Names (without suffix) of the list files under `subdir` in any directory."""
    names: set[str] = set()
    for d in dirs:
        if (d / subdir).is_dir():
            names.update(p.stem for p in (d / subdir).glob(f"*{suffix}"))
    return sorted(names)


def metadata(relative: str, dirs: tuple[Path, ...]) -> dict[str, Any]:
    """TOML tables merged across directories (later directories win per key)."""
    merged: dict[str, Any] = {}
    for d in dirs:
        path = d / relative
        if path.is_file():
            with path.open("rb") as fh:
                for key, table in tomllib.load(fh).items():
                    merged[key] = {**merged.get(key, {}), **table}
    return merged


@dataclass(frozen=True)
class Match:
    start: int  # index of the first token
    end: int  # index past the last token
    entry: str


class WordIndex:
    """Lemmas, phrases, prefixes and exact words, matched against tokens in any inflection.

    Entry syntax (one a line): `война` a lemma in every inflected form; `военная операция`
    a phrase, each word in any form, in order; `мобилиз*` any word starting so; `=сво` that
    exact word only.
    """

    def __init__(self, lines: list[str]) -> None:
        self.single: dict[str, str] = {}  # word form -> entry
        self.phrases: dict[str, list[tuple[str, tuple[frozenset[str], ...]]]] = {}
        prefixes: dict[str, str] = {}
        for raw in lines:
            entry = " ".join(raw.split())
            parts = [fold(p) for p in entry.split(" ")]
            sets = tuple(self._forms(p) for p in parts)
            if len(parts) == 1:
                if parts[0].endswith("*"):
                    prefixes[parts[0][:-1]] = entry
                else:
                    for form in sets[0]:
                        self.single.setdefault(form, entry)
            else:
                for form in sets[0]:
                    self.phrases.setdefault(form, []).append((entry, sets))
        self.prefix_entries = prefixes
        self.prefixes = tuple(prefixes)

    @staticmethod
    def _forms(word: str) -> frozenset[str]:
        if word.startswith("="):
            return frozenset({word[1:]})
        if word.endswith("*"):
            return frozenset({word})  # prefixes inside phrases: handled as literal stems
        return inflections(word)

    def find(self, tokens: list[Token]) -> list[Match]:
        found: list[Match] = []
        norms = [t.norm for t in tokens]
        for i, word in enumerate(norms):
            for entry, sets in self.phrases.get(word, ()):
                n = len(sets)
                if i + n <= len(norms) and all(_member(norms[i + k], sets[k]) for k in range(1, n)):
                    found.append(Match(i, i + n, entry))
            hit = self.single.get(word)
            if hit is not None:
                found.append(Match(i, i + 1, hit))
            elif self.prefixes and word.startswith(self.prefixes):
                stem = next(p for p in self.prefixes if word.startswith(p))
                found.append(Match(i, i + 1, self.prefix_entries[stem]))
        return found


class IndexSet:
    """Several WordIndexes read in one pass over the tokens: find() gives each index's
    matches, in the order its own find() would."""

    def __init__(self, indexes: list[WordIndex]) -> None:
        self.indexes = indexes
        self.single: dict[str, list[tuple[int, str]]] = {}
        self.phrases: dict[str, list[tuple[int, str, tuple[frozenset[str], ...]]]] = {}
        for k, index in enumerate(indexes):
            for form, entry in index.single.items():
                self.single.setdefault(form, []).append((k, entry))
            for form, entries_ in index.phrases.items():
                self.phrases.setdefault(form, []).extend((k, e, sets) for e, sets in entries_)
        self.prefixed = [(k, i) for k, i in enumerate(indexes) if i.prefixes]
        self.prefixes = tuple(p for _, i in self.prefixed for p in i.prefixes)
        # The words that can start a match here: a letter none of whose words is one (nor
        # has a prefix) matches nothing, which a set intersection in C tells at once.
        self.starts = frozenset(self.single) | frozenset(self.phrases)

    def find(self, tokens: list[Token]) -> list[list[Match]]:
        return self.find_norms([t.norm for t in tokens])

    def find_norms(self, norms: list[str]) -> list[list[Match]]:
        """find() given the tokens' normalized words only."""
        found: list[list[Match]] = [[] for _ in self.indexes]
        if self.prefixes:
            words = set(norms)
            if words.isdisjoint(self.starts) and not any(
                    w.startswith(self.prefixes) for w in words):
                return found
            positions: Iterable[int] = range(len(norms))
        else:  # without prefixes only a word that starts an entry can match where it stands
            starting = self.starts.intersection(norms)
            if not starting:
                return found
            positions = [i for i, word in enumerate(norms) if word in starting]
        for i in positions:
            word = norms[i]
            for k, entry, sets in self.phrases.get(word, ()):
                n = len(sets)
                if i + n <= len(norms) and all(_member(norms[i + j], sets[j]) for j in range(1, n)):
                    found[k].append(Match(i, i + n, entry))
            hits = self.single.get(word, ())
            for k, entry in hits:
                found[k].append(Match(i, i + 1, entry))
            if self.prefixes and word.startswith(self.prefixes):
                for k, index in self.prefixed:
                    if word.startswith(index.prefixes) and all(k != h for h, _ in hits):
                        stem = next(p for p in index.prefixes if word.startswith(p))
                        found[k].append(Match(i, i + 1, index.prefix_entries[stem]))
        return found


def _member(word: str, forms: frozenset[str]) -> bool:
    if word in forms:
        return True
    return any(f.endswith("*") and word.startswith(f[:-1]) for f in forms)
