"""Pages and price computed the provider's way, before a ruble is spent."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from gateway.providers.profiles import ProviderProfile

_CENTS = Decimal("0.01")


def count_pages(text: str, page_chars: int = 2500) -> int:
    """ceil(len(text) / page_chars) in Unicode code points, newlines included; empty is 1."""
    if page_chars <= 0:
        raise ValueError("page_chars must be positive")
    return max(1, -(-len(text) // page_chars))


@dataclass(frozen=True)
class Quote:
    pages: int
    photos: int
    reply: bool
    amount: Decimal
    currency: str


def quote(text: str, photos: int, reply_ordered: bool, profile: ProviderProfile) -> Quote:
    """What the provider will charge for this exact text (render it first)."""
    if photos < 0:
        raise ValueError("photos must not be negative")
    pages = count_pages(text, profile.page_chars)
    amount = (
        pages * profile.page_price
        + photos * profile.photo_price
        + (profile.reply_price if reply_ordered else Decimal(0))
    )
    return Quote(
        pages=pages,
        photos=photos,
        reply=reply_ordered,
        amount=amount.quantize(_CENTS, rounding=ROUND_HALF_UP),
        currency=profile.currency,
    )
