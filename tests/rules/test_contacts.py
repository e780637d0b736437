"""contacts: phones, e-mails, links and handles are held; the writer's own address returns."""

from __future__ import annotations

import pytest

from gateway.rules import LetterDraft, RuleSettings
from gateway.rules.contacts import check

pytestmark = pytest.mark.rules


def _found(text: str, sender: str | None = None) -> dict[str, tuple[str, ...]]:
    findings = check(LetterDraft(text=text, sender=sender), RuleSettings())
    for f in findings:
        assert [text[a:b] for a, b in f.spans] == list(f.passages)
    return {f.code: f.passages for f in findings}


@pytest.mark.parametrize(
    "phone",
    [
        "+7 (916) 123-45-67",
        "8 916 123 45 67",
        "89161234567",
        "+79161234567",
        "8(495)123-45-67",
        "+7-916-123-45-67",
        "+380 44 123 4567",
    ],
)
def test_phone_numbers(phone):
    assert _found(f"Позвони маме по номеру {phone}, она ждёт.") == {"phone": (phone,)}


@pytest.mark.parametrize(
    "text",
    [
        "Я родилась в 1985 году, а 12.03.2024 мы переехали.",
        "Купили холодильник за 45 990 рублей, и ещё 2500 ушло на доставку.",
        "Дом 15, корпус 2, квартира 118. Индекс 190000.",
        "Т.е. всё хорошо, г. Москва стоит. И т.д. и т.п.",
        "Счёт матча 3:2, время 18:45, температура -12.",
        "Прочитала 300 страниц за 2 дня!",
    ],
)
def test_numbers_that_are_not_contacts_pass(text):
    assert _found(text) == {}


def test_emails_urls_and_handles_are_held():
    text = (
        "Пиши Ане на anya.petrova+letters@yandex.ru, смотри фото на https://vk.com/album1, "
        "а ещё www.example.org и ovd.info. Мой телеграм @vasya_pupkin."
    )
    findings = {f.code: f for f in check(LetterDraft(text=text), RuleSettings())}
    assert findings["email"].passages == ("anya.petrova+letters@yandex.ru",)
    assert findings["url"].passages == ("https://vk.com/album1", "www.example.org", "ovd.info")
    assert findings["handle"].passages == ("@vasya_pupkin",)
    assert {f.severity for f in findings.values()} == {"hold"}


def test_cyrillic_domains_and_addresses():
    assert _found("Наш сайт письма.рф, пиши на мама@пример.рф") == {
        "url": ("письма.рф",),
        "email": ("мама@пример.рф",),
    }


def test_writers_own_address_returns_and_is_not_double_reported():
    text = "Если что, мой адрес Ivan.Petrov@Mail.ru, пиши туда. Или ivan.petrov (at) mail.ru"
    findings = check(LetterDraft(text=text, sender="ivan.petrov@mail.ru"), RuleSettings())
    assert [f.code for f in findings] == ["own_address"]
    (own,) = findings
    assert own.severity == "return"
    assert own.passages == ("Ivan.Petrov@Mail.ru", "ivan.petrov (at) mail.ru")
    assert "безопасности" in own.reason_ru and "safety" in own.reason_en


def test_someone_elses_address_is_only_held():
    findings = check(
        LetterDraft(text="Пиши маме: mama@mail.ru", sender="ivan@mail.ru"), RuleSettings()
    )
    assert [(f.code, f.severity) for f in findings] == [("email", "hold")]


def test_plain_letter_has_no_contacts():
    assert _found("Здравствуй! У нас всё хорошо. Обнимаю. P.S. Привет маме!") == {}
