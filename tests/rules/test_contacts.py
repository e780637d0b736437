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
        "Т.е. всё хорошо, Москва стоит. И т.д. и т.п.",
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


@pytest.mark.parametrize(
    ("text", "passage"),
    [
        ("Пишите мне: 170100, г. Тверь, ул. Некрасова, д. 12, кв. 5. Жду!",
         "170100, г. Тверь, ул. Некрасова, д. 12, кв. 5"),
        ("Живу на пр-т Мира 5-12, приезжайте.", "пр-т Мира 5-12"),
        ("Мы переехали в г. Москва прошлой весной.", "г. Москва"),
        ("Пишите на а/я 15, мне передадут.", "а/я 15"),
        ("Адрес: Невский проспект, 28, кв. 7", "Невский проспект, 28, кв. 7"),
        ("улица Ленина, дом 5, квартира 12", "улица Ленина, дом 5, квартира 12"),
        ("Дом 15, корпус 2, квартира 118. Индекс 190000.",
         "Дом 15, корпус 2, квартира 118. Индекс 190000"),
        ("Москва, 3-я улица Строителей, д. 25, кв. 12", "улица Строителей, д. 25, кв. 12"),
        ("Заходите: ул.Пушкина д.10", "ул.Пушкина д.10"),
        ("Варшавское шоссе, 18 — наш дом.", "Варшавское шоссе, 18"),
        ("Москва, Ленинский проспект 45 к. 2", "Ленинский проспект 45 к. 2"),
        ("Живём на ул. 8 Марта, 14 уже год.", "ул. 8 Марта, 14"),
        ("мкр. Северный, д. 4, кв. 40", "мкр. Северный, д. 4, кв. 40"),
        ("Мы в Твери, индекс 170100.", "индекс 170100"),
        ("Посылку шлите: Тверь, 170100", "Тверь, 170100"),
        ("пос. Сосновка, ул. Лесная 3", "пос. Сосновка, ул. Лесная 3"),
    ],
)
def test_postal_addresses_are_held_with_the_passage(text, passage):
    [finding] = check(LetterDraft(text=text), RuleSettings())
    assert (finding.code, finding.severity) == ("address", "hold")
    assert finding.passages == (passage,)
    assert [text[a:b] for a, b in finding.spans] == [passage]
    assert passage in finding.reason_ru and "безопасности" in finding.reason_ru
    assert passage in finding.reason_en and "safety" in finding.reason_en


@pytest.mark.parametrize(
    "text",
    [
        "Я родилась в 1985 г. Москва тогда была другой.",
        "Иванов Иван, 1985 г.р., очень ждёт писем.",
        "На улице шёл дождь, и мы гуляли по Невскому проспекту 2 часа.",
        "Купили квартиру 50 кв. м за 12 000 000 рублей.",
        "12.03.2024 мы переехали, а 15 июня поедем на дачу.",
        "В 2024 году было 365 дней, и 123456 шагов я прошёл.",
        "Прочитала стр. 12 и гл. 5, очень понравилось.",
        "У нас на площади Ленина поставили ёлку.",
        "Я смотрел на шоссе 3 часа подряд.",
        "Прошли по улице Ленина 5 километров.",
        "На Тверской улице 3 магазина закрылись.",
        "Мы были на Красной площади 5 раз.",
        "Моя школа №5 на улице Мира.",
        "Живём мы в Твери, на тихой улице у реки.",
    ],
)
def test_ordinary_words_and_numbers_are_not_addresses(text):
    assert "address" not in _found(text)

