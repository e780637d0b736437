"""topics: risky lemmas caught in every inflected form; a hit holds, never returns."""

from __future__ import annotations

import pytest

from gateway.rules import LetterDraft, RuleSettings, run_rules
from gateway.rules.lexicon import lexicon_dirs
from gateway.rules.morphology import inflections
from gateway.rules.topics import check, find

pytestmark = pytest.mark.rules

DIRS = lexicon_dirs()

SAMPLE = {
    "война": "war",
    "мобилизация": "war",
    "мобилизовать": "war",
    "оккупант": "war",
    "военкомат": "war",
    "путин": "authorities",
    "чиновник": "authorities",
    "приговор": "case",
    "следователь": "case",
    "адвокат": "case",
    "лесбиянка": "lgbt",
    "трансгендер": "lgbt",
    "экстремист": "extremism",
    "террорист": "extremism",
    "навальный": "extremism",
    "митинг": "calls_to_action",
    "забастовка": "calls_to_action",
    "протестовать": "calls_to_action",
}


@pytest.mark.parametrize(("lemma", "category"), sorted(SAMPLE.items()))
def test_every_inflected_form_is_caught(lemma, category):
    forms = sorted(inflections(lemma))
    assert len(forms) >= 5, forms  # a real paradigm, not just the lemma
    for form in forms:
        for written in (form, form.capitalize(), form.upper()):
            text = f"Я думаю, что {written} — это важно."
            hits = find(text, DIRS)
            assert category in hits, (lemma, written)
            (a, b), *_ = hits[category]
            assert text[a:b] == written


@pytest.mark.parametrize(
    ("text", "category", "passage"),
    [
        ("Все говорят о специальной военной операции.", "war", "специальной военной операции"),
        ("Про спецоперацию по телевизору", "war", "спецоперацию"),
        ("Новости про СВО", "war", "СВО"),
        ("Его возбудили уголовное дело.", "case", "уголовное дело"),
        ("По уголовному делу вызвали", "case", "уголовному делу"),
        ("Обвинили по ст. 207.3 за пост", "case", "ст. 207.3"),
        ("статья 280 слишком строгая", "case", "статья 280"),
        ("дали по 205.2 УК", "case", "205.2 УК"),
        ("Читал про ЛГБТ", "lgbt", "ЛГБТ"),
        ("бывшие сотрудники ФБК", "extremism", "ФБК"),
        ("из Фонда борьбы с коррупцией", "extremism", "Фонда борьбы с коррупцией"),
        ("ходила на митинги", "calls_to_action", "митинги"),
        ("вoйна (с латинской o)", "war", "вoйна"),
    ],
)
def test_phrases_abbreviations_and_articles(text, category, passage):
    hits = find(text, DIRS)
    assert category in hits, hits
    assert passage in [text[a:b] for a, b in hits[category]]


@pytest.mark.parametrize(
    "text",
    [
        "Я перечитываю «Войну и мир» Толстого.",
        "Дедушка прошёл всю Великую Отечественную войну и дожил до девяноста.",
        "Мы с детьми пересмотрели «Звёздные войны».",
        "В школе проходим Вторую мировую войну.",
        "Как дела? Я работаю, читаю, гуляю с собакой.",
        "Режим дня у меня простой: подъём в семь, зарядка, завтрак.",
    ],
)
def test_harmless_uses_pass(text):
    assert find(text, DIRS) == {}


def test_hit_holds_with_passages_highlighted_and_never_returns():
    text = (
        "Дорогой друг! Мы все переживаем из-за войны. Твоего адвоката опять не пустили, "
        "а судья отложил заседание. Держись!"
    )
    decision = run_rules(LetterDraft(text=text))
    assert decision.outcome == "hold"
    findings = {f.code: f for f in decision.by_rule("topics")}
    assert set(findings) == {"war", "case"}
    assert findings["war"].passages == ("войны",)
    assert findings["case"].passages == ("адвоката", "судья")
    for f in findings.values():
        assert f.severity == "hold"
        assert [text[a:b] for a, b in f.spans] == list(f.passages)
        assert "не отклонено" in f.reason_ru and "not rejected" in f.reason_en


def test_topics_never_return_even_with_every_category():
    text = (
        "Война, мобилизация, Путин, приговор, ЛГБТ, экстремизм, митинг, "
        "специальная военная операция, уголовное дело."
    )
    decision = run_rules(LetterDraft(text=text))
    assert decision.outcome == "hold"
    assert {f.code for f in decision.findings} == {
        "war",
        "authorities",
        "case",
        "lgbt",
        "extremism",
        "calls_to_action",
    }


def test_organizers_add_a_category_and_words(tmp_path):
    (tmp_path / "topics").mkdir()
    (tmp_path / "topics" / "war.txt").write_text("танк\n", encoding="utf-8")
    (tmp_path / "topics" / "religion.txt").write_text("# new list\nмечеть\n", encoding="utf-8")
    (tmp_path / "topics" / "categories.toml").write_text(
        '[religion]\ntitle_ru = "религия"\ntitle_en = "religion"\n', encoding="utf-8"
    )
    text = "Видели танки и старую мечеть."
    assert check(LetterDraft(text=text), RuleSettings()) == []
    findings = {
        f.code: f
        for f in check(LetterDraft(text=text), RuleSettings(lexicon_dirs=(str(tmp_path),)))
    }
    assert findings["war"].passages == ("танки",)
    assert findings["religion"].passages == ("мечеть",)
    assert "«религия»" in findings["religion"].reason_ru
