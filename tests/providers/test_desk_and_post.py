"""The desk (a person types the letter into a service with no API) and the post (printed
batches), each through to a forwarded reply; the post's PDF read back with pypdf."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select

from gateway.human.desk import DeskError, desk_queue, record, split_pages, take
from gateway.human.post import PostError, build_batch, mark_posted, print_pages
from gateway.models import (
    Letter,
    LetterAttachment,
    OutboundMail,
    PostBatch,
    Reply,
)
from gateway.pipeline.outbox import send_pending
from gateway.pipeline.submission import submit_many
from gateway.providers.desk import DeskProvider
from gateway.providers.post import PostProvider
from gateway.providers.registry import open_provider
from gateway.replies.intake import read_reply_mail, store_upload
from gateway.states import LetterState as S

pytestmark = [pytest.mark.providers, pytest.mark.timeout(120)]

LONG = ("Здравствуйте, Иван! " + "Пишу вам длинное письмо о том, как живёт наш город, "
        "что мы читаем и о чём думаем, когда вспоминаем вас. " * 60).strip()
POEM = "Здравствуйте!\n\n" + "\n".join(f"Строка {i} — короткая, как в стихах" for i in range(1, 61))


def test_adapters_are_found_by_entry_point_and_describe_themselves(settings):
    desk, post = open_provider("desk", settings), open_provider("post", settings)
    assert isinstance(desk, DeskProvider) and isinstance(post, PostProvider)
    assert desk.assisted and post.assisted and not open_provider("http", settings).assisted
    assert desk.profile.page_chars == 2500 and desk.profile.page_price == Decimal("55.00")
    assert post.profile.page_price == Decimal("0.00")
    assert any(f.id == "77-sizo-2" and f.postal_address for f in post.facilities())


def test_split_pages_keeps_every_character_and_whole_words():
    pages = split_pages(LONG, 2500)
    assert "".join(pages) == LONG
    exact = -(-len(LONG) // 2500)
    assert len(pages) in (exact, exact + 1)  # cutting between words may need one more
    assert all(len(p) <= 2500 for p in pages)
    assert all(p.endswith(" ") for p in pages[:-1])  # cut between words
    assert split_pages("") == ("",)


def test_desk_flow_from_ready_to_a_forwarded_reply(sessions, settings, policy, letters, sink):
    [letter_id] = letters(1, code="K101", provider="desk", body=LONG)
    with sessions() as session:
        session.add(LetterAttachment(letter_id=letter_id, filename="cat.jpg",
                                     content_type="image/jpeg", data=b"\xff\xd8\xff" + b"0" * 97))
        session.commit()
    desk = open_provider("desk", settings)
    result = submit_many(sessions, desk, [letter_id], settings, policy)
    assert result.desk == [letter_id]
    with sessions() as session:
        assert session.get(Letter, letter_id).state == S.DESK
        [task] = desk_queue(session, settings)
    fields = {f.key: f.value for f in task.fields}
    assert fields == {
        "region": "Санкт-Петербург и Ленинградская область", "facility": "СИЗО-1 «Кресты»",
        "last_name": "Иванов", "first_name": "Иван", "middle_name": "Иванович",
        "birth_year": "1985", "author_name": "Анна", "author_phone": settings.org_phone,
        "author_email": settings.org_reply_email, "author_email2": settings.org_reply_email}
    assert [f.label for f in task.fields][:6] == ["Регион", "Учреждение", "Фамилия", "Имя",
                                                   "Отчество", "Год рождения"]
    assert len(task.pages) >= 3 and all(len(p) <= 2500 for p in task.pages)
    assert "Пишу вам длинное письмо" in task.text
    assert [(p.filename, p.size) for p in task.photos] == [("cat.jpg", 100)]
    assert task.reply_form is True
    # The volunteer takes it, types it in and records what the service gave.
    with sessions() as session:
        with pytest.raises(DeskError):  # not taken yet
            record(session, settings, letter_id, "olga", "FP-2026-555001", None)
        assert take(session, settings, "olga").id == letter_id
        assert take(session, settings, "ivan") is None  # nobody else types it meanwhile
        with pytest.raises(DeskError):
            record(session, settings, letter_id, "olga", "  ", None)
        mail = record(session, settings, letter_id, "olga", "FP-2026-555001", Decimal("220.00"))
        session.commit()
        letter = session.get(Letter, letter_id)
        assert letter.state == S.SUBMITTED and letter.provider_number == "FP-2026-555001"
        assert letter.price == Decimal("220.00") and letter.events[-1].actor == "olga"
        assert len(mail) == 1 and desk_queue(session, settings) == []
        with pytest.raises(DeskError):  # a second organizer, a moment later
            record(session, settings, letter_id, "ivan", "FP-2026-555001", None)
    # The service e-mails the scan of the reply to the organization's mailbox.
    scan = EmailMessage_scan("FP-2026-555001")
    number, pages, external_id = read_reply_mail(scan)
    assert number == "FP-2026-555001" and len(pages) == 1
    from gateway.replies.intake import _store
    with sessions() as session:
        _reply, mail = _store(session, settings, source="email", external_id=external_id,
                              letter_number=number, pages=pages)
        session.commit()
        assert session.scalar(select(Reply.state)) == "FORWARDED"
    counts = send_pending(sessions, settings, mail)
    assert counts["sent"] == 1
    [forward] = [m for m in sink.messages if "anna@example.org" in m.rcpt_tos]
    assert [p.get_content_type() for p in forward.message.iter_attachments()] == ["image/jpeg"]


def EmailMessage_scan(number: str) -> bytes:
    from email.message import EmailMessage

    buf = io.BytesIO()
    Image.new("L", (40, 60), 255).save(buf, "JPEG")
    msg = EmailMessage()
    msg["From"] = "noreply@fsin-pismo.example"
    msg["To"] = "replies@gateway.local"
    msg["Subject"] = f"Ответ на письмо № {number}"
    msg["Message-ID"] = "<scan-1@fsin-pismo.example>"
    msg.set_content(f"Здравствуйте!\n\nОтвет на письмо № {number}.\n")
    msg.add_attachment(buf.getvalue(), maintype="image", subtype="jpeg", filename="1.jpg")
    return bytes(msg)


def test_post_batch_pdf_renders_cyrillic_with_the_right_page_count(
        sessions, settings, policy, letters):
    short = letters(1, code="K102", provider="post")[0]
    long_ = letters(1, code="K102", provider="post", body=LONG)[0]
    poem = letters(1, code="K102", provider="post", body=POEM)[0]  # short lines
    other = letters(1, code="K104", provider="post")[0]  # another facility, another batch
    post = open_provider("post", settings)
    assert submit_many(sessions, post, [short, long_, poem, other], settings, policy).desk == \
        [short, long_, poem, other]
    with sessions() as session:
        long_pages = len(split_pages(session.get(Letter, long_).rendered, 2500))
        assert len(print_pages(session.get(Letter, long_).rendered)) == long_pages
        poem_pages = len(print_pages(session.get(Letter, poem).rendered))
        assert poem_pages > len(split_pages(session.get(Letter, poem).rendered)) == 1
        batch = build_batch(session, "77-sizo-2", "volunteer", settings)
        session.commit()
        batch_id, pdf = batch.id, batch.pdf
        with pytest.raises(PostError):  # nothing left for that facility
            build_batch(session, "77-sizo-2", "volunteer", settings)
    reader = PdfReader(io.BytesIO(pdf))
    # A cover sheet, the short letter on one page, the long one on one page per 2,500 chars.
    assert long_pages >= 3
    assert len(reader.pages) == 1 + 1 + long_pages + poem_pages == batch.pages
    text = [page.extract_text() for page in reader.pages]
    assert "Партия писем" in text[0] and f"POST-{batch_id}-1" in text[0]
    assert "Петрова Мария Сергеевна, 1992 г. р." in text[1]
    assert "ФКУ СИЗО-2 УФСИН России" in text[1] and "Москве" in text[1]
    assert "Стр. 1 из 1" in text[1] and f"POST-{batch_id}-1" in text[1]
    assert f"Стр. 1 из {long_pages}" in text[2]
    assert f"Стр. {long_pages} из {long_pages}" in text[1 + long_pages]
    assert f"Стр. {poem_pages} из {poem_pages}" in text[-1] and "Строка 60" in text[-1]
    assert "Пишу вам длинное письмо" in text[3]
    fonts = {str(f.get("/BaseFont")) for page in reader.pages
             for f in page["/Resources"]["/Font"].values()}
    assert fonts and all("DejaVu" in f for f in fonts), fonts
    # Posted: both letters SUBMITTED with the printed numbers; marking again changes nothing.
    with sessions() as session:
        mail = mark_posted(session, batch_id, "volunteer", settings)
        session.commit()
        assert len(mail) == 3
        numbers = {le.id: (le.state, le.provider_number) for le in session.scalars(
            select(Letter).where(Letter.id.in_([short, long_, poem])))}
        assert numbers == {short: (S.SUBMITTED, f"POST-{batch_id}-1"),
                           long_: (S.SUBMITTED, f"POST-{batch_id}-2"),
                           poem: (S.SUBMITTED, f"POST-{batch_id}-3")}
        assert session.get(PostBatch, batch_id).state == "POSTED"
        assert mark_posted(session, batch_id, "volunteer", settings) == []
        assert session.get(Letter, other).state == S.DESK
        # The prisoner answers by post; a volunteer uploads the scan with the number on it.
        reply, mail = store_upload(session, settings, pages=[("application/pdf", pdf)],
                                   letter_number=f"POST-{batch_id}-2", uploaded_by="volunteer")
        session.commit()
        assert reply.state == "FORWARDED" and reply.letter_id == long_
        assert session.scalar(select(OutboundMail.kind).where(OutboundMail.id == mail[0])) == \
            "reply"


def test_a_volunteers_damaged_scan_is_refused_though_weasyprint_told_pillow_to_accept_it():
    """weasyprint (the post's PDFs, loaded in this process) sets Pillow's
    LOAD_TRUNCATED_IMAGES for the whole process; the desk's uploads are redrawn in the
    limited child, which never loads it, so a truncated image is still refused."""
    import weasyprint  # noqa: F401
    from PIL import ImageFile

    from gateway.human.scans import ScanError, redraw
    assert ImageFile.LOAD_TRUNCATED_IMAGES
    out = io.BytesIO()
    Image.new("RGB", (600, 800), "white").save(out, "PNG")
    with pytest.raises(ScanError, match="file 1: .*damaged image"):
        redraw([out.getvalue()[:200]])
    [(kind, page)] = redraw([out.getvalue()])
    assert kind == "image/jpeg" and page[:3] == b"\xff\xd8\xff"
