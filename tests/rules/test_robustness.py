"""Any text at all: the checks never crash, and every span points at what it names."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rules import LetterDraft, run_rules

pytestmark = pytest.mark.rules

# Letters likely to excite the matchers: Cyrillic, look-alikes, digits, separators, marks.
_ALPHABET = st.sampled_from(
    list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєўАБВХУЙ xyaeopc@3*.-_\n\t+()0123456789")
    + [
        "\u200b",
        "\u00ad",
        "\u0308",
        "ﬁ",
        "😀",
        "хуй",
        "война",
        "+7 916 123-45-67",
        "a@b.ru",
        "http://x.ru",
        "blyad",
        "Привіт",
    ]
)
_TEXT = st.lists(_ALPHABET, max_size=120).map("".join) | st.text(max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT, sender=st.sampled_from([None, "a@b.ru", "ivan@mail.ru"]))
def test_never_crashes_and_spans_point_at_their_passages(text, sender):
    decision = run_rules(LetterDraft(text=text, sender=sender))
    assert decision.outcome in ("pass", "hold", "return")
    for f in decision.findings:
        assert f.code != "error", f.reason_organizer
        for a, b in f.spans:
            assert 0 <= a <= b <= len(text)
        if f.rule in ("profanity", "topics", "contacts") and f.spans:
            assert set(f.passages) == {text[a:b] for a, b in f.spans}
