"""length: pages the provider's way; over the facility's limit, offer a split."""

from __future__ import annotations

import re

from gateway.pricing import count_pages
from gateway.providers.profiles import ProviderProfile, load_profiles
from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def page_limit(draft: LetterDraft, profile: ProviderProfile | None) -> int | None:
    """The tighter of the facility's and the provider's page limits (None: no limit)."""
    limits = [x for x in (draft.facility_max_pages, profile.max_pages if profile else None) if x]
    return min(limits) if limits else None


def split_text(text: str, max_chars: int) -> list[str]:
    """Cut a letter into parts of at most `max_chars` code points each, at paragraph ends,
    else sentence ends, else spaces; only a single unbroken word is cut mid-way."""
    if max_chars <= 0:
        raise ValueError("max_chars must be positive")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        cut = _last_break(window, max_chars)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts


def _last_break(window: str, limit: int) -> int:
    for pattern in (_PARAGRAPH, _SENTENCE_END):
        ends = [m.start() for m in pattern.finditer(window) if 0 < m.start() <= limit]
        # Refuse tiny first parts: a break in the first third means keep looking.
        if ends and ends[-1] >= limit // 3:
            return ends[-1]
    space = window.rfind(" ", 0, limit + 1)
    return space if space > limit // 3 else limit


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    profile = load_profiles().get(draft.profile)
    page_chars = profile.page_chars if profile else 2500
    limit = page_limit(draft, profile)
    pages = count_pages(draft.billed_text, page_chars)
    if limit is None or pages <= limit:
        return []
    overhead = max(0, len(draft.billed_text) - len(draft.text))  # greeting, signature
    parts = split_text(draft.text, max(1, limit * page_chars - overhead))
    return [
        Finding(
            rule="length",
            code="too_long",
            severity="return",
            passages=(),
            suggestion="\n\n-----\n\n".join(parts),
            reason_ru=f"Письмо занимает {pages} стр., а в это учреждение можно не больше {limit} стр. "
            f"({page_chars} знаков на странице). Можно сократить его или разделить на {len(parts)} "
            "письма — ниже предлагаем, где разрезать. Каждое письмо оплачивается отдельно.",
            reason_en=f"Your letter runs to {pages} pages, but this facility takes at most {limit} "
            f"({page_chars} characters a page). You can shorten it or split it into {len(parts)} "
            "letters; below is where we suggest cutting. Each letter is paid separately.",
            reason_organizer=f"{pages} pages over the limit of {limit}; a split into {len(parts)} "
            "letters was offered.",
        )
    ]


RULE = Rule(
    name="length",
    description="Pages computed the provider's way fit the facility's limit; otherwise offer a split.",
    check=check,
)
