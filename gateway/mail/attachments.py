"""Attachments: what a file really is (from its bytes), photos re-encoded without metadata.

Only photos travel: JPEG, PNG and GIF, sniffed with Pillow (never by the declared type or the
file name), checked for size before decoding (decompression bombs), re-encoded from pixels so
EXIF (GPS, camera serial), XMP, ICC comments and anything appended after the image end (JPEG/ZIP
polyglots) are gone. Carried photos get neutral names (``photo-1.jpg``): a file name can name
its sender. Everything else is declined with a reason the writer can act on.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import puremagic
from PIL import Image, ImageOps, UnidentifiedImageError

from gateway.mail.senders import clean_header_text

_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "GIF": ("image/gif", "gif")}
MIN_PHOTO_SIDE = 48  # smaller images are logos, icons and tracking pixels


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # sniffed from bytes, not declared
    data: bytes  # photos re-encoded by Pillow with EXIF removed


@dataclass(frozen=True)
class Declined:
    filename: str
    reason: str


def safe_filename(name: str | None, index: int) -> str:
    """A file name fit to show to a person: no path, no controls, no bidi overrides."""
    name = clean_header_text(name or "", limit=120)
    name = re.split(r"[\\/]", name)[-1].strip(". ")
    return name or f"part-{index}"


def describe(data: bytes) -> str:
    """A human name for what the bytes are, for a decline reason."""
    if not data:
        return "an empty file"
    try:
        match = puremagic.magic_string(data[:8192])
    except Exception:
        match = []
    if match:
        # Matches are ranked by confidence; a long obscure signature can outrank a generic
        # one, so the best match that names a MIME type reads better ("Windows Executable").
        best = next((m for m in match if m.mime_type), match[0])
        return best.name or best.mime_type or f"a {best.extension} file"
    return "an unrecognised file"


def carry(filename: str | None, data: bytes, index: int, *, max_bytes: int,
          max_pixels: int) -> Attachment | Declined:
    """Re-encode a photo, or say why the file cannot be carried."""
    shown = safe_filename(filename, index)
    if not data:
        return Declined(shown, "the file is empty")
    if len(data) > max_bytes:
        return Declined(shown, f"the file is larger than {max_bytes // 1_000_000} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            fmt = image.format
            width, height = image.size
            if fmt not in _FORMATS:
                return Declined(shown, f"only JPEG, PNG and GIF photos can be sent; this is a {fmt} image")
            if width * height > max_pixels:
                return Declined(shown, f"the picture is too large ({width}×{height} pixels)")
            if min(width, height) < MIN_PHOTO_SIDE:
                return Declined(shown, "the picture is too small to be a photo (an icon or a logo)")
            image.load()
            clean = _reencode(image, fmt)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Declined(shown, f"only photos (JPEG, PNG, GIF) can be sent; this is {describe(data)}")
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        return Declined(shown, f"the picture is damaged and cannot be read ({type(exc).__name__})")
    ctype, ext = _FORMATS[fmt]
    return Attachment(f"photo-{index}.{ext}", ctype, clean)


def _reencode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        # Apply the EXIF orientation to the pixels before the EXIF is dropped.
        image = ImageOps.exif_transpose(image)
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        pixels = Image.new(image.mode, image.size)
        pixels.paste(image)
        pixels.save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
        pixels = Image.new(image.mode, image.size)
        if image.mode == "P":
            pixels.putpalette(image.getpalette() or [])
        pixels.paste(image)
        pixels.save(out, "PNG", optimize=True)
    else:  # GIF: the first frame only; an animation is not a photo on paper
        image.seek(0)
        frame = image.convert("RGB")
        pixels = Image.new("RGB", frame.size)
        pixels.paste(frame)
        pixels.save(out, "GIF")
    return out.getvalue()
