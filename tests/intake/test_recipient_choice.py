"""Issue 12 through the real checks (store_messages + check_letters, bounded parser, SQLite):
an ambiguous or conflicting letter waits and goes on when the writer answers with a number
or a name; unreadable mail is quarantined; a letter in a document is read or returned
saying why. Nothing here is paid for before the prisoner is certain. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from gateway.config import Settings
from gateway.models import Letter, Prisoner, utcnow
from gateway.pipeline.sweeper import sweep
from gateway.states import LetterState as S
from tests.intake.conftest import GATEWAY, LETTERS, SECRET, mail

pytestmark = pytest.mark.intake

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
NAMESAKE = dict(code="K106", last_name="Иванов", first_name="Пётр", middle_name="Сергеевич",
                birth_year=1970, facility_name="ИК-3 Коми", facility_id="11-ik-3")
OLEG = dict(code="K105", last_name="Сидоренко", first_name="Олег", middle_name=None,
            birth_year=1988, facility_name="ИК-1 Тверь", facility_id="69-ik-1")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gateway_settings(request, tmp_path) -> Settings:
    url = f"sqlite:///{tmp_path}/gateway.db" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    return Settings(database_url=url, secret_key=SECRET, gateway_address=GATEWAY,
                    org_reply_email="replies@gw.example", broker_url="redis://127.0.0.1:1/0",
                    confirm_senders=True, sender_daily_limit=3)


@pytest.fixture
def gw(gw):
    gw.settings.confirm_senders = False  # confirmation has its own tests (test_writers.py)
    with gw.sessions() as session:
        session.add_all([Prisoner(**NAMESAKE), Prisoner(**OLEG)])
        session.commit()
    return gw


def prisoner_id(gw, code: str) -> int:
    with gw.sessions() as session:
        return session.query(Prisoner.id).filter_by(code=code).scalar()


def fixture(name: str) -> bytes:
    return (CORPUS / f"{name}.eml").read_bytes()


def ask(gw, subject: str = "Иванову", body: str = LETTERS[0]) -> tuple[int, object]:
    [waiting] = gw.send(mail(subject, body))
    letter = gw.letter(waiting)
    assert letter.state == S.AWAITING_CHOICE and letter.prisoner_id is None, letter.reason
    [notice] = [n for n in gw.outbox("ambiguous_recipient") if n.letter_id == waiting]
    return waiting, gw.message(notice)


@pytest.mark.parametrize(("answer", "code"), [
    ("2", "K106"),
    ("№1", "K101"),
    ("Иванову Петру Сергеевичу", "K106"),
    ("K101, пожалуйста", "K101"),
])
def test_the_writer_answers_the_question_and_the_waiting_letter_goes_on(gw, answer, code):
    waiting, question = ask(gw)
    text = question.get_body(("plain",)).get_content()
    assert "1. Иванов Иван Иванович" in text and "2. Иванов Пётр Сергеевич" in text
    assert "присылать его ещё раз не нужно" in text and text.index("Здравствуйте") < text.index("Hello")

    reply = mail("Re: " + str(question["Subject"]), f"{answer}\n", In_Reply_To=question["Message-ID"])
    [answered] = gw.receive(reply)
    result = gw.check([answered])
    assert gw.letter(answered).state == S.IGNORED  # an answer, not a letter: never paid
    letter = gw.letter(waiting)
    assert (letter.state, letter.prisoner_id) == (S.READY, prisoner_id(gw, code)), letter.reason
    assert letter.body == LETTERS[0].strip() and result.ready == [waiting]


def test_an_answer_from_a_client_that_drops_in_reply_to_is_matched_to_the_one_waiting_letter(gw):
    waiting, _ = ask(gw)
    [answer] = gw.send(mail("Ответ", "Петру Сергеевичу"))
    assert gw.letter(answer).state == S.IGNORED
    assert gw.letter(waiting).prisoner_id == prisoner_id(gw, "K106")
    assert gw.letter(waiting).state == S.READY


def test_a_short_new_letter_that_names_a_candidate_chooses_and_is_still_a_letter(gw):
    waiting, _ = ask(gw)
    [letter_id] = gw.send(mail("Иванову Петру", "Пётр Сергеевич, держитесь! Мы с вами.\nАнна"))
    assert gw.letter(waiting).prisoner_id == prisoner_id(gw, "K106")
    letter = gw.letter(letter_id)
    assert letter.state != S.IGNORED and letter.prisoner_id == prisoner_id(gw, "K106")


def test_an_answer_that_names_nobody_on_the_list_leaves_the_letter_waiting(gw):
    waiting, question = ask(gw)
    gw.send(mail("Re: вопрос", "7", In_Reply_To=question["Message-ID"]))
    assert gw.letter(waiting).state == S.AWAITING_CHOICE


def test_conflicting_addressees_wait_for_the_writer_and_nothing_is_paid(gw):
    [letter_id] = gw.send(fixture("conflicting_addressees"))
    letter = gw.letter(letter_id)
    assert letter.state == S.AWAITING_CHOICE and letter.price is None
    [notice] = gw.outbox("ambiguous_recipient")
    text = gw.message(notice).get_body(("plain",)).get_content()
    assert "разные адресаты" in text and "Петрова Мария Сергеевна" in text and "Сидоренко Олег" in text
    gw.send(mail("Re: вопрос", "Петровой Марии", sender="Pavel <pavel@example.org>",
                 In_Reply_To=gw.message(notice)["Message-ID"]))
    letter = gw.letter(letter_id)
    assert (letter.state, letter.prisoner_id) == (S.READY, prisoner_id(gw, "K102"))


def test_a_namesake_told_apart_by_birth_year_and_facility_goes_straight_on(gw):
    [letter_id] = gw.send(fixture("namesake_by_birth_year"))
    letter = gw.letter(letter_id)
    assert (letter.state, letter.prisoner_id) == (S.READY, prisoner_id(gw, "K106")), letter.reason


def test_a_letter_never_answered_is_discarded_by_the_sweeper(gw):
    waiting, _ = ask(gw)
    with gw.sessions() as session:
        session.execute(update(Letter).where(Letter.id == waiting)
                        .values(updated_at=utcnow().replace(year=2000)))
        session.commit()
        swept = sweep(session, stuck_after_s=600, unconfirmed_after_s=7 * 86400)
        session.commit()
    assert swept.expired == [waiting] and gw.letter(waiting).state == S.DISCARDED


@pytest.mark.parametrize(("name", "why"), [("malformed_broken_multipart", "could not be recovered"),
                                           ("malformed_damaged_base64", "base64 is damaged")])
def test_unrecoverable_mail_is_quarantined_not_answered(gw, name, why):
    [letter_id] = gw.send(fixture(name))
    letter = gw.letter(letter_id)
    assert letter.state == S.QUARANTINED and why in letter.reason
    assert gw.outbox() == []


def test_a_letter_in_a_document_is_read_and_goes_on(gw):
    [letter_id] = gw.send(fixture("letter_in_docx"))
    letter = gw.letter(letter_id)
    assert letter.state == S.READY, letter.reason
    assert letter.body.startswith("Мария Сергеевна, здравствуйте!") and "вложении" not in letter.body
    assert "nina.orlova" not in letter.rendered  # the document's author field is not read


def test_a_letter_in_an_unreadable_document_goes_back_saying_why(gw):
    [letter_id] = gw.send(fixture("letter_in_scanned_pdf"))
    letter = gw.letter(letter_id)
    assert letter.state == S.REJECTED and letter.price is None
    [notice] = gw.outbox("document_unreadable")
    text = gw.message(notice).get_body(("plain",)).get_content()
    assert "скан" in text and "scan" in text and text.index("Здравствуйте") < text.index("Hello")


def test_a_bottom_posted_reply_keeps_its_text(gw):
    [letter_id] = gw.send(fixture("thunderbird_bottom_posted"))
    letter = gw.letter(letter_id)
    assert letter.state == S.READY, letter.reason
    assert "Отправляю письмо ещё раз" in letter.body and "Пришлите" not in letter.body


@pytest.mark.parametrize("name", ["mailru_forward_headers_regards", "gmail_regards_signature"])
def test_forward_headers_and_signatures_are_trimmed_not_returned(gw, name):
    [letter_id] = gw.send(fixture(name))
    letter = gw.letter(letter_id)
    assert not any(f["rule"] == "contacts" for f in letter.findings or ()), letter.reason
    assert letter.state in (S.READY, S.REJECTED) and "e-mail" not in letter.reason
    assert "@" not in letter.body and "+7" not in letter.body and "+44" not in letter.body


def test_a_letter_forwarded_as_an_attachment_goes_to_the_prisoner_its_note_names(gw):
    raw = fixture("forward_attached_addressee_in_note").replace(
        "Ковалёву Петру Андреевичу".encode(), "Сидоренко Олегу".encode())
    [letter_id] = gw.send(raw)
    letter = gw.letter(letter_id)
    assert (letter.state, letter.prisoner_id) == (S.READY, prisoner_id(gw, "K105")), letter.reason
    assert "Желаем вам сил." in letter.body and "nina.orlova" not in letter.body
