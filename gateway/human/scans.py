"""Scans a volunteer brings back: the pages downloaded from the service's account (a PDF)
or photographed with a phone (the post's handwritten replies). Every page is redrawn
(replies/scan_safety.py) before it is stored, and then the reply takes the same road as
one from the reply mailbox: matched by the letter number it carries and forwarded to the
writer once (the outbox's dedup key), or, found by a search, left for a person to confirm
in the replies triage (two organizers when GATEWAY_REPLY_MATCH_CONFIRMATIONS=2)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.models import Letter, Reply
from gateway.replies.intake import store_upload
from gateway.replies.scan_safety import UnsafeScan, reencode_scan_isolated
from gateway.states import ReplyState as RS

MAX_FILES = 20
MAX_PAGES = 30


class ScanError(ValueError):
    pass


def redraw(files: list[bytes]) -> list[tuple[str, bytes]]:
    files = [f for f in files if f]
    if not files:
        raise ScanError("choose at least one page (a photo or the PDF from the account)")
    if len(files) > MAX_FILES:
        raise ScanError(f"at most {MAX_FILES} files at once")
    pages: list[tuple[str, bytes]] = []
    for n, data in enumerate(files, start=1):
        try:
            # In the limited child, as the provider's scans are: a volunteer's file comes from
            # outside too, and in this process weasyprint (the post's PDFs) has told Pillow
            # to accept truncated images.
            pages += [(p.content_type, p.data)
                      for p in reencode_scan_isolated(data, max_pages=MAX_PAGES)]
        except UnsafeScan as exc:
            raise ScanError(f"file {n}: {exc}") from None
    if len(pages) > MAX_PAGES:
        raise ScanError(f"at most {MAX_PAGES} pages a reply")
    return pages


def upload(session: Session, settings, files: list[bytes], volunteer: str, *,
           number: str | None = None, letter: Letter | None = None) -> tuple[Reply | None, list[int]]:
    """Store the redrawn pages as one reply. With the number from the scan it is matched
    and forwarded at once; with a letter chosen by search it waits for a person's
    confirmation. Returns the reply (None: this very scan was uploaded before) and the
    outbound mail ids. The caller commits."""
    pages = redraw(files)
    number = " ".join((number or "").split()) or None
    if number is None and letter is None:
        raise ScanError("enter the letter number on the scan, or find the letter")
    reply, mail = store_upload(
        session, settings, pages=pages, letter_number=number, uploaded_by=volunteer,
        prisoner_id=letter.prisoner_id if letter is not None and number is None else None)
    if reply is not None and letter is not None and number is None and reply.state == RS.UNMATCHED:
        # A search is a person's reading, not the gateway's mapping: it is a suggestion
        # that the triage confirms, never a forward by itself.
        reply.suggested_letter_id = letter.id
        reply.suggestion = f"found at the desk by {volunteer}"
    return reply, mail
