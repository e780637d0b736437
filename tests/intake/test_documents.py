"""Letters in attached documents (gateway/mail/documents.py): the format is told by the bytes,
not the name; damaged, encrypted, textless and zip-bomb files are refused with a reason the
writer can act on (Russian and English), never a crash."""

from __future__ import annotations

import io
import zipfile

import pytest
from pypdf import PdfWriter

from gateway.mail.documents import Document, Unreadable, kind_of, read_document
from tests.fixtures.mail.make_fixtures import docx_bytes, odt_bytes, pdf_bytes

pytestmark = pytest.mark.intake

TEXT = ["Мария, здравствуйте!", "Мы вас ждём."]


@pytest.mark.parametrize(("data", "kind"), [
    (docx_bytes(TEXT), "docx"), (odt_bytes(TEXT), "odt"), (pdf_bytes(["Dear Oleg,"]), "pdf"),
])
def test_the_format_is_told_by_the_bytes_not_the_name(data, kind) -> None:
    assert kind_of(data, "application/octet-stream", "photo.jpg") == kind
    read = read_document(data, kind)
    assert isinstance(read, Document) and ("Мария" in read.text or "Dear Oleg" in read.text)


def test_a_plain_zip_or_binary_is_not_a_document() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("a.txt", "x")
    assert kind_of(out.getvalue(), "application/zip", "letter.docx") is None
    assert kind_of(b"MZ\x90\x00\x00binary", "text/plain", "letter.txt") is None


def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<" + b" " * (60 * 1024 * 1024) + b"/>")
    data = out.getvalue()
    assert len(data) < 1024 * 1024 and kind_of(data, "", None) == "docx"
    read = read_document(data, "docx")
    assert isinstance(read, Unreadable) and "unpacks" in read.reason_en and read.reason_ru


def test_an_encrypted_pdf_and_a_scan_are_explained() -> None:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt("secret")
    out = io.BytesIO()
    writer.write(out)
    encrypted = read_document(out.getvalue(), "pdf")
    assert isinstance(encrypted, Unreadable) and "password" in encrypted.reason_en
    assert "паролем" in encrypted.reason_ru
    scan = read_document(pdf_bytes([]), "pdf")
    assert isinstance(scan, Unreadable) and "скан" in scan.reason_ru


def test_a_damaged_document_is_explained_not_raised() -> None:
    damaged = docx_bytes(TEXT)[:400]
    read = read_document(b"%PDF-1.4\n garbage", "pdf")
    assert isinstance(read, Unreadable) and "damaged" in read.reason_en
    assert kind_of(damaged, "", None) is None  # a cut zip is not recognised at all
