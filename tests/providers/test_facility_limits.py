"""The facility's limits at submission: a letter the freshly synced catalogue shows its
facility cannot take is returned to the writer before any call, and a refusal the
service still gives (its catalogue could not be read) reaches the writer in plain words."""

from __future__ import annotations

import email
from email import policy as email_policy

import pytest
from sqlalchemy import select

from gateway.crypto import unseal_bytes
from gateway.models import Letter, LetterAttachment, OutboundMail, Prisoner
from gateway.pipeline.submission import submit_many
from gateway.states import LetterState as S
from tests.providers.conftest import SECRET

pytestmark = [pytest.mark.providers, pytest.mark.rules, pytest.mark.timeout(120)]

LONG = "Здравствуйте, Олег!\n\n" + "\n\n".join(
    f"Пишу вам о том, как прошла неделя номер {i}: мы гуляли, читали книги и вспоминали "
    "вас добрым словом. " * 4 for i in range(1, 40))
JPEG = b"\xff\xd8\xff\xe0" + b"0" * 500


def _notice(sessions, letter_id: int, kind: str) -> str:
    with sessions() as session:
        row = session.scalar(select(OutboundMail).where(OutboundMail.letter_id == letter_id,
                                                        OutboundMail.kind == kind))
    assert row is not None, f"no {kind!r} notice for letter {letter_id}"
    msg = email.message_from_bytes(unseal_bytes(SECRET, row.message), policy=email_policy.default)
    return " ".join(msg.get_body(("plain",)).get_content().split())


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_over_the_page_limit_or_a_photo_nobody_takes_is_returned_before_any_call(
        sessions, http, settings, policy, control, letters):
    # K104: ИК-2 Казань, 3 pages at most; K103: Матросская тишина, no photos.
    long_id = letters(1, code="K104", body=LONG)[0]
    photo_id = letters(1, code="K103", writer="boris@example.org")[0]
    fine_id = letters(1, code="K102", writer="vera@example.org")[0]
    with sessions() as session:
        session.add(LetterAttachment(letter_id=photo_id, filename="cat.jpg",
                                     content_type="image/jpeg", data=JPEG))
        session.get(Letter, photo_id).photos = 1
        assert session.get(Letter, long_id).pages > 3
        session.commit()

    result = submit_many(sessions, http, [long_id, photo_id, fine_id], settings, policy)

    assert result.returned == [long_id, photo_id] and result.submitted == [fine_id]
    assert len(result.mail) >= 3  # two 'returned' and one 'sent'
    assert [c["idempotency_key"] for c in control.ledger()] == \
        [_public_id(sessions, fine_id)]  # nothing paid or even asked for the other two
    with sessions() as session:
        for letter_id in (long_id, photo_id):
            letter = session.get(Letter, letter_id)
            assert letter.state == S.REJECTED and letter.attempts == 0
    text = _notice(sessions, long_id, "returned")
    assert "не больше 3 стр." in text and "at most 3" in text
    assert "ничего за него не списали" in text and "цензура" not in text.split("Hello")[0]
    text = _notice(sessions, photo_id, "returned")
    assert "не принимает фотографии" in text and "does not accept photos" in text


def _public_id(sessions, letter_id: int) -> str:
    with sessions() as session:
        return session.get(Letter, letter_id).public_id


def test_a_refusal_by_the_service_reaches_the_writer_in_plain_words(
        sessions, http, settings, policy, control, letters):
    # The catalogue cannot be read, so only the service can say the letter is too long.
    control.faults(error_rate=1.0, status=503, method="GET", path_prefix="/v1/facilities")
    long_id = letters(1, code="K104", body=LONG)[0]
    with sessions() as session:  # and a directory entry the service cannot address
        session.scalar(select(Prisoner).where(Prisoner.code == "K105")).birth_year = None
        session.commit()
    nameless_id = letters(1, code="K105", writer="boris@example.org")[0]

    result = submit_many(sessions, http, [long_id, nameless_id], settings, policy)

    assert control.ledger() == []
    with sessions() as session:
        assert [session.get(Letter, i).state for i in (long_id, nameless_id)] == \
            [S.FAILED, S.FAILED]
    assert len(result.mail) == 2
    text = _notice(sessions, long_id, "refused")
    assert "длиннее, чем принимает учреждение" in text and "longer than" in text
    assert "прислать ещё раз" in text and "Деньги за него не списаны" in text
    assert "422" not in text and "validation" not in text
    text = _notice(sessions, nameless_id, "refused")
    assert "данные адресата" in text and "ничего делать не нужно" in text
