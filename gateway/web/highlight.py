"""Flagged passages marked in a letter's text, everything else escaped.

The letter is the writer's text and may hold anything, `<script>` included: it is escaped
piece by piece and only our own <mark> tags are markup."""

from __future__ import annotations

import re
from collections.abc import Iterable

from markupsafe import Markup, escape


def spans_of(text: str, passages: Iterable[str]) -> list[tuple[int, int]]:
    """Every case-insensitive occurrence of every passage, overlapping ones merged."""
    found: list[tuple[int, int]] = []
    for passage in {p.strip() for p in passages if p and p.strip()}:
        found += [(m.start(), m.end()) for m in re.finditer(re.escape(passage), text,
                                                            re.IGNORECASE)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str | None, findings: list[dict] | None) -> Markup:
    if not text:
        return Markup("")
    passages = [p for f in findings or () for p in f.get("passages") or ()]
    out: list[str] = []
    pos = 0
    for start, end in spans_of(text, passages):
        out.append(escape(text[pos:start]))
        out.append(Markup("<mark>") + escape(text[start:end]) + Markup("</mark>"))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)
