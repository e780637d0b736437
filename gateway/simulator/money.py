"""Money kept as integer kopecks, shown as the contract's decimal strings."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

Kopecks = int
CURRENCY = "RUB"


def format_amount(kopecks: Kopecks) -> str:
    return str((Decimal(kopecks) / 100).quantize(Decimal("0.01")))


def parse_amount(text: object) -> Kopecks:
    """'1250.00' or 1250 -> 125000; raises ValueError for negatives or fractions of a kopeck."""
    try:
        value = Decimal(str(text))
    except InvalidOperation as e:
        raise ValueError(f"not an amount: {text!r}") from e
    if not value.is_finite() or value < 0:
        raise ValueError(f"not a non-negative amount: {text!r}")
    kopecks = value * 100
    if kopecks != kopecks.to_integral_value():
        raise ValueError(f"more than two decimals: {text!r}")
    return int(kopecks)


def money_json(kopecks: Kopecks) -> dict[str, str]:
    return {"amount": format_amount(kopecks), "currency": CURRENCY}
