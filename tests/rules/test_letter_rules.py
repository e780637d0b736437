"""length, photos, recipient, duplicate, budget and empty: the checks about the letter as a
thing to pay for and deliver, not its words."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.pricing import count_pages
from gateway.rules import (
    LetterDraft,
    RuleSettings,
    budget,
    duplicate,
    empty,
    length,
    photos,
    recipient,
    run_rules,
)

pytestmark = pytest.mark.rules
S = RuleSettings()
PARA = "Сегодня был тихий день, я гуляла в парке и думала о тебе. " * 8 + "\n\n"


def _codes(findings):
    return [(f.code, f.severity) for f in findings]


# --- length -----------------------------------------------------------------------------


def test_length_within_zonatelecom_three_pages_passes():
    assert length.check(LetterDraft(text="я" * 7500, profile="zonatelecom"), S) == []


def test_length_over_limit_returns_with_a_split_offer():
    text = PARA * 20  # ~9,600 characters: 4 pages
    (finding,) = length.check(LetterDraft(text=text, profile="zonatelecom"), S)
    assert (finding.code, finding.severity) == ("too_long", "return")
    parts = finding.suggestion.split("\n\n-----\n\n")
    assert len(parts) == 2
    assert all(count_pages(p) <= 3 for p in parts)
    # Nothing lost, nothing added: the parts are the letter cut at paragraph ends.
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())
    assert all(p.endswith("думала о тебе.") for p in parts)
    assert "4 стр." in finding.reason_ru and "split it into 2" in finding.reason_en


def test_facility_limit_is_tighter_than_the_providers():
    draft = LetterDraft(text="я" * 2501, facility_max_pages=1)
    assert _codes(length.check(draft, S)) == [("too_long", "return")]
    assert length.check(LetterDraft(text="я" * 2500, facility_max_pages=1), S) == []
    assert length.check(LetterDraft(text="я" * 25000), S) == []  # FSIN: no page limit


def test_rendered_text_drives_the_page_count():
    body = "я" * 2400
    rendered = "Здравствуйте!\n\n" + body + "\n\nВаша Маша\n" + "x" * 90
    draft = LetterDraft(text=body, rendered_text=rendered, facility_max_pages=1)
    (finding,) = length.check(draft, S)
    assert "2 стр." in finding.reason_ru


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="абвгд ежз.!", min_size=1, max_size=400), min_size=1, max_size=30),
    st.integers(min_value=50, max_value=3000),
)
def test_split_parts_never_exceed_the_limit_and_keep_every_word(paragraphs, limit):
    text = "\n\n".join(paragraphs)
    parts = length.split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())


# --- photos -----------------------------------------------------------------------------

JPEG = ("image/jpeg", 200_000)


def test_photos_within_limits_pass():
    draft = LetterDraft(
        text="Привет", photos=(JPEG, ("image/png", 5 * 1024 * 1024)), facility_max_photos=2
    )
    assert photos.check(draft, S) == []


def test_photos_count_type_and_size():
    draft = LetterDraft(
        text="Привет",
        photos=(JPEG, ("image/webp", 10), ("image/png", 6_000_000)),
        facility_max_photos=2,
    )
    found = {f.code: f for f in photos.check(draft, S)}
    assert set(found) == {"too_many", "type", "size"}
    assert found["type"].passages == ("image/webp",)
    assert found["size"].passages == ("3: 5.7 MiB",)
    assert {f.severity for f in found.values()} == {"return"}


def test_gif_is_fine_for_fsin_but_not_for_zonatelecom():
    gif = (("image/gif", 1000),)
    assert photos.check(LetterDraft(text="x", photos=gif, profile="fsin-pismo"), S) == []
    assert _codes(photos.check(LetterDraft(text="x", photos=gif, profile="zonatelecom"), S)) == [
        ("type", "return")
    ]


def test_facility_without_photos():
    draft = LetterDraft(text="x", photos=(JPEG,), facility_accepts_photos=False)
    assert _codes(photos.check(draft, S)) == [("not_accepted", "return")]


# --- recipient --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, []),
        ({"prisoner_status": "released"}, [("released", "return")]),
        ({"prisoner_can_receive": False}, [("not_accepting", "return")]),
        ({"prisoner_status": "moved"}, [("moved", "hold")]),
        ({"prisoner_status": "unknown"}, [("status_unknown", "hold")]),
        ({"facility_reachable": False}, [("unreachable", "hold")]),
        ({"profile": "pigeon"}, [("unreachable", "hold")]),
    ],
)
def test_recipient(kwargs, expected):
    assert _codes(recipient.check(LetterDraft(text="Привет", **kwargs), S)) == expected


# --- duplicate --------------------------------------------------------------------------

LETTER = "Здравствуй, Коля! У нас всё хорошо. Дети передают привет. Обнимаю, Лена."


def test_same_text_again_is_held():
    draft = LetterDraft(text=LETTER, previous_texts=("Другое письмо совсем", "  " + LETTER.upper()))
    assert _codes(duplicate.check(draft, S)) == [("same_text", "hold")]


def test_nearly_same_text_is_held_and_a_new_letter_passes():
    edited = LETTER.replace("Обнимаю", "Целую")
    assert _codes(duplicate.check(LetterDraft(text=edited, previous_texts=(LETTER,)), S)) == [
        ("similar_text", "hold")
    ]
    other = "Привет, Коля! Сегодня ходили в театр на «Чайку», было чудесно. Лена."
    assert duplicate.check(LetterDraft(text=other, previous_texts=(LETTER,)), S) == []
    strict = RuleSettings(duplicate_similarity=1.0)
    assert duplicate.check(LetterDraft(text=edited, previous_texts=(LETTER,)), strict) == []


# --- budget -----------------------------------------------------------------------------


def test_budget_waits_only_when_it_would_be_exceeded():
    draft = LetterDraft(text="я" * 2501, reply_ordered=True, month_spent=Decimal("835.00"))
    # 2 pages + reply = 165.00; 835 + 165 = 1000 exactly fits.
    assert budget.check(draft, RuleSettings(monthly_budget=Decimal("1000"))) == []
    assert _codes(budget.check(draft, RuleSettings(monthly_budget=Decimal("999.99")))) == [
        ("monthly", "hold")
    ]
    assert budget.check(draft, S) == []  # no budget configured


def test_campaign_budget():
    draft = LetterDraft(text="я", campaign_spent=Decimal("980"))
    (finding,) = budget.check(draft, RuleSettings(campaign_budget=Decimal("1000")))
    assert finding.code == "campaign" and "980 + 55.00 > 1000" in finding.reason_organizer


# --- empty ------------------------------------------------------------------------------


def test_empty():
    assert _codes(empty.check(LetterDraft(text="  \n\t "), S)) == [("no_text", "return")]
    assert _codes(empty.check(LetterDraft(text="", photos=(JPEG,)), S)) == [("photos_only", "hold")]
    assert empty.check(LetterDraft(text="Привет"), S) == []
    assert run_rules(LetterDraft(text="")).outcome == "return"
