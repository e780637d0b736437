"""A scan reaches a writer only as pixels we drew ourselves.

Whoever hands us a "scan" (the provider, a service's e-mail, a volunteer's upload) may hand
us a tracking beacon: an HTML page, a PDF that calls home when opened, an image carrying
metadata. So the bytes decide what a file is (never the declared type), and every page is
re-encoded: images through Pillow without metadata, PDFs rendered to images by pdfium.
What comes out is plain JPEG; anything else raises UnsafeScan with a reason for a person.
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import threading
from dataclasses import dataclass

import puremagic
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

DEFAULT_MAX_PAGES = 20
MAX_PIXELS = 40_000_000  # one page; an A4 page at 600 dpi is ~35 M
RENDER_DPI = 150  # PDF pages: legible handwriting, a few hundred KB a page
JPEG_QUALITY = 85
IMAGE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "GIF", "BMP")

# pdfium is not thread-safe; the dashboard renders uploads from several threads.
_PDFIUM = threading.Lock()


class UnsafeScan(ValueError):
    """Not a scan we can pass on; `reason` is for the person who looks at it in triage."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ScanPage:
    data: bytes
    content_type: str
    filename: str


def _is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(b"%PDF-")


def _looks_like(data: bytes) -> str:
    """A name for what the bytes are, for the person in triage (puremagic's guess)."""
    try:
        return puremagic.magic_string(data[:8192])[0].name
    except (puremagic.PureError, IndexError, ValueError):
        return "unknown data"


def reencode_scan(data: bytes, *, max_pages: int = DEFAULT_MAX_PAGES) -> list[ScanPage]:
    """The scan as freshly encoded JPEG pages, or UnsafeScan(reason)."""
    if not data:
        raise UnsafeScan("the file is empty")
    # Pillow and pdfium recognise their formats by the bytes; the declared type is unused.
    images = _render_pdf(data, max_pages) if _is_pdf(data) else _read_image(data, max_pages)
    return [ScanPage(_jpeg(image), "image/jpeg", f"page-{n}.jpg")
            for n, image in enumerate(images, start=1)]


def _read_image(data: bytes, max_pages: int) -> list[Image.Image]:
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            frames = []
            for n, frame in enumerate(ImageSequence.Iterator(image), start=1):
                if n > max_pages:
                    raise UnsafeScan(f"more than {max_pages} pages")
                _check_size(frame.size)
                frame.load()
                # Upright as the scanner meant it, then the metadata is left behind.
                frames.append(_plain(ImageOps.exif_transpose(frame)))
                if image.format in ("GIF", "WEBP"):
                    break  # an animation is not pages: its first frame is the picture
            return frames
    except UnsafeScan:
        raise
    except UnidentifiedImageError as exc:
        raise UnsafeScan(f"not an image or a PDF (it looks like: {_looks_like(data)})") from exc
    except Image.DecompressionBombError as exc:
        raise UnsafeScan(f"an image that cannot be read safely ({exc})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt
        raise UnsafeScan(f"a damaged image ({type(exc).__name__})") from exc


def _render_pdf(data: bytes, max_pages: int) -> list[Image.Image]:
    import pypdfium2 as pdfium  # only here: the parse workers never need it

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise UnsafeScan(f"a PDF that cannot be opened ({exc})") from exc
        try:
            if len(pdf) == 0:
                raise UnsafeScan("a PDF without pages")
            if len(pdf) > max_pages:
                raise UnsafeScan(f"a PDF of {len(pdf)} pages (at most {max_pages})")
            images = []
            for page in pdf:
                width, height = page.get_size()  # points
                scale = RENDER_DPI / 72
                if width * height * scale * scale > MAX_PIXELS:
                    scale = (MAX_PIXELS / (width * height)) ** 0.5
                # Only what the page shows: no forms, no annotations (links, actions).
                bitmap = page.render(scale=scale, may_draw_forms=False, draw_annots=False)
                images.append(_plain(bitmap.to_pil()))
                page.close()
            return images
        except pdfium.PdfiumError as exc:
            raise UnsafeScan(f"a PDF that cannot be rendered ({exc})") from exc
        finally:
            pdf.close()


def _check_size(size: tuple[int, int]) -> None:
    if size[0] * size[1] > MAX_PIXELS or min(size) < 1:
        raise UnsafeScan(f"an image of {size[0]}x{size[1]} pixels is not a page")


def _plain(image: Image.Image) -> Image.Image:
    """Pixels only, in a mode JPEG takes: no palette, no alpha (flattened on white)."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("L" if image.mode in ("1", "L", "I;16", "I", "F") else "RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # A new file from the pixels: Pillow would carry EXIF, XMP, ICC profile and comments
    # over from `info`, so that goes first.
    image.info = {}
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


# -- the same, in a throwaway process -------------------------------------------------
# pdfium and Pillow's decoders are C code fed hostile bytes. In the worker, a scan that
# exhausts memory or crashes would take the worker down, and the reply poll would meet the
# same scan again after every restart. In a fresh interpreter with a memory limit and a
# wall time, such a scan is just refused.
ISOLATED_MEMORY_BYTES = 1024 * 1024 * 1024
ISOLATED_TIMEOUT_S = 60.0
_CHILD = "from gateway.replies.scan_safety import _child_main; _child_main()"


def reencode_scan_isolated(data: bytes, *, max_pages: int = DEFAULT_MAX_PAGES,
                           memory_bytes: int = ISOLATED_MEMORY_BYTES,
                           timeout_s: float = ISOLATED_TIMEOUT_S) -> list[ScanPage]:
    """reencode_scan in a child process: the same answer, or UnsafeScan when the child
    runs out of memory or time or dies. Its answer is a JSON line and the pages' bytes
    (no pickle: the child has just handled hostile input)."""
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(max_pages), str(memory_bytes)],
                              input=data, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise UnsafeScan(f"the scan took longer than {timeout_s:.0f} s to read") from exc
    head, _, body = done.stdout.partition(b"\n")
    try:
        answer = json.loads(head)
    except ValueError:
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        raise UnsafeScan(f"reading the scan failed within the limits (exit {done.returncode})")
    if not answer.get("ok"):
        raise UnsafeScan(str(answer.get("reason", "refused")))
    pages, offset = [], 0
    for n, size in enumerate(answer["sizes"], start=1):
        page = body[offset:offset + size]
        offset += size
        if not page.startswith(b"\xff\xd8\xff"):
            raise UnsafeScan("the scan reader returned something that is not a JPEG")
        pages.append(ScanPage(page, "image/jpeg", f"page-{n}.jpg"))
    return pages


def _child_main() -> None:
    max_pages, memory = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    data = sys.stdin.buffer.read()
    out = sys.stdout.buffer
    try:
        pages = reencode_scan(data, max_pages=max_pages)
    except UnsafeScan as exc:
        out.write(json.dumps({"ok": False, "reason": exc.reason}).encode() + b"\n")
        return
    except MemoryError:
        out.write(json.dumps({"ok": False, "reason": "the scan needs more memory than a "
                                                    "page may take"}).encode() + b"\n")
        return
    out.write(json.dumps({"ok": True, "sizes": [len(p.data) for p in pages]}).encode() + b"\n")
    for page in pages:
        out.write(page.data)
