"""Russian plural forms for counts: "1 письмо, 2 письма, 5 писем" (CLDR's one/few/many)."""

from __future__ import annotations


def ru_form(n: int, one: str, few: str, many: str) -> str:
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def ru_count(n: int, one: str, few: str, many: str) -> str:
    return f"{n} {ru_form(n, one, few, many)}"


def en_count(n: int, one: str, other: str) -> str:
    return f"{n} {one if n == 1 else other}"
