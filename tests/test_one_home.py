"""Every outcome reaches the state machine through gateway.actions: nothing else calls
lifecycle's move/claim, nothing writes Letter.state by hand, and an event written anywhere
carries its reason code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
HOME = {"gateway/actions.py", "gateway/lifecycle.py"}
SOURCES = sorted(p for d in ("gateway", "workers") for p in (ROOT / d).rglob("*.py")
                 if "simulator" not in p.parts)

pytestmark = pytest.mark.desk


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "gateway.lifecycle":
            names = {a.name for a in node.names} & {"move", "claim", "claim_many"}
            if names:
                found.append(f"line {node.lineno}: imports {sorted(names)} from lifecycle")
        if isinstance(node, ast.Attribute) and node.attr in ("move", "claim") and \
                isinstance(node.value, ast.Name) and node.value.id == "lifecycle":
            found.append(f"line {node.lineno}: lifecycle.{node.attr}")
        # An event written by hand must carry its reason code like every other.
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LetterEvent" and \
                "reason_code" not in {k.arg for k in node.keywords}:
            found.append(f"line {node.lineno}: LetterEvent without a reason_code")
        # A state written directly: `letter.state = ...`
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr == "state" and \
                        isinstance(target.value, ast.Name) and target.value.id == "letter":
                    found.append(f"line {node.lineno}: letter.state assigned")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_actions_and_lifecycle_move_letters(path):
    if str(path.relative_to(ROOT)) in HOME:
        return
    assert _offences(path) == []


def test_the_check_sees_an_offence(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from gateway.lifecycle import move\nletter.state = 'READY'\n"
                   "session.add(LetterEvent(letter_id=1, to_state='READY'))\n")
    assert len(_offences(bad)) == 3
