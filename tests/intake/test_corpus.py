"""The intake corpus (tests/fixtures/mail/*.eml): every real-client message has its outcome
asserted: the letter text after cleanup, the prisoner it is for, robot or person, the sender,
the charset step, photos carried and files declined."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from gateway.intake.addressing import resolve_recipient
from gateway.mail.parse import ParsedLetter, UnparseableMessage, parse_message
from tests.intake.test_addressing import (
    DIRECTORY,
    IVANOV,
    IVANOV_PETR,
    KOVALEV,
    LI,
    PETROVA,
    SIDORENKO,
)

pytestmark = pytest.mark.intake

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
OWN = frozenset({"letters@gw.example"})
DOC_LETTER = ["Мария Сергеевна, здравствуйте!",
              "Пишу вам от всей нашей семьи. У нас всё хорошо, дети растут.",
              "Мы о вас помним и ждём.", "Нина"]
LETTER = ("Здравствуйте, Мария!\n\nПишу вам из Твери. У нас уже совсем весна, в парке цветут яблони.\n"
          "Мы все о вас думаем и ждём домой. Держитесь!\n\nОльга")


@dataclass(frozen=True)
class Expect:
    text: str | None = None  # the letter text after addressing (None: not checked)
    to: object = None  # a Candidate, "ambiguous", "not_found" or "anyone:<id>"
    robot: str | None = None  # a substring of ParsedLetter.automated; None means a person wrote
    sender: str | None | bool = True  # True: any address; None: no safe sender; str: exactly
    step: str = "declared"
    photos: int = 0
    declined: tuple[str, ...] = ()  # substrings of the reasons, in order
    unparseable: str | None = None
    unreadable: str | None = None  # parsed, but the text is lost: quarantined for a person
    document_problem: str | None = None  # the letter is a document that cannot be read
    message_id: str | None | bool = True


EXPECTED: dict[str, Expect] = {
    "gmail_reply_ru_quoted": Expect(LETTER, PETROVA, sender="olga.smirnova@gmail.com"),
    "gmail_reply_en_wrapped_attribution": Expect(
        "Dear Oleg,\n\nWe read about you and want to say: you are not alone.\nHope the winter is mild there.\n\nAnna",
        SIDORENKO),
    "gmail_forward_letter_inside": Expect(
        "Пётр Андреевич, здравствуйте!\nСпасибо за ваше письмо, оно нас очень порадовало.", KOVALEV),
    "gmail_photo_with_exif": Expect("Олег, вот фото нашего кота.", SIDORENKO, photos=1),
    "yandex_html_only_reply": Expect("Здравствуйте, Анна!\nЖелаю вам сил и терпения. Мы помним.", LI),
    "yandex_forward": Expect("Передаю письмо от мамы.\n\nКому: Петровой Марии\nМаша, держись, мы с тобой.", PETROVA),
    "yandex_vacation_autoreply": Expect(robot="Auto-Submitted: auto-replied"),
    "mailru_reply_blockquote": Expect("Иван Иванович, добрый день!\nПрочитал вашу статью, спасибо.", IVANOV),
    "mailru_mobile_footer": Expect("Анна, привет! Как вы там? Пишите нам.", LI),
    "outlook_reply_ru_cp1251": Expect(
        "Добрый день, Олег!\n\nПоздравляю с днём рождения. Здоровья вам.\n\nС уважением,\nЕлена", SIDORENKO),
    "outlook_forward_en": Expect("Пётр, мы читаем ваши письма вслух всей семьёй.", KOVALEV),
    "outlook_original_message": Expect("Мария Сергеевна, спасибо за ответ!", PETROVA),
    "outlook_web_html_reply": Expect("Олег, держитесь. Мы ждём.", SIDORENKO),
    "outlook_autoreply_exchange": Expect(robot="Auto-Submitted: auto-generated"),
    "autoreply_subject_only_ru": Expect(robot="auto-reply subject"),
    "thunderbird_flowed_signature": Expect(
        "Пётр Андреевич, здравствуйте! Это очень длинная строка, которую Thunderbird разбил на две "
        "по правилам format=flowed.\n\nВсего доброго.", KOVALEV),
    "thunderbird_html_moz_cite": Expect("Анна, спасибо за рисунок!", LI),
    "thunderbird_koi8r_to_petrova": Expect(
        "Маша, здравствуй!\nУ нас всё хорошо, дети растут. Ждём тебя.\n\nТвоя Нина", PETROVA),
    "iphone_reply_ru": Expect("Иван, держитесь!", IVANOV),
    "iphone_split_body_inline_photo": Expect("Маша, смотри какой закат:\n\nА это был вчера.", PETROVA, photos=1),
    "iphone_heic_photo": Expect("Фото с дачи.", SIDORENKO, declined=("HEIF",)),
    "android_gmail_sent_from_galaxy": Expect("Олег, привет из Питера!", SIDORENKO),
    "cp1251_quoted_printable": Expect("Анна, добрый вечер. Прочитала про вас в газете.\nВсего вам доброго!", LI),
    "koi8r_labelled_windows1251": Expect(
        "Привет, Маша! Как ты там? Держись, мы все о тебе думаем.", PETROVA, step="detected:koi8-r"),
    "cp1251_labelled_koi8r": Expect(
        "Здравствуйте, Иван Иванович! Пишу вам из Москвы, у нас всё хорошо.", IVANOV, step="detected:cp1251"),
    "cp1251_unlabeled_8bit": Expect(
        "Олег, здравствуйте! Желаем вам здоровья и терпения.", SIDORENKO, step="detected:cp1251"),
    "cp866_unlabeled": Expect("Пётр Андреевич, здравствуйте! Пишем вам всей семьёй.", KOVALEV, step="detected:cp866"),
    "utf8_labelled_latin1": Expect("Анна, привет из Казани! Пусть у вас всё будет хорошо.", LI, step="utf-8"),
    "charset_unknown_8bit": Expect("Маша, пусть этот день будет светлым.", PETROVA, step="utf-8"),
    "charset_typo_uft8": Expect("Иван, мы с вами.", IVANOV),
    "undeclared_8bit_subject_and_name": Expect("Маша, привет!", PETROVA, sender="orlova@example.org"),
    "encoded_word_split_display_name": Expect("Олег, привет!", SIDORENKO),
    "html_only_with_script_and_pixel": Expect("Пётр, здравствуйте!\nПосылаем вам тёплый привет.\n\nнаш сайт", KOVALEV),
    "html_meta_charset_cp1251": Expect("Иван, привет из Самары!", IVANOV),
    "mailing_list_digest": Expect(robot="Precedence: list"),
    "bulk_newsletter": Expect(robot="Precedence: bulk"),
    "dsn_bounce_postfix": Expect(robot="null return path"),
    "exchange_ndr_postmaster": Expect(robot="robot sender (postmaster)"),
    "read_receipt_mdn": Expect(robot="delivery report (multipart/report)"),
    "noreply_sender": Expect(robot="robot sender (noreply)"),
    "own_address_loop": Expect(robot="from our own address"),
    "x_auto_response_suppress_only": Expect(robot="X-Auto-Response-Suppress"),
    "missing_message_id": Expect("Маша, с праздником!", PETROVA, message_id=None),
    "from_two_addresses": Expect("Маша, привет!", PETROVA, sender=None),
    "from_cve_2023_27043": Expect("Маша, привет!", PETROVA, sender=None),
    "subject_encoded_newline_bcc": Expect("Маша, привет!", PETROVA),
    "reply_to_own_notice": Expect("Да, подтверждаю.", "not_found"),
    "plus_address_code": Expect("Олег, привет!", SIDORENKO),
    "anyone_subject": Expect("Здравствуйте! Держитесь, вас помнят.", f"anyone:{SIDORENKO.id}"),
    "ambiguous_surname": Expect("Здравствуйте!", "ambiguous"),
    "latin_transliterated_subject": Expect("Пётр, привет из Берлина!", KOVALEV),
    "long_legal_letter": Expect(None, PETROVA),
    "pdf_and_disguised_exe": Expect("Олег, вот документы.", SIDORENKO,
                                    declined=("Portable Document Format", "Windows Executable")),
    "png_gif_and_signature_logo": Expect("Анна, рисунки детей.", LI, photos=2, declined=("too small",)),
    "rfc2231_hostile_filename": Expect("Фото.", PETROVA, photos=1),
    "forward_as_attachment": Expect("См. вложение.\n\ninner text", IVANOV),
    # issue 12: addressing and reading as people really write
    "letter_in_docx": Expect("\n".join(DOC_LETTER), PETROVA),
    "letter_in_odt": Expect("\n".join(DOC_LETTER), PETROVA),
    "letter_in_pdf": Expect("Dear Oleg,\nWe think of you every day.\nStay strong. John", SIDORENKO),
    "letter_in_txt": Expect("Пётр Андреевич, здравствуйте!\nЖелаем вам здоровья.", KOVALEV,
                            step="empty"),
    "letter_in_scanned_pdf": Expect("Письмо во вложении", PETROVA, declined=("no text",),
                                    document_problem="no text"),
    "thunderbird_bottom_posted": Expect(
        "Мария Сергеевна, здравствуйте!\nОтправляю письмо ещё раз. Мы вас ждём.\n\nНина", PETROVA),
    "yandex_html_bottom_posted": Expect("Олег, здравствуйте!\nПишу ещё раз: мы с вами.\nДима", SIDORENKO),
    "mailru_forward_headers_regards": Expect(
        "Иван Иванович, здравствуйте!\nПрочитали о вас и хотим поддержать.\n\nС уважением,\nНина Орлова",
        IVANOV),
    "gmail_regards_signature": Expect("Dear Oleg,\n\nWe are with you.\n\nBest regards,\nAnna Walker",
                                      SIDORENKO),
    "forward_attached_addressee_in_note": Expect(
        "Добрый день! Перешлите, пожалуйста, Ковалёву Петру Андреевичу, это от моей мамы.\n\n"
        "Пётр Андреевич, здравствуйте!\nЖелаем вам сил.", KOVALEV),
    "yandex_forward_addressee_in_subject": Expect("Олег, держитесь!", SIDORENKO),
    "preposition_and_birth_year": Expect("Иван, держитесь!", IVANOV),
    "namesake_by_birth_year": Expect("Здравствуйте!", IVANOV_PETR),
    "conflicting_addressees": Expect("Здравствуйте!", "ambiguous"),
    "latin_dative_subject": Expect("Maria, we are with you.", PETROVA),
    "malformed_broken_multipart": Expect(unreadable="could not be recovered"),
    "malformed_damaged_base64": Expect(unreadable="base64 is damaged"),
    "nested_multipart_too_deep": Expect(unparseable="deeper than 10"),
    "header_block_too_large": Expect(unparseable="header block is larger"),
    # The checks' cases: read and addressed here; what the checks decide is asserted in
    # tests/intake/test_checks_pipeline.py and tests/e2e/test_facility_limits.py.
    "long_letter_over_facility_limit": Expect(None, SIDORENKO),
    "photo_to_facility_without_photos": Expect(
        "Пётр Андреевич, посылаю фото нашей собаки.\nВсего доброго!", KOVALEV, photos=1),
    "postal_address_in_signature": Expect(None, PETROVA),
}


def test_every_fixture_has_an_expectation_and_a_readme_line() -> None:
    files = {p.stem for p in CORPUS.glob("*.eml")}
    assert files == set(EXPECTED)
    assert len(files) >= 40
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    for name in files:
        assert f"`{name}.eml`" in readme


def parse(name: str) -> ParsedLetter:
    return parse_message((CORPUS / f"{name}.eml").read_bytes(), own_addresses=OWN)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_outcome(name: str) -> None:
    expect = EXPECTED[name]
    if expect.unparseable:
        with pytest.raises(UnparseableMessage, match=expect.unparseable):
            parse(name)
        return
    letter = parse(name)
    assert (letter.unreadable is None) == (expect.unreadable is None)
    if expect.unreadable:
        assert expect.unreadable in letter.unreadable
        return  # quarantined for a person before addressing
    assert (letter.document_problem is None) == (expect.document_problem is None)
    if expect.document_problem:
        assert expect.document_problem in letter.document_problem[0]
    if expect.robot is None:
        assert letter.automated is None
    else:
        assert letter.automated is not None and expect.robot in letter.automated
        return  # robot mail is recorded, never addressed or answered
    resolution = resolve_recipient(letter.subject, letter.text, letter.recipients, DIRECTORY,
                                   notes=letter.forward_notes)
    if expect.text is not None:
        assert resolution.text == expect.text
    if isinstance(expect.to, str):
        kind, _, pid = expect.to.partition(":")
        assert resolution.kind == kind
        if pid:
            assert resolution.prisoner_id == int(pid)
    else:
        assert (resolution.kind, resolution.prisoner_id) == ("found", expect.to.id)
    if expect.sender is True:
        assert letter.sender and "@" in letter.sender
    else:
        assert letter.sender == expect.sender
    assert letter.charset_step == expect.step
    assert len(letter.attachments) == expect.photos
    assert len(letter.declined) == len(expect.declined)
    for (_, reason), wanted in zip(letter.declined, expect.declined, strict=True):
        assert wanted in reason
    if expect.message_id is None:
        assert letter.message_id is None
    else:
        assert letter.message_id and "<" not in letter.message_id


def test_no_quoted_address_or_phone_reaches_the_text() -> None:
    for name, expect in EXPECTED.items():
        if expect.unparseable or expect.robot or expect.unreadable:
            continue
        text = parse(name).text
        assert "@" not in text, name
        assert "+7" not in text and "8 (916)" not in text, name


def test_photo_exif_is_gone_and_orientation_applied() -> None:
    letter = parse("gmail_photo_with_exif")
    (photo,) = letter.attachments
    assert photo.content_type == "image/jpeg" and photo.filename == "photo-1.jpg"
    image = Image.open(io.BytesIO(photo.data))
    assert image.format == "JPEG"
    assert image.size == (240, 320)  # EXIF orientation 6 applied to the pixels
    assert not image.getexif()
    assert b"Apple" not in photo.data and b"iPhone" not in photo.data
    assert "Smirnova" not in photo.filename


def test_png_and_gif_are_sniffed_and_reencoded() -> None:
    letter = parse("png_gif_and_signature_logo")
    assert [a.content_type for a in letter.attachments] == ["image/png", "image/gif"]
    assert [Image.open(io.BytesIO(a.data)).format for a in letter.attachments] == ["PNG", "GIF"]


def test_hostile_filename_does_not_survive() -> None:
    letter = parse("rfc2231_hostile_filename")
    assert letter.attachments[0].filename == "photo-1.jpg"


def test_subject_injection_stays_one_line() -> None:
    subject = parse("subject_encoded_newline_bcc").subject
    assert "\n" not in subject and "\r" not in subject
    assert subject == "Hi Bcc: x@evil.example"


def test_display_names_decode_without_inserted_spaces() -> None:
    assert parse("encoded_word_split_display_name").sender_name == "Орлова"
    assert parse("undeclared_8bit_subject_and_name").sender_name == "Мария Орлова"
    assert parse("undeclared_8bit_subject_and_name").subject == "Письмо Маше"


def test_reply_to_our_notice_carries_our_ids() -> None:
    letter = parse("reply_to_own_notice")
    assert letter.in_reply_to == ("notice-42@gw.example", "letter-7@example.org")


def test_dsn_has_a_null_return_path() -> None:
    assert parse("dsn_bounce_postfix").return_path == ""
    assert parse("plus_address_code").return_path == "pavel@example.org"


def test_recipients_include_plus_address() -> None:
    assert "letters+k105@gw.example" in parse("plus_address_code").recipients


def test_corpus_is_reproducible(tmp_path) -> None:
    """make_fixtures.py regenerates exactly the committed files."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_fixtures", CORPUS / "make_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, (_, build) in module.FIXTURES.items():
        assert build() == (CORPUS / f"{name}.eml").read_bytes(), name
