"""A scan from outside (a volunteer's phone photo, the PDF downloaded from the service's
account) is never passed on as it came: each page is decoded and drawn again as a plain
JPEG, so whatever else the file carried (scripts in a PDF, metadata with a location, a
polyglot) stays behind. Images through Pillow; PDFs rendered page by page with pypdfium2."""

from __future__ import annotations

import io
from dataclasses import dataclass

MAX_SIDE = 2400  # px: legible handwriting, a few hundred KB a page
MAX_PIXELS = 60_000_000  # a decompression bomb is refused, not drawn


@dataclass(frozen=True)
class ScanPage:
    content_type: str
    data: bytes


class UnsafeScan(ValueError):
    """The file is not a page we can redraw (not an image or PDF, broken, too large)."""


def reencode_scan(data: bytes, *, max_pages: int = 20) -> list[ScanPage]:
    if not data:
        raise UnsafeScan("the file is empty")
    if data[:5] == b"%PDF-":
        return _pdf(data, max_pages)
    return [_redraw(_open_image(data))]


def _open_image(data: bytes):
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        if image.format not in ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "MPO"):
            raise UnsafeScan(f"{image.format} is not a scan format we take")
        image.load()
        return ImageOps.exif_transpose(image)  # a phone photo stands the right way up
    except UnsafeScan:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not a page"
        raise UnsafeScan(f"not a readable image: {type(exc).__name__}") from None


def _redraw(image) -> ScanPage:
    image = image.convert("RGB")  # drops alpha, palettes and every metadata chunk
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, optimize=True)
    return ScanPage("image/jpeg", out.getvalue())


def _pdf(data: bytes, max_pages: int) -> list[ScanPage]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:  # noqa: BLE001
        raise UnsafeScan(f"not a readable PDF: {type(exc).__name__}") from None
    try:
        if len(pdf) == 0:
            raise UnsafeScan("the PDF has no pages")
        if len(pdf) > max_pages:
            raise UnsafeScan(f"the PDF has {len(pdf)} pages; at most {max_pages} are taken")
        pages = []
        for page in pdf:
            width, height = page.get_size()
            scale = min(2.0, MAX_SIDE / max(width, height, 1))
            pages.append(_redraw(page.render(scale=scale).to_pil()))
        return pages
    finally:
        pdf.close()
