"""The charset ladder: bytes of a body part -> text, and which step of the ladder decoded it.

Steps, in order (the name of the step that succeeded is recorded as ``Decoded.step``):

1. ``declared``   the part's declared charset, after fixing the aliases seen in the wild;
                  a single-byte Cyrillic or Latin label is distrusted when the text it gives
                  looks garbled (cp1251 bytes labelled koi8-r is common), see step 3;
2. ``utf-8``      strict UTF-8 (tried first when the declared charset is absent or unusable);
3. ``detected:<codec>`` charset-normalizer restricted to the Cyrillic single-byte codecs
                  (KOI8-R, CP1251, CP866, ISO-8859-5, Mac Cyrillic), for unlabeled or mislabeled
                  Russian text;
4. ``replacement`` UTF-8 with U+FFFD for undecodable bytes, never ``errors="ignore"``: a lossy
                  decode is visible, so the pipeline can hold it for a person.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

import charset_normalizer

# Labels seen in real mail that Python does not know, or knows under another meaning.
_ALIASES: dict[str, str | None] = {
    "uft-8": "utf-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "win-1251": "cp1251",
    "win1251": "cp1251",
    "windows1251": "cp1251",
    "x-cp1251": "cp1251",
    "cp-1251": "cp1251",
    "x-koi8-r": "koi8-r",
    "koi8r": "koi8-r",
    "koi-8-r": "koi8-r",
    "koi8": "koi8-r",
    "x-mac-cyrillic": "mac-cyrillic",
    "x-mac-ukrainian": "mac-cyrillic",
    "ibm866": "cp866",
    "x-ibm866": "cp866",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    # WHATWG: these labels mean windows-1252 in practice (and it is a superset).
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "ascii",
    "ansi_x3.4-1968": "ascii",
    # Labels that carry no information.
    "unknown-8bit": None,
    "x-unknown": None,
    "unknown": None,
    "default": None,
    "x-user-defined": None,
    "charset": None,
}

# Codecs that are "text encodings" to Python but must never decode a mail body.
_REFUSED = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "mbcs", "oem", "utf-7"}

CYRILLIC_SINGLE_BYTE = ("koi8_r", "cp1251", "cp866", "iso8859_5", "mac_cyrillic")
# Labels whose strict decode (almost) never fails, so a wrong label would go unnoticed
# without a check. Canonical codec names as codecs.lookup() spells them.
_UNFALSIFIABLE = {
    codecs.lookup(name).name
    for name in (*CYRILLIC_SINGLE_BYTE, "koi8_u", "cp1252", "latin_1", "iso8859_15")
}


@dataclass(frozen=True)
class Decoded:
    text: str
    step: str  # "declared" | "utf-8" | "detected:<codec>" | "replacement" | "empty"
    charset: str  # the Python codec name that produced text


def normalize_charset(label: str | None) -> str | None:
    """A declared charset label -> a Python codec name, or None when absent/unknown/refused."""
    if not label:
        return None
    cleaned = label.strip().strip("\"'").strip().lower()
    # "utf-8 junk", "utf-8; format=flowed" -> the first token
    cleaned = re.split(r"[\s;,]", cleaned, maxsplit=1)[0] if cleaned else ""
    if not cleaned or cleaned.isdigit():
        return None
    if cleaned in _ALIASES:
        mapped = _ALIASES[cleaned]
        if mapped is None:
            return None
        cleaned = mapped
    try:
        info = codecs.lookup(cleaned)
    except (LookupError, ValueError):
        return None
    if info.name in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


_WORDS = re.compile(r"[^\W\d_]{2,}")
_INVERTED = re.compile(r"[a-zа-яё][A-ZА-ЯЁ]")


def garble_score(text: str) -> float:
    """How garbled Russian text looks, 0 (fine) .. 1 (mojibake).

    Two signatures of a wrong single-byte codec: letter case inverted inside words
    (koi8-r read as cp1251 gives "пРИВЕТ"), and letters replaced by symbols and box
    drawing (cp866 read as cp1251, UTF-8 read as koi8-r). All-caps text is left alone:
    shouting is legitimate and its case pattern survives a wrong codec. Latin-1 mojibake of Cyrillic ("Ïðèâåò") shows as a
    high share of accented Latin letters.
    """
    # Counted over distinct characters (a letter has ~100), not each of thousands.
    counts = Counter(text)
    chars = [(c, n) for c, n in counts.items() if not c.isspace()]
    visible = sum(n for _, n in chars)
    if not visible:
        return 0.0
    odd = sum(
        n
        for c, n in chars
        if unicodedata.category(c) in ("So", "Sm", "Sc", "Sk", "Co", "Cc", "Cn", "Cf")
        or "\u2500" <= c <= "\u259f"
    )
    letters = sum(n for c, n in chars if c.isalpha()) or 1
    accented_latin = sum(n for c, n in chars if "\u00c0" <= c <= "\u00ff")
    words = _WORDS.findall(text)
    inverted = sum(1 for w in words if _INVERTED.search(w))
    n_words = max(len(words), 1)
    return min(
        1.0,
        max(
            inverted / n_words * 2,
            odd / visible * 4,
            accented_latin / letters if accented_latin / letters > 0.3 else 0.0,
            _few_vowels(text, counts) * 2 if len(text) >= 40 else 0.0,
        ),
    )


def _detect_cyrillic(payload: bytes) -> str | None:
    """The Cyrillic codec that reads the bytes best.

    charset-normalizer ranks the candidates; short texts often tie between codecs that
    share lower-case letters (cp1251 and mac-cyrillic differ in capitals), so the final
    choice is the reading with the fewest signs of garbling, then the detector's order.
    """
    matches = charset_normalizer.from_bytes(payload, cp_isolation=list(CYRILLIC_SINGLE_BYTE))
    ranked = [codecs.lookup(m.encoding).name for m in matches]
    for name in CYRILLIC_SINGLE_BYTE:  # the detector may drop a codec that still decodes
        codec = codecs.lookup(name).name
        if codec not in ranked:
            ranked.append(codec)
    best: tuple[float, int, str] | None = None
    for order, codec in enumerate(ranked):
        try:
            text = payload.decode(codec)
        except UnicodeDecodeError:
            continue
        key = (round(garble_score(text) + _foreign_letters(text) + _few_vowels(text), 3),
               order, codec)
        if best is None or key < best:
            best = key
    return best[2] if best else None


def _few_vowels(text: str, counts: Counter | None = None) -> float:
    """Russian text is ~40% vowels; a wrong codec that keeps letters letters rarely is.
    `counts`: the text's characters counted already (garble_score has them)."""
    lowered: Counter = Counter()
    for c, n in (counts if counts is not None else Counter(text)).items():
        for low in c.lower():  # lower() of one character may give two ("İ")
            lowered[low] += n
    cyrillic = [(c, n) for c, n in lowered.items() if "а" <= c <= "я" or c == "ё"]
    total = sum(n for _, n in cyrillic)
    if total < 8:
        return 0.0
    ratio = sum(n for c, n in cyrillic if c in "аеёиоуыэюя") / total
    return max(0.0, 0.3 - ratio) * 3


