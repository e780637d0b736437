"""The registry and the decision: every rule runs, the worst severity wins, settings steer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.rules import RULES, Decision, Finding, LetterDraft, RuleSettings, run_rules

pytestmark = pytest.mark.rules

WARM = (
    "Здравствуй, Саша! Пишу тебе из Петербурга. У нас наконец выпал снег, и дети "
    "весь вечер лепили во дворе снеговика. Я дочитала «Анну Каренину» и теперь спорю "
    "сама с собой о Левине. Мама передаёт привет и печёт твой любимый пирог с яблоками. "
    "Обнимаю, жду письма. Твоя Маша."
)
# The "done when" letter: a mild swear word, a phone number, a sentence about the war.
BAD = (
    "Привет! Вот же блядь, как всё сложно. Позвони моей маме: +7 916 123-45-67. "
    "Эта война всех нас измучила."
)


def test_registry_has_every_check():
    assert set(RULES) == {
        "empty",
        "language",
        "profanity",
        "topics",
        "contacts",
        "length",
        "photos",
        "recipient",
        "duplicate",
        "budget",
        "censor_memory",
    }
    for name, rule in RULES.items():
        assert rule.name == name and rule.description and callable(rule.check)


def test_warm_letter_passes_clean():
    decision = run_rules(LetterDraft(text=WARM))
    assert decision == Decision(outcome="pass", findings=())


def test_bad_letter_returns_with_each_problem_named():
    decision = run_rules(LetterDraft(text=BAD))
    assert decision.outcome == "return"
    keys = {f.key for f in decision.findings}
    assert {"profanity.obscene", "contacts.phone", "topics.war"} <= keys
    by_key = {f.key: f for f in decision.findings}
    assert by_key["profanity.obscene"].passages == ("блядь",)
    assert by_key["contacts.phone"].passages == ("+7 916 123-45-67",)
    assert by_key["topics.war"].passages == ("война",)
    # Spans point at the words in the letter as written.
    for f in decision.findings:
        for (a, b), passage in zip(f.spans, f.passages, strict=False):
            assert BAD[a:b] == passage
        assert f.reason_ru and f.reason_en and f.reason_organizer


def test_topics_only_hold_never_return():
    decision = run_rules(LetterDraft(text=WARM + " Жаль, что идёт война."))
    assert decision.outcome == "hold"
    assert [f.key for f in decision.findings] == ["topics.war"]


def test_disable_rule_and_finding_code():
    text = WARM + " Жаль, что идёт война."
    assert (
        run_rules(LetterDraft(text=text), RuleSettings(disabled=frozenset({"topics"}))).outcome
        == "pass"
    )
    settings = RuleSettings.from_mapping({"disabled": ["topics.war"]})
    assert run_rules(LetterDraft(text=text), settings).outcome == "pass"
    settings = RuleSettings.from_mapping({"disabled": ["topics.lgbt"]})
    assert run_rules(LetterDraft(text=text), settings).outcome == "hold"


def test_severity_override_and_per_profile_settings():
    text = WARM + " Мой телефон +7 916 123-45-67."
    assert run_rules(LetterDraft(text=text)).outcome == "hold"
    strict = RuleSettings.from_mapping({"severity": {"contacts.phone": "return"}})
    assert run_rules(LetterDraft(text=text), strict).outcome == "return"
    per = RuleSettings.from_mapping({"providers": {"post": {"disabled": ["contacts"]}}})
    assert run_rules(LetterDraft(text=text, profile="post"), per).outcome == "pass"
    assert run_rules(LetterDraft(text=text, profile="http"), per).outcome == "hold"


def test_settings_from_mapping_types_and_typos():
    s = RuleSettings.from_mapping(
        {"monthly_budget": "1000.50", "cyrillic_min_share": "0.8", "disabled": "budget"}
    )
    assert s.monthly_budget == Decimal("1000.50")
    assert s.cyrillic_min_share == 0.8
    assert s.disabled == frozenset({"budget"})
    with pytest.raises(ValueError, match="unknown rule settings: disbled"):
        RuleSettings.from_mapping({"disbled": ["topics"]})
    with pytest.raises(ValueError):
        RuleSettings.from_mapping({"severity": {"topics": "reject"}})


def test_decision_is_worst_severity_and_round_trips():
    info = Finding("x", "info", (), "", "", "")
    hold = Finding("y", "hold", ("a",), "ru", "en", "org", code="c", spans=((0, 1),))
    ret = Finding("z", "return", (), "", "", "", suggestion="s")
    assert Decision.of([]).outcome == "pass"
    assert Decision.of([info]).outcome == "pass"
    assert Decision.of([info, hold]).outcome == "hold"
    assert Decision.of([hold, ret, info]).outcome == "return"
    d = Decision.of([info, hold, ret])
    assert Decision.from_dict(d.to_dict()) == d


def test_a_crashing_rule_holds_instead_of_passing(monkeypatch):
    from gateway.rules.base import Rule

    def boom(draft, settings):
        raise RuntimeError("lexicon missing")

    monkeypatch.setitem(RULES, "topics", Rule("topics", "broken", boom))
    decision = run_rules(LetterDraft(text=WARM))
    assert decision.outcome == "hold"
    assert decision.findings[0].key == "topics.error"


@pytest.mark.parametrize("mild", ["херня", "дерьмо", "жопа", "сука", "говно"])
def test_done_when_mild_swear_phone_and_war_each_named(mild):
    text = (
        f"Привет, Саша! Тут такая {mild} творится. Запиши телефон моей мамы: 8 916 123-45-67. "
        "Все только и говорят, что про войну."
    )
    decision = run_rules(LetterDraft(text=text, sender="new.writer@example.org"))
    assert decision.outcome == "return"
    named = {f.key: f.passages for f in decision.findings}
    assert named["profanity.obscene"] == (mild,)
    assert named["contacts.phone"] == ("8 916 123-45-67",)
    assert named["topics.war"] == ("войну",)
    assert set(named) == {"profanity.obscene", "contacts.phone", "topics.war"}
