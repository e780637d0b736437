"""The facility as a list writes it ("ФКУ СИЗО-1 УФСИН России по г. Москве, 127055, …",
"СИЗО №1 Москва", "ИК-2 по Республике Татарстан") matched to the provider catalogue.

The kind and number (СИЗО-1, ИК-2…) must agree; the region or city, the postal index or
the facility's nickname («Кресты») must then single out one catalogue entry. Anything less
is a suggestion for a person to confirm, never a guess written to the directory."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

# Spelled-out kinds first, so "исправительная колония № 2" reads as ИК-2.
_KINDS = (
    ("сизо", r"сизо|следственн\w*\s+изолятор\w*"),
    ("кп", r"кп|колони\w*[-\s]поселени\w*"),
    ("ик", r"ик|исправительн\w*\s+колони\w*"),
    ("лиу", r"лиу|лечебн\w*\s+исправительн\w*\s+учреждени\w*"),
    ("лпу", r"лпу|мсч|ктб"),
    ("вк", r"вк|воспитательн\w*\s+колони\w*"),
    ("оик", r"оик"),
    ("т", r"т(?=\s*[-№])|тюрьм\w*"),
    ("пфрси", r"пфрси"),
)
_KIND = re.compile(r"(?<![а-яa-z])(" + "|".join(f"(?P<{k}>{p})" for k, p in _KINDS)
                   + r")\s*(?:-|№|no\.?|n)?\s*(\d{1,3})(?!\d)")
_INDEX = re.compile(r"(?<!\d)(\d{3})\s?(\d{3})(?!\d)")
_NICKNAME = re.compile(r"[«\"“]([^»\"”]+)[»\"”]")
_WORD = re.compile(r"[а-яa-z]+")
# Words every address has: they tell no facility from another.
_COMMON = frozenset("""фку фгку уфсин фсин россии россия по г город гор и ул улица д дом
обл область край краю края республика республике республики респ автономный автономного
округ округа округу сизо ик кп лиу лпу т вк оик пфрси при для учреждение федеральное
казенное следственный изолятор исправительная колония номер пос поселок село район р н""".split())
# Abbreviations the lists use for regions (ОВД-Инфо: «УФСИН по РБ», «ХМАО»).
_ABBREVIATIONS = {"спб": "санкт петербург", "мск": "москва", "рб": "башкортостан",
                  "рт": "татарстан", "хмао": "ханты мансийский", "янао": "ямало ненецкий",
                  "ло": "ленинградская", "мо": "московская", "рк": "крым", "чр": "чеченская"}
_PLACEHOLDERS = ("этап", "уточняется", "неизвест", "нет данных", "нет информации")


def _stems(text: str) -> set[str]:
    """Five-letter stems, so that cases agree (Москве/Москва) and Москва stays apart from
    Московская область."""
    words = _WORD.findall(text.lower().replace("ё", "е"))
    words = [w for word in words for w in _ABBREVIATIONS.get(word, word).split()]
    return {w[:5] for w in words if w not in _COMMON and len(w) > 1}


def kind_number(text: str) -> tuple[str, int] | None:
    m = _KIND.search(text.lower().replace("ё", "е"))
    if not m:
        return None
    kind = next(k for k, _ in _KINDS if m.group(k))
    return kind, int(m.groups()[-1])


def postal_index(text: str) -> str | None:
    m = _INDEX.search(text)
    return m.group(1) + m.group(2) if m else None


def is_placeholder(text: str) -> bool:
    """"Этап", "адрес уточняется": the list does not know where the person is."""
    folded = text.lower().replace("ё", "е")
    return not folded.strip() or (kind_number(text) is None
                                  and any(p in folded for p in _PLACEHOLDERS))


@dataclass(frozen=True)
class CatalogueEntry:
    provider: str
    facility_id: str
    name: str
    region: str = ""
    postal_address: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.region})" if self.region else self.name


@dataclass(frozen=True)
class _Indexed:
    entry: CatalogueEntry
    kind: tuple[str, int] | None
    region: frozenset[str]
    nickname: frozenset[str]
    index: str | None
    text: str


@dataclass(frozen=True)
class Match:
    """`entry` when certain; otherwise `suggestions` (best first) for a person."""

    entry: CatalogueEntry | None
    suggestions: tuple[CatalogueEntry, ...]
    why: str

    @property
    def certain(self) -> bool:
        return self.entry is not None


class Catalogue:
    def __init__(self, entries: list[CatalogueEntry]):
        self.entries = entries
        self._indexed = [
            _Indexed(e, kind_number(e.name) or kind_number(e.facility_id.replace("-", " ")),
                     frozenset(_stems(e.region)),
                     frozenset(_stems(" ".join(_NICKNAME.findall(e.name))
                                      or _KIND.sub(" ", e.name.lower()))),
                     postal_index(e.postal_address or ""),
                     f"{e.name} {e.region}".lower())
            for e in entries]
        self._by_id = {e.facility_id: e for e in entries}
        self._cache: dict[str, Match] = {}

    def get(self, facility_id: str) -> CatalogueEntry | None:
        return self._by_id.get(facility_id)

    def match(self, text: str) -> Match:
        if text not in self._cache:
            self._cache[text] = self._match(text)
        return self._cache[text]

    def _match(self, text: str) -> Match:
        kind = kind_number(text)
        stems = _stems(text)
        index = postal_index(text)
        fuzzy = tuple(self.entries[i] for _, _, i in process.extract(
            text.lower(), [x.text for x in self._indexed], scorer=fuzz.token_set_ratio,
            limit=3)) if self.entries else ()
        if kind is None:
            return Match(None, fuzzy, "no facility kind and number (СИЗО-1, ИК-2…) in it")
        same = [x for x in self._indexed if x.kind == kind]
        if not same:
            return Match(None, fuzzy, f"the catalogue has no {kind[0].upper()}-{kind[1]}")
        scored = sorted(((self._evidence(x, stems, index), x) for x in same),
                        key=lambda p: -p[0])
        best, runner_up = scored[0][0], (scored[1][0] if len(scored) > 1 else 0.0)
        ranked = tuple(x.entry for _, x in scored)
        if best >= 0.5 and runner_up < 0.5:
            return Match(scored[0][1].entry, ranked, "kind, number and place agree")
        if best >= 0.5:
            return Match(None, ranked, "more than one facility fits")
        return Match(None, ranked, "the region or city does not match the catalogue's")

    @staticmethod
    def _evidence(x: _Indexed, stems: set[str], index: str | None) -> float:
        if index and x.index == index:
            return 1.0
        if x.nickname and x.nickname <= stems:
            return 1.0
        if not x.region:
            return 0.0
        return len(x.region & stems) / len(x.region)
