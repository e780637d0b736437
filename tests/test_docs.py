"""The README's configuration table is the settings' documentation: keep them in step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _default(field) -> str:
    value = field.default
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return str(value)


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_in_the_readme_with_its_default(name):
    row = re.search(rf"^\| `GATEWAY_{name.upper()}`[^|]*\| `([^`]*)` \|", README, re.MULTILINE)
    assert row, f"GATEWAY_{name.upper()} is missing from the README's configuration table"
    assert row.group(1) == _default(Settings.model_fields[name])


def test_the_readme_lists_no_setting_that_does_not_exist():
    listed = set(re.findall(r"^\| `GATEWAY_([A-Z0-9_]+)`", README, re.MULTILINE))
    assert listed == {n.upper() for n in Settings.model_fields}


def test_default_secret_is_refused_outside_sqlite():
    with pytest.raises(ValueError, match="GATEWAY_SECRET_KEY"):
        Settings(database_url="postgresql+psycopg://x@localhost/db")
    assert Settings(database_url="sqlite:///x.db").database_url == "sqlite:///x.db"


def _threat_model_tests() -> list[tuple[str, str]]:
    """Every `path::test_name` the threat model names, with `::name` continuing the path
    named before it in the same cell."""
    text = (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8")
    named = []
    for row in text.splitlines():
        path = None
        for m in re.finditer(r"`((?:tests/[\w/]+\.py)?)::(\w+)`", row):
            path = m.group(1) or path
            if path:
                named.append((path, m.group(2)))
    return named


def test_every_test_the_threat_model_names_exists():
    named = _threat_model_tests()
    assert len(named) > 30
    missing = [f"{path}::{name}" for path, name in named
               if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)]
    assert missing == []
