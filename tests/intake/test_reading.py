"""Reading as people really reply and sign (gateway/mail/cleanup.py): only quoted blocks are
cut, so bottom-posted and interleaved answers keep their text; webmail forward header blocks
and sign-off cards go; a P.S. after the sign-off stays."""

from __future__ import annotations

import pytest

from gateway.mail.cleanup import clean_letter_text, forward_note, forwarded_subject

pytestmark = pytest.mark.intake


def test_bottom_posting_keeps_the_answer_below_the_quote() -> None:
    text = ("03.06.2024 10:15, Письма поддержки пишет:\n> Пришлите письмо ещё раз.\n>\n\n"
            "Мария, здравствуйте! Это моё письмо.\n\nНина")
    assert clean_letter_text(text) == "Мария, здравствуйте! Это моё письмо.\n\nНина"


def test_an_interleaved_answer_keeps_every_own_line() -> None:
    text = ("On Mon, 3 Jun 2024 at 10:15, Gateway <letters@gw.example> wrote:\n> Вопрос один?\n"
            "Ответ один.\n> Вопрос два?\nОтвет два.")
    assert clean_letter_text(text) == "Ответ один.\nОтвет два."


def test_top_posting_still_cuts_the_history_below() -> None:
    text = "Моё письмо.\n\nOn Mon, 3 Jun 2024, Ivan <ivan@example.org> wrote:\nunquoted history"
    assert clean_letter_text(text) == "Моё письмо."


def test_an_html_quote_is_cut_but_a_quoted_poem_is_the_writers() -> None:
    from gateway.mail.cleanup import html_to_text

    quote = ('<div>Понедельник, 3 июня 2024, 10:15 +03:00 от Письма &lt;letters@gw.example&gt;:'
             '<br>&nbsp;<blockquote>Пришлите ещё раз.</blockquote></div><div>Это я, Нина.</div>')
    assert clean_letter_text(html_to_text(quote)) == "Это я, Нина."
    poem = "<div>Мария, вот стихи:</div><blockquote>Мороз и солнце</blockquote><div>Нина</div>"
    assert "Мороз и солнце" in clean_letter_text(html_to_text(poem))


def test_a_pasted_header_block_goes_with_its_addresses() -> None:
    text = ("Пересылаю:\n\nОт кого: Нина <nina@mail.ru>\nКому: olga@mail.ru\nДата: 3 июня 2024\n"
            "Тема: письмо\n\nМаша, держись!")
    assert clean_letter_text(text) == "Пересылаю:\n\nМаша, держись!"


@pytest.mark.parametrize(("card", "kept"), [
    ("С уважением,\nНина Орлова\n+7 916 555-12-34\nnina@mail.ru", "С уважением,\nНина Орлова"),
    ("Best regards,\nAnna\n\nAnna Walker | Acme Ltd | www.acme.example\nLondon",
     "Best regards,\nAnna"),
    ("С уважением,\nНина\nг. Тверь, ул. Некрасова, д. 12, кв. 5\n\nP.S. Мы вас ждём!",
     "С уважением,\nНина\n\nP.S. Мы вас ждём!"),
])
def test_a_sign_off_keeps_the_name_and_drops_the_card(card, kept) -> None:
    assert clean_letter_text("Мария, держитесь!\n\n" + card) == "Мария, держитесь!\n\n" + kept


def test_the_forwarding_note_and_forwarded_subject_are_found() -> None:
    text = ("Передайте, пожалуйста, Петровой Марии.\n\n---------- Forwarded message ---------\n"
            "From: Nina <nina@example.org>\nDate: Mon, 3 Jun 2024\nSubject: Для Маши\n"
            "To: <olga@example.org>\n\nМаша, привет!")
    assert forward_note(text) == "Передайте, пожалуйста, Петровой Марии."
    assert forwarded_subject(text) == "Для Маши"
    assert clean_letter_text(text) == "Передайте, пожалуйста, Петровой Марии.\n\nМаша, привет!"
