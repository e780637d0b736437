"""reencode_scan: the bytes decide what a scan is, and only fresh JPEG pages come out."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from PIL import Image

from gateway.replies.scan_safety import ScanPage, UnsafeScan, reencode_scan
from tests.privacy.hostile import pdf_with_remote_references

pytestmark = pytest.mark.privacy


@pytest.fixture(autouse=True)
def _pillow_as_in_the_reader_child(monkeypatch):
    # reencode_scan runs in the reader child, which refuses truncated images whatever was
    # imported (serve_fd); in this test process weasyprint may have been loaded by an
    # earlier test and told Pillow to accept them.
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)


def _image(fmt: str, mode: str = "RGB", size=(600, 800), **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, "white").save(out, fmt, **save)
    return out.getvalue()


def _pdf(pages: int) -> bytes:
    pdf = pdfium.PdfDocument.new()
    for _ in range(pages):
        pdf.new_page(595, 842)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


@pytest.mark.parametrize("data", [
    _image("PNG", "RGBA"), _image("PNG", "P"), _image("JPEG", "L"), _image("WEBP"),
    _image("GIF", "P"), _image("BMP"), _image("TIFF", "1"),
], ids=["png-alpha", "png-palette", "jpeg-grey", "webp", "gif", "bmp", "tiff-bilevel"])
def test_every_image_kind_comes_out_as_a_plain_jpeg(data):
    [page] = reencode_scan(data)
    assert isinstance(page, ScanPage) and page.content_type == "image/jpeg"
    assert page.filename == "page-1.jpg"
    image = Image.open(io.BytesIO(page.data))
    assert image.format == "JPEG" and image.size == (600, 800) and not image.info.get("exif")


def test_a_multipage_tiff_and_a_pdf_give_one_jpeg_a_page():
    frames = [Image.new("L", (300, 400), c) for c in (0, 128, 255)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    assert [p.filename for p in reencode_scan(out.getvalue())] == [
        "page-1.jpg", "page-2.jpg", "page-3.jpg"]
    pages = reencode_scan(_pdf(2))
    assert len(pages) == 2 and all(p.data[:3] == b"\xff\xd8\xff" for p in pages)
    width, height = Image.open(io.BytesIO(pages[0].data)).size
    assert (width, abs(height - 1754) <= 1) == (1240, True)  # A4 at 150 dpi


def test_each_page_of_several_keeps_its_own_pixels_and_a_sideways_photo_is_turned():
    """A single page is turned in place (no copy: the reader's peak memory); pages of a
    multi-page file are copies, since the file's next page reuses the same image."""
    from PIL import ImageStat
    frames = [Image.new("L", (300, 400), c) for c in (0, 128, 255)]
    out = io.BytesIO()
    frames[0].save(out, "TIFF", save_all=True, append_images=frames[1:])
    means = [round(ImageStat.Stat(Image.open(io.BytesIO(p.data))).mean[0])
             for p in reencode_scan(out.getvalue())]
    assert [abs(m - c) <= 2 for m, c in zip(means, (0, 128, 255), strict=True)] == [True] * 3
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the phone was held sideways
    [page] = reencode_scan(_image("JPEG", size=(800, 600), exif=exif.tobytes()))
    upright = Image.open(io.BytesIO(page.data))
    assert upright.size == (600, 800) and not upright.info.get("exif")


def test_a_pdf_link_is_not_in_the_rendered_page():
    [page] = reencode_scan(pdf_with_remote_references("http://127.0.0.1:9/beacon"))
    assert b"beacon" not in page.data and b"/URI" not in page.data


@pytest.mark.parametrize("data,reason", [
    (b"", "empty"),
    (b"<!DOCTYPE html><html><img src=http://t.example/x></html>", "looks like: HTML"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><image href='http://t/'/></svg>", "Vector"),
    (b"MZ\x90\x00 an executable", "Windows Executable"),
    (b"plain words", "unknown data"),
    (b"%PDF-1.4 broken", "PDF that cannot be opened"),
    (_image("PNG")[:200], "damaged image"),
])
def test_what_is_not_a_scan_is_refused_with_a_reason(data, reason):
    with pytest.raises(UnsafeScan, match=reason):
        reencode_scan(data)


def test_too_many_pages_and_too_many_pixels_are_refused():
    with pytest.raises(UnsafeScan, match="3 pages"):
        reencode_scan(_pdf(3), max_pages=2)
    huge = _image("PNG", "1", size=(10_000, 10_000))  # 100 M pixels in a few kB
    with pytest.raises(UnsafeScan, match="pixels"):
        reencode_scan(huge)


def test_the_isolated_reader_gives_the_same_pages_or_refuses_within_its_limits():
    from gateway.replies.scan_safety import reencode_scan_isolated
    pdf = _pdf(2)
    assert reencode_scan_isolated(pdf) == reencode_scan(pdf)
    with pytest.raises(UnsafeScan, match="looks like: HTML"):
        reencode_scan_isolated(b"<!DOCTYPE html><html></html>")
    # A scan that needs more memory than allowed costs the child, not the worker.
    with pytest.raises(UnsafeScan, match="memory|limits"):
        reencode_scan_isolated(pdf, memory_bytes=64 * 1024 * 1024)
