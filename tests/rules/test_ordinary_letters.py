"""Ordinary warm letters (news, books, weather, family, garden, travel) pass clean, with
the page count and price the provider will charge; and the checks stay fast."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.pricing import quote
from gateway.providers.profiles import load_profiles
from gateway.rules import Decision, LetterDraft, run_rules

pytestmark = pytest.mark.rules

LETTERS = sorted((Path(__file__).parent / "letters").glob("*.txt"))


def test_corpus_is_there():
    assert {p.stem for p in LETTERS} >= {"news", "books", "weather", "family", "garden", "travel"}


@pytest.mark.parametrize("path", LETTERS, ids=lambda p: p.stem)
def test_warm_letter_passes_clean(path):
    text = path.read_text(encoding="utf-8")
    draft = LetterDraft(
        text=text,
        sender="writer@example.org",
        reply_ordered=True,
        previous_texts=("Совсем другое прошлое письмо.",),
    )
    assert run_rules(draft) == Decision(outcome="pass", findings=())
    q = quote(text, 0, True, load_profiles()["http"])
    assert q.pages == 1 and q.amount == Decimal("110.00")


def test_all_warm_letters_together_pass_and_price_by_pages():
    text = "\n\n".join(p.read_text(encoding="utf-8") for p in LETTERS)
    assert run_rules(LetterDraft(text=text)).outcome == "pass"
    q = quote(text, 2, False, load_profiles()["http"])
    pages = -(-len(text) // 2500)
    assert q.pages == pages and q.amount == Decimal(55 * pages + 70)


def test_checks_are_fast_after_warm_up():
    texts = [p.read_text(encoding="utf-8") for p in LETTERS]
    for t in texts:
        run_rules(LetterDraft(text=t))
    # Fresh texts each time, so per-word caches do not flatter the figure.
    drafts = [LetterDraft(text=t + f"\nP.S. {i}-е письмо.") for i in range(5) for t in texts]
    start = time.perf_counter()
    for d in drafts:
        run_rules(d)
    per_letter_ms = (time.perf_counter() - start) / len(drafts) * 1000
    # Target is < 5 ms on an idle core; the bound leaves room for a busy shared CI box.
    assert per_letter_ms < 25, per_letter_ms
