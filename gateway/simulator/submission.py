"""Validating a submitted letter and pricing it, as the service's web form would."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from .catalogue import Catalogue
from .money import Kopecks

PAGE_CHARS = 2500
PAGE_PRICE: Kopecks = 5500
REPLY_FORM_PRICE: Kopecks = 5500
PHOTO_PRICE: Kopecks = 3500
MAX_PHOTO_BYTES = 5 * 1024 * 1024

# The bytes a photo must start with, by declared type: a renamed PDF is not a photo.
PHOTO_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


class ValidationFailed(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class PhotoInfo:
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class LetterDraft:
    facility_id: str
    recipient: dict
    author: dict
    text: str
    photos: tuple[PhotoInfo, ...]
    reply_ordered: bool
    client_ref: str | None
    pages: int
    price: Kopecks


def pages_for(text: str) -> int:
    """`len` counts code points, spaces and newlines included; an empty text is one page."""
    return max(1, math.ceil(len(text) / PAGE_CHARS))


def price_for(pages: int, photos: int, reply_ordered: bool) -> Kopecks:
    return pages * PAGE_PRICE + photos * PHOTO_PRICE + (REPLY_FORM_PRICE if reply_ordered else 0)


def payload_fingerprint(body: object) -> str:
    """Same JSON value, same fingerprint, however the client ordered or spaced it."""
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def validate_letter(body: object, catalogue: Catalogue) -> LetterDraft:
    if not isinstance(body, dict):
        raise ValidationFailed({"body": "must be a JSON object"})
    errors: dict[str, str] = {}

    facility = None
    facility_id = body.get("facility_id")
    if not isinstance(facility_id, str) or not facility_id:
        errors["facility_id"] = "required"
    else:
        facility = catalogue.get(facility_id)
        if facility is None:
            errors["facility_id"] = f"unknown facility {facility_id!r}"

    recipient = body.get("recipient")
    if not isinstance(recipient, dict):
        errors["recipient"] = "required object"
        recipient = {}
    else:
        for name in ("last_name", "first_name"):
            if not _nonblank(recipient.get(name)):
                errors[f"recipient.{name}"] = "required"
        middle = recipient.get("middle_name")
        if middle is not None and not isinstance(middle, str):
            errors["recipient.middle_name"] = "must be a string or null"
        year = recipient.get("birth_year")
        this_year = datetime.now(UTC).year
        if isinstance(year, bool) or not isinstance(year, int):
            errors["recipient.birth_year"] = "required integer"
        elif not 1900 <= year <= this_year - 14:
            errors["recipient.birth_year"] = f"must be between 1900 and {this_year - 14}"

    author = body.get("author")
    if not isinstance(author, dict):
        errors["author"] = "required object"
        author = {}
    else:
        if not _nonblank(author.get("name")):
            errors["author.name"] = "required"
        email = author.get("email")
        if not isinstance(email, str) or "@" not in email.strip("@"):
            errors["author.email"] = "required e-mail address"
        phone = author.get("phone")
        if phone is not None and not isinstance(phone, str):
            errors["author.phone"] = "must be a string"

    text = body.get("text")
    pages = 1
    if not isinstance(text, str):
        errors["text"] = "required string"
        text = ""
    else:
        pages = pages_for(text)
        if facility is not None and facility.max_pages is not None and pages > facility.max_pages:
            errors["text"] = (
                f"{pages} pages, the facility accepts at most {facility.max_pages}"
                f" ({PAGE_CHARS} characters a page)"
            )

    photos = _photos(body.get("photos"), facility.photo_limit if facility else None, errors)

    reply_ordered = body.get("reply_ordered", False)
    if not isinstance(reply_ordered, bool):
        errors["reply_ordered"] = "must be a boolean"
        reply_ordered = False

    client_ref = body.get("client_ref")
    if client_ref is not None and not isinstance(client_ref, str):
        errors["client_ref"] = "must be a string"

    if errors:
        raise ValidationFailed(errors)
    assert facility is not None
    return LetterDraft(
        facility_id=facility.id,
        recipient=recipient,
        author=author,
        text=text,
        photos=photos,
        reply_ordered=reply_ordered,
        client_ref=client_ref,
        pages=pages,
        price=price_for(pages, len(photos), reply_ordered),
    )


def _nonblank(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _photos(raw: object, limit: int | None, errors: dict[str, str]) -> tuple[PhotoInfo, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors["photos"] = "must be a list"
        return ()
    if limit is not None and len(raw) > limit:
        errors["photos"] = (
            "the facility accepts no photos" if limit == 0 else f"at most {limit} photos"
        )
    infos: list[PhotoInfo] = []
    for i, photo in enumerate(raw):
        key = f"photos[{i}]"
        if not isinstance(photo, dict):
            errors[key] = "must be an object"
            continue
        content_type = photo.get("content_type")
        if content_type not in PHOTO_SIGNATURES:
            errors[f"{key}.content_type"] = "must be image/jpeg, image/png or image/gif"
            continue
        try:
            data = base64.b64decode(photo.get("data") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            errors[f"{key}.data"] = "must be base64"
            continue
        if not data:
            errors[f"{key}.data"] = "empty"
        elif len(data) > MAX_PHOTO_BYTES:
            errors[f"{key}.data"] = f"{len(data)} bytes, at most {MAX_PHOTO_BYTES}"
        elif not data.startswith(PHOTO_SIGNATURES[content_type]):
            errors[f"{key}.data"] = f"the bytes are not {content_type}"
        else:
            infos.append(
                PhotoInfo(
                    filename=str(photo.get("filename") or f"photo-{i + 1}"),
                    content_type=content_type,
                    size=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
            )
    return tuple(infos)
