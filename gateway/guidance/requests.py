"""Is this message a request for guidance rather than a letter? Pure: text in, yes or no."""

from __future__ import annotations

import re

# What people actually type when they do not know how to begin.
ASKS = {"помощь", "помогите", "как писать", "как написать", "как написать письмо",
        "инструкция", "справка", "help", "how to write", "instructions", "guide"}
_PREFIXES = re.compile(r"^\s*((re|fwd?|fw|aw|ответ|пересл)\s*(\[\d+\])?\s*:\s*)+", re.I)
_PUNCT = re.compile(r"[\s.!?:;,\-–—\"«»()\[\]]+")
# A question around the keyword is still a request; a real letter is longer than this.
SHORT = 300


def _bare(value: str) -> str:
    return _PUNCT.sub(" ", _PREFIXES.sub("", value or "")).strip().lower().replace("ё", "е")


def asks_for_guidance(subject: str, text: str, attachments: int) -> bool:
    """The subject, or the first line of a short message, is one of the asks; or the
    message carries nothing at all (no text after cleanup, no attachment)."""
    if attachments:
        return False
    body = (text or "").strip()
    if not body:
        return True
    if len(body) > SHORT:
        return False
    first_line = body.splitlines()[0]
    return _bare(subject) in ASKS or _bare(first_line) in ASKS