def _foreign_letters(text: str) -> float:
    """Share of letters that are neither Russian nor ASCII (Ѕ, Ћ, Є … from a wrong codec)."""
    letters = [(c, n) for c, n in Counter(text).items() if c.isalpha()]
    if not letters:
        return 0.0
    odd = sum(n for c, n in letters if not (c.isascii() or "а" <= c.lower() <= "я" or c in "ёЁ"))
    return odd / sum(n for _, n in letters)


def decode_text(payload: bytes, declared: str | None) -> Decoded:
    """Decode one body part by the ladder; never raises."""
    if not payload:
        return Decoded("", "empty", normalize_charset(declared) or "ascii")
    codec = normalize_charset(declared)
    if codec is not None:
        try:
            text = payload.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
        else:
            if codec not in _UNFALSIFIABLE or not _has_high_bytes(payload):
                return Decoded(text, "declared", codec)
            score = garble_score(text)
            if score < 0.2:
                return Decoded(text, "declared", codec)
            # The label is suspect: prefer UTF-8 or a Cyrillic detection that reads better,
            # but never one that shouts more. koi8-r and cp1251 swap letter case, so the
            # wrong one of the two reads as capitals: a lower-case reading is the right one.
            better = _utf8_or_detected(payload)
            if (
                better is not None
                and garble_score(better.text) < score
                and _lower_share(better.text) >= _lower_share(text) - 0.1
            ):
                return better
            return Decoded(text, "declared", codec)
    better = _utf8_or_detected(payload)
    if better is not None:
        return better
    return Decoded(payload.decode("utf-8", errors="replace"), "replacement", "utf-8")


def _utf8_or_detected(payload: bytes) -> Decoded | None:
    try:
        return Decoded(payload.decode("utf-8"), "utf-8", "utf-8")
    except UnicodeDecodeError:
        pass
    if _looks_like_multibyte_other(payload):
        return None
    detected = _detect_cyrillic(payload)
    if detected is None:
        return None
    try:
        return Decoded(payload.decode(detected), f"detected:{detected}", detected)
    except UnicodeDecodeError:
        return None


def _lower_share(text: str) -> float:
    """Share of cased letters that are lower case (ordinary prose: most of them)."""
    lower = upper = 0
    for c, n in Counter(text).items():
        if c.islower():
            lower += n
        elif c.isupper():
            upper += n
    return lower / (lower + upper) if lower + upper else 1.0


def _has_high_bytes(payload: bytes) -> bool:
    return any(b > 0x7F for b in payload)


def _looks_like_multibyte_other(payload: bytes) -> bool:
    """UTF-16 without a BOM (many NULs) is not single-byte Cyrillic; let it fall to replacement."""
    return payload.count(0) > len(payload) // 4


def decode_header_bytes(raw: bytes) -> Decoded:
    """Undeclared 8-bit header bytes (no encoded words) go down the same ladder."""
    return decode_text(raw, None)
