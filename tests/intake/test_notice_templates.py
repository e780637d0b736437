"""Every notice, rendered through queue_notice from a real letter row, against a golden file
(tests/intake/golden/<kind>.txt). Also: Russian first then English, the letter named by its
prisoner (in the right case) and date, the writer's address nowhere in the text, RFC 3834
headers, and prose not hard-wrapped (phones wrap it themselves).

To accept a deliberate change: GATEWAY_UPDATE_GOLDEN=1 pytest tests/intake/test_notice_templates.py
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.crypto import address_hash, seal
from gateway.guidance.content import build_guide, default_markdown
from gateway.guidance.picks import Candidate as GuidePick
from gateway.guidance.picks import rank_picks
from gateway.intake.addressing import Candidate
from gateway.models import InboundMessage, Letter, OutboundMail, Prisoner
from gateway.notices import SUBJECTS, queue_notice
from gateway.providers.base import PermanentError
from gateway.providers.profiles import load_profiles
from gateway.providers.refusals import explain
from gateway.states import LetterState as S
from tests.intake.conftest import SECRET

pytestmark = pytest.mark.intake

GOLDEN = Path(__file__).parent / "golden"
WRITER = "anna.smirnova@example.org"
FINDINGS = [{"rule": "topics", "severity": "return", "passages": ["суд", "приговор"],
             "reason_ru": "в письме обсуждается уголовное дело — цензура такие письма не пропускает",
             "reason_en": "the letter discusses the criminal case, which the censor does not pass",
             "reason_organizer": "case"}]
CONTEXT = {
    "received": {},
    "confirm": {"token_shown": "1234-5678"},
    "unknown_recipient": {},
    "ambiguous_recipient": {"candidates": [
        Candidate(1, "Иванов", "Иван", "Иванович", 1980, "ИК-2 Мордовия", "K101"),
        Candidate(6, "Иванов", "Пётр", "Сергеевич", 1970, "ИК-3 Коми", "K106")]},
    "returned": {"findings": FINDINGS},
    "held": {"findings": FINDINGS},
    "sent": {},
    "delivered": {},
    "censored": {"reason": "содержание письма"},
    "split": {"parts": 3, "limit": 3},
    "refused": {"refusals": explain(PermanentError("validation", fields={
        "text": "4 pages, the facility accepts at most 3"})), "fixable": True},
    "undelivered": {"reason": "адресат выбыл", "by_post": True},
    "reply": {},
    "document_unreadable": {"reason_ru": "в PDF нет текста — это скан или картинка",
                            "reason_en": "the PDF holds no text (a scan or a picture)"},
    # The shipped guide, with one suggested prisoner (the directory's real list is tested
    # in tests/directory/test_guidance.py).
    "guidance": {"guide": build_guide(
        {"ru": default_markdown("ru"), "en": default_markdown("en")},
        rank_picks([GuidePick(3, "Ковалёв", "Пётр", "Андреевич", "K103", "ИК-1", 0, "шахматы")],
                   {}, {}, 5),
        load_profiles()["http"], reply_ordered=True, gateway_address="letters@gw.example")},
}
WITH_PRISONER = set(CONTEXT) - {"unknown_recipient", "ambiguous_recipient", "document_unreadable",
                                 "guidance"}


def _letter(session, kind: str) -> Letter:
    prisoner = session.scalar(select(Prisoner).where(Prisoner.code == "K102"))
    inbound = InboundMessage(mailbox="t", uidvalidity=1, uid=hash(kind) % 10**6,
                             content_hash=kind.ljust(64, "0")[:64], size=1, raw=b"x")
    session.add(inbound)
    session.flush()
    letter = Letter(public_id=f"L-{kind}", inbound_id=inbound.id, state=S.SUBMITTED,
                    prisoner_id=prisoner.id if kind in WITH_PRISONER else None,
                    sender_sealed=seal(SECRET, WRITER), sender_hash=address_hash(SECRET, WRITER),
                    subject="Привет", provider_number="FSIN-2024-000123", pages=2,
                    created_at=datetime(2024, 6, 3, 9, 30, tzinfo=UTC))
    session.add(letter)
    session.flush()
    return letter


def test_every_notice_kind_has_a_template_and_a_golden_file() -> None:
    templates = {p.name.removesuffix(".txt.j2") for p in
                 (Path(__file__).parents[2] / "templates" / "email").glob("[!_]*.txt.j2")}
    assert templates == set(SUBJECTS) == set(CONTEXT)


@pytest.mark.parametrize("kind", sorted(CONTEXT))
def test_notice_matches_its_golden_file(gw, kind: str) -> None:
    with gw.sessions() as session:
        letter = _letter(session, kind)
        [row_id] = queue_notice(session, gw.settings, letter, kind, **CONTEXT[kind])
        session.commit()
        row = session.get(OutboundMail, row_id)
    msg = gw.message(row)
    text = msg.get_body(("plain",)).get_content()
    golden = GOLDEN / f"{kind}.txt"
    if os.environ.get("GATEWAY_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(f"Subject: {msg['Subject']}\n\n{text}", encoding="utf-8")
    assert f"Subject: {msg['Subject']}\n\n{text}" == golden.read_text(encoding="utf-8")

    assert msg["Auto-Submitted"].startswith("auto-") and msg["X-Auto-Response-Suppress"] == "All"
    assert msg["To"] is None and gw.recipient(row) == WRITER  # To is added at send time
    assert WRITER not in row.message.decode("ascii", "replace") and WRITER not in text
    assert text.index("Здравствуйте") < text.index("Hello")
    if kind in WITH_PRISONER:
        assert any(form in text for form in ("Петровой Марии Сергеевне", "Петровой Марии Сергеевны"))
        assert "Петрова Мария Сергеевна" in text  # the English half
        assert "3 июня 2024" in text and "3 June 2024" in text
    else:
        assert "3 июня 2024" in text
    _assert_not_hard_wrapped(text)


def _assert_not_hard_wrapped(text: str) -> None:
    """A prose line followed by another prose line ends a sentence: phones reflow paragraphs,
    but a line broken at 72 characters shows as a ragged half-line on a narrow screen."""
    lines = text.split("\n")
    for line, following in zip(lines, lines[1:], strict=False):
        if not line.strip() or not following.strip() or line.lstrip().startswith("•"):
            continue
        assert line.rstrip()[-1] in ".:!?»\")—" or line.strip() in ("—",), f"hard-wrapped: {line!r}"


def test_every_notice_kind_has_a_subject_and_every_subject_a_kind():
    from gateway.states import NoticeKind

    assert set(SUBJECTS) == {k.value for k in NoticeKind}
