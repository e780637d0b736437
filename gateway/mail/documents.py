"""The letter in an attached document: text from .docx (python-docx), .odt (odfpy), .pdf
(pypdf) and .txt, for the writer whose mail says only "the letter is in the attachment".

The format is told by the bytes, never the file name. Reading runs inside the bounded parser
(its wall-time and memory limits); before a library sees a file its size, and for the zip
based formats the unpacked size, are checked here (zip bombs). Only text is taken: no
images, no metadata (a document's author field names its writer).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from gateway.mail.charsets import decode_text

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
MAX_UNPACKED_BYTES = 40 * 1024 * 1024
MAX_PDF_PAGES = 40
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"

# A cover note that points at the attachment ("Письмо во вложении", "see attached").
COVER_NOTE = re.compile(
    r"(во\s+вложени|в\s+приложени|вложени[еи]|приложени[еи]|приложенн|прикреплен|прикладыва|"
    r"в\s+файле|см\.?\s+файл|attach|enclosed)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Document:
    text: str


@dataclass(frozen=True)
class Unreadable:
    reason_en: str
    reason_ru: str


def kind_of(data: bytes, declared: str, filename: str | None) -> str | None:
    """"pdf", "docx", "odt", "txt", or None for anything else."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
                if "word/document.xml" in names:
                    return "docx"
                if "mimetype" in names and archive.read("mimetype").strip() == ODT_MIMETYPE:
                    return "odt"
        except (zipfile.BadZipFile, OSError, KeyError, ValueError):
            return None
        return None
    name = (filename or "").lower()
    if (declared == "text/plain" or name.endswith(".txt")) and b"\x00" not in data[:4096]:
        return "txt"
    return None


def read_document(data: bytes, kind: str) -> Document | Unreadable:
    if len(data) > MAX_DOCUMENT_BYTES:
        return Unreadable(f"the document is larger than {MAX_DOCUMENT_BYTES // 1_000_000} MB",
                          f"файл больше {MAX_DOCUMENT_BYTES // 1_000_000} МБ")
    try:
        if kind in ("docx", "odt") and not _small_when_unpacked(data):
            return Unreadable("the document unpacks to too much data",
                              "файл после распаковки слишком велик")
        text = {"pdf": _pdf, "docx": _docx, "odt": _odt, "txt": _txt}[kind](data)
    except _Encrypted:
        return Unreadable("the PDF is protected with a password",
                          "PDF-файл защищён паролем")
    except Exception as exc:  # damaged files make every library raise its own errors
        return Unreadable(f"the {kind} file is damaged ({type(exc).__name__})",
                          "файл повреждён, его не удалось открыть")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text:
        if kind == "pdf":
            return Unreadable("the PDF holds no text (a scan or a picture)",
                              "в PDF нет текста — это скан или картинка")
        return Unreadable("the document is empty", "файл пустой")
    return Document(text)


class _Encrypted(Exception):
    pass


def _small_when_unpacked(data: bytes) -> bool:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        return len(infos) <= 2000 and sum(i.file_size for i in infos) <= MAX_UNPACKED_BYTES


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise _Encrypted
    pages = reader.pages[:MAX_PDF_PAGES]
    return "\n\n".join((page.extract_text() or "").strip() for page in pages)


def _docx(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    return "\n".join(paragraph.text for paragraph in document.paragraphs)


def _odt(data: bytes) -> str:
    from odf import teletype, text
    from odf.opendocument import load

    document = load(io.BytesIO(data))
    blocks = {(text.P().qname), text.H(outlinelevel=1).qname}
    lines: list[str] = []

    def walk(node) -> None:  # paragraphs and headings, in document order
        for child in node.childNodes:
            if child.qname in blocks:
                lines.append(teletype.extractText(child))
            else:
                walk(child)

    walk(document.text)
    return "\n".join(lines)


def _txt(data: bytes) -> str:
    return decode_text(data, None).text
