"""A letter as the provider will print it: the provider's template around the writer's text."""

from __future__ import annotations

import re

from gateway.models import Prisoner
from gateway.templating import render_text

_GREETING = re.compile(r"^\s*(здравствуй|привет|добр(ый|ого|ое)|дорог|уважаем|милая|милый)",
                       re.IGNORECASE)


def render_letter(provider: str, *, prisoner: Prisoner, writer_name: str, body: str) -> str:
    body = body.strip()
    last_line = body.splitlines()[-1].strip() if body else ""
    signed = bool(writer_name) and writer_name.lower() in last_line.lower()
    text = render_text(f"letters/{provider}/letter.txt.j2", prisoner=prisoner,
                       writer_name=writer_name, body=body,
                       greets=bool(_GREETING.match(body)), signed=signed)
    return text.strip() + "\n"


def writer_first_name(display_name: str | None, fallback: str = "Друг") -> str:
    """The name the prison sees: the first word of the writer's display name, never the address."""
    if not display_name:
        return fallback
    word = display_name.replace('"', " ").split()[0] if display_name.split() else ""
    if "@" in word or not any(ch.isalpha() for ch in word):
        return fallback
    return word[:40]
