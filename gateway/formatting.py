"""A letter as the provider will print it: the provider's template around the writer's text."""

from __future__ import annotations

import re

from gateway.models import Prisoner
from gateway.templating import render_text

_GREETING = re.compile(r"^\s*(здравствуй|привет|добр(ый|ого|ое)|дорог|уважаем|милая|милый)",
                       re.IGNORECASE)


def render_letter(provider: str, *, prisoner: Prisoner, writer_name: str, body: str) -> str:
    body = body.strip()
    signed = is_signed(body, writer_name)
    text = render_text(f"letters/{provider}/letter.txt.j2", prisoner=prisoner,
                       writer_name=writer_name, body=body,
                       greets=bool(_GREETING.match(body)), signed=signed)
    return text.strip() + "\n"


_SIGN_OFF = re.compile(r"(обнимаю|целую|с уважением|с любовью|ваш[аи]?|твой|твоя|до связи|"
                       r"всего доброго|пока|жду ответа|с теплом|держитесь)[\s,!.]*$", re.IGNORECASE)


def is_signed(body: str, writer_name: str) -> bool:
    """Does the letter already end with the writer's name or a signature after a sign-off?
    Then the template adds no second one."""
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if not lines:
        return False
    last = lines[-1]
    if writer_name and writer_name.lower() in last.lower():
        return True
    short_name = len(last.split()) <= 3 and last[:1].isupper() and not last.endswith((".", "!", "?"))
    return short_name and len(lines) > 1 and bool(_SIGN_OFF.search(lines[-2]))


def writer_first_name(display_name: str | None, fallback: str = "Друг") -> str:
    """The name the prison sees: the first word of the writer's display name, never the address."""
    if not display_name:
        return fallback
    word = display_name.replace('"', " ").split()[0] if display_name.split() else ""
    if "@" in word or not any(ch.isalpha() for ch in word):
        return fallback
    return word[:40]
