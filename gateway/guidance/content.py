"""The guide's text: the organizers' Markdown (or the shipped default) and the facts the
gateway knows (prices, how to address, who needs letters), as plain text and HTML.

Markdown is rendered by markdown-it-py with raw HTML off, so nothing an organizer types
(or a prisoner's interests, which come from imported lists) becomes markup of its own."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal

from markdown_it import MarkdownIt
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.guidance.picks import Pick
from gateway.models import GuidanceText
from gateway.notices import en_date
from gateway.providers.profiles import ProviderProfile, load_profiles
from gateway.templating import TEMPLATES_DIR, render_text

LANGUAGES = ("ru", "en")
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
# Characters that would make a directory value into Markdown structure (links, emphasis).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def default_markdown(language: str) -> str:
    return (TEMPLATES_DIR / "guidance" / f"guide.{language}.md").read_text(encoding="utf-8")


def stored_markdown(session: Session) -> dict[str, str]:
    """The organizers' text for each language, or the shipped default."""
    stored = dict(session.execute(select(GuidanceText.language, GuidanceText.markdown)).all())
    return {lang: stored.get(lang) or default_markdown(lang) for lang in LANGUAGES}


def save_markdown(session: Session, language: str, markdown: str, by: str | None) -> None:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    row = session.scalar(select(GuidanceText).where(GuidanceText.language == language))
    if row is None:
        session.add(GuidanceText(language=language, markdown=markdown, updated_by=by))
    else:
        row.markdown, row.updated_by = markdown, by


def to_html(markdown: str) -> str:
    return _MD.render(markdown)


def _money(amount: Decimal, currency: str) -> str:
    sign = "₽" if currency == "RUB" else currency
    whole = amount == amount.to_integral_value()
    return f"{amount:.0f} {sign}" if whole else f"{amount:.2f} {sign}".replace(".", ",")


def _escape(value: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", " ".join((value or "").split()))


@dataclass(frozen=True)
class Guide:
    """The guide in each language, as readable Markdown (the plain-text part) and HTML."""
    text: dict[str, str]
    html: dict[str, str]


def facts_markdown(language: str, picks: list[Pick], profile: ProviderProfile, *,
                   reply_ordered: bool, gateway_address: str) -> str:
    safe = [replace(p, name=_escape(p.name), subject=_escape(p.subject), code=_escape(p.code),
                    facility=_escape(p.facility), interests=_escape(p.interests))
            for p in picks]
    return render_text(
        f"guidance/facts.{language}.md.j2",
        picks=[dict(vars(p), birthday_en=en_date(p.birthday) if p.birthday else "")
               for p in safe],
        page_price=_money(profile.page_price, profile.currency), page_chars=profile.page_chars,
        photo_price=_money(profile.photo_price, profile.currency) if profile.photo_price else "",
        reply_price=_money(profile.reply_price, profile.currency)
        if reply_ordered and profile.reply_price else "",
        gateway_address=_escape(gateway_address))


def build_guide(texts: dict[str, str], picks: list[Pick], profile: ProviderProfile, *,
                reply_ordered: bool, gateway_address: str) -> Guide:
    """Pure: the organizers' texts and the facts, in both languages, as text and HTML."""
    text = {lang: texts[lang].strip() + "\n\n" + facts_markdown(
        lang, picks, profile, reply_ordered=reply_ordered,
        gateway_address=gateway_address).strip() for lang in LANGUAGES}
    return Guide(text, {lang: to_html(md) for lang, md in text.items()})


def current_guide(session: Session, settings, picks: list[Pick]) -> Guide:
    profile = load_profiles()["http"]
    return build_guide(stored_markdown(session), picks, profile,
                       reply_ordered=settings.reply_ordered,
                       gateway_address=settings.gateway_address)
