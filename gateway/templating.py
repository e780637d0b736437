"""The one Jinja2 environment for letters and e-mails (the dashboard has Flask's)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

# Installed from a wheel, the templates are package data (setup.py copies them in); in a
# checkout (and an editable install) they are the top-level templates/ folder.
_PACKAGED = Path(__file__).resolve().parent / "templates"
TEMPLATES_DIR = _PACKAGED if _PACKAGED.is_dir() else _PACKAGED.parent.parent / "templates"


@lru_cache
def text_environment() -> Environment:
    # Plain-text output: no HTML autoescape, undefined variables are errors, not blanks.
    # No auto_reload: the templates change with a release, which restarts the processes;
    # checking each file's mtime at every render was ~2% of the worker (py-spy, #16).
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=False,
                      undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters["ru_date"] = ru_date
    return env


_MONTHS = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
           "сентября", "октября", "ноября", "декабря")


def ru_date(value) -> str:
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


def render_text(name: str, **context) -> str:
    return text_environment().get_template(name).render(**context)
