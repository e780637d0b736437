"""Planning a split: parts that each fit the facility, numbered, every word kept once."""

from __future__ import annotations

import pytest

from gateway.pipeline.splitting import as_split, plan, splittable
from gateway.pricing import count_pages
from gateway.providers.catalogue import FacilityLimits
from gateway.providers.profiles import load_profiles
from gateway.rules import LetterDraft, run_rules

pytestmark = pytest.mark.rules

PROFILE = load_profiles()["http"]
BODY = "\n\n".join(f"Абзац {i}: мы гуляли, читали книги и вспоминали вас добрым словом. " * 5
                   for i in range(80))


def render(text: str) -> str:
    return f"Здравствуйте, Олег!\n\n{text}\n\nАнна\n"


def test_parts_fit_are_numbered_and_keep_every_word():
    parts = plan(BODY, render, PROFILE, FacilityLimits(max_pages=3), max_parts=5)
    assert parts is not None and 2 <= len(parts) <= 5
    for n, (text, rendered) in enumerate(parts, start=1):
        assert rendered.startswith(f"({n}/{len(parts)})\n\n") and text in rendered
        assert count_pages(rendered, PROFILE.page_chars) <= 3
    assert " ".join(t for t, _ in parts).split() == BODY.split()


@pytest.mark.parametrize(("limits", "max_parts"), [
    (FacilityLimits(max_pages=3), 2),  # would need more parts than allowed
    (FacilityLimits(max_pages=3), 0),  # splitting switched off
    (FacilityLimits(), 5),  # no limit at all: nothing to split for
])
def test_no_plan_when_splitting_cannot_or_may_not_help(limits, max_parts):
    assert plan(BODY, render, PROFILE, limits, max_parts) is None


def test_only_a_letter_held_back_by_its_length_alone_is_split():
    long_only = run_rules(LetterDraft(text=BODY, facility_max_pages=3))
    assert long_only.outcome == "return" and splittable(long_only)
    assert as_split(long_only, 3).outcome == "pass"
    with_phone = run_rules(LetterDraft(text=BODY + "\n\nЗвоните: +7 916 123-45-67",
                                       facility_max_pages=3))
    assert not splittable(with_phone)
