"""The post: facilities with no e-mail service get printed letters, mailed by volunteers.

The `post` adapter (providers/post.py) takes no call: checked letters wait in DESK. A volunteer builds a batch
for one facility (`build_batch`): one PDF with a cover sheet and every letter, each letter
starting on its own page with the facility's postal address block, its text cut into
pages of the profile's size, photos after, and "Стр. N из M" counted per letter (each goes
in its own envelope). Once the envelopes are in the post, `mark_posted` moves every letter
to SUBMITTED with the number printed on it, POST-<batch>-<n>. Replies come back as uploads
or e-mails to the reply mailbox, matched by that number."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway import actions
from gateway.config import get_settings
from gateway.human.desk import split_pages
from gateway.models import (
    Letter,
    LetterAttachment,
    PostBatch,
    PostBatchLetter,
    Prisoner,
    ProviderFacility,
    utcnow,
)
from gateway.providers.post import DEFAULT_ADDRESSES, load_addresses
from gateway.providers.profiles import load_profiles
from gateway.states import LetterState as S
from gateway.templating import TEMPLATES_DIR, ru_date

# -- rendering -------------------------------------------------------------------------

@lru_cache
def _html_environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2", "css.j2"]),
                      auto_reload=False)  # as gateway.templating: a release restarts us
    env.filters["ru_date"] = ru_date
    return env


@dataclass(frozen=True)
class PrintedLetter:
    letter_id: int
    number: str
    recipient: str
    postal_address: str
    pages: tuple[str, ...]
    photos: tuple[tuple[str, bytes], ...]  # (content type, bytes)
    date: object


# Layout budget of letter.html.j2 (A4, 10 pt DejaVu Serif, line-height 1.35): characters a
# printed line holds (an underestimate, so pages never overflow) and lines a page holds.
LINE_CHARS = 80
FIRST_PAGE_LINES = 34  # below the address block
PAGE_LINES = 48


def _lines(text: str) -> int:
    return sum(max(1, -(-len(line) // LINE_CHARS)) for line in text.split("\n"))


def print_pages(text: str, page_chars: int = 2500) -> tuple[str, ...]:
    """The text as printed pages: the service's pages of `page_chars`, each cut again at a
    line break where short lines (a poem, a list) would overflow the paper. One printed
    page is one PDF page, so the page numbers are known before rendering."""
    pages: list[str] = []
    for chunk in split_pages(text, page_chars):
        while _lines(chunk) > (budget := FIRST_PAGE_LINES if not pages else PAGE_LINES):
            lines, used, cut = chunk.split("\n"), 0, 0
            for i, line in enumerate(lines):
                used += max(1, -(-len(line) // LINE_CHARS))
                if used > budget:
                    break
                cut = i + 1
            if cut == 0:
                break
            pages.append("\n".join(lines[:cut]) + "\n")
            chunk = "\n".join(lines[cut:])
        pages.append(chunk)
    return tuple(pages)


def postal_address(session: Session, prisoner: Prisoner) -> str:
    """The synced post catalogue first, then the addresses file, then what the directory knows."""
    row = session.scalar(select(ProviderFacility).where(
        ProviderFacility.provider == "post", ProviderFacility.facility_id == prisoner.facility_id))
    if row is not None and row.postal_address:
        return row.postal_address
    for fac in load_addresses(get_settings().post_addresses or DEFAULT_ADDRESSES):
        if fac.id == prisoner.facility_id and fac.postal_address:
            return fac.postal_address
    return "\n".join(x for x in (prisoner.facility_name, prisoner.region) if x)


def _recipient(p: Prisoner) -> str:
    return p.full_name + (f", {p.birth_year} г. р." if p.birth_year else "")


def render_letter_pdf(printed: PrintedLetter, settings):
    """One letter as a WeasyPrint document (its own page counter)."""
    from weasyprint import HTML  # heavy import: only where a PDF is made

    photos = [f"data:{ct};base64,{base64.b64encode(data).decode()}"
              for ct, data in printed.photos]
    html = _html_environment().get_template("letters/post/letter.html.j2").render(
        number=printed.number, footer_ref=printed.number, recipient=printed.recipient,
        postal_address=printed.postal_address, pages=printed.pages, photos=photos,
        date=printed.date, org_name=settings.org_name, org_reply_email=settings.org_reply_email,
        org_postal_address=settings.org_postal_address,
        reply_note="ответ можно прислать по обратному адресу" if settings.org_postal_address else "")
    return HTML(string=html, base_url=str(TEMPLATES_DIR)).render()


def render_batch_pdf(batch_id: int, facility_name: str, address: str,
                     letters: list[PrintedLetter], settings) -> tuple[bytes, int]:
    """Cover sheet + every letter, one PDF. Returns (bytes, page count)."""
    from weasyprint import HTML

    documents = [render_letter_pdf(p, settings) for p in letters]
    rows = [{"number": p.number, "recipient": p.recipient, "pages": len(doc.pages)}
            for p, doc in zip(letters, documents, strict=True)]
    cover = HTML(string=_html_environment().get_template("letters/post/cover.html.j2").render(
        batch_id=batch_id, footer_ref=f"Партия {batch_id}", facility_name=facility_name,
        postal_address=address, letters=rows, total_pages=sum(r["pages"] for r in rows),
        date=utcnow()), base_url=str(TEMPLATES_DIR)).render()
    pages = [page for doc in (cover, *documents) for page in doc.pages]
    return cover.copy(pages).write_pdf(), len(pages)


# -- the volunteer's two steps -------------------------------------------------------------

def post_queue(session: Session) -> dict[str, list[Letter]]:
    """Letters waiting to be printed (post, DESK, in no batch yet), by facility id."""
    batched = select(PostBatchLetter.letter_id)
    queue: dict[str, list[Letter]] = {}
    for letter in session.scalars(
            select(Letter).join(Prisoner, Prisoner.id == Letter.prisoner_id)
            .where(Letter.state == S.DESK, Letter.provider == "post",
                   Letter.id.not_in(batched)).order_by(Letter.id)):
        queue.setdefault(letter.prisoner.facility_id, []).append(letter)
    return queue


class PostError(ValueError):
    pass


def number_for(batch_id: int, n: int) -> str:
    return f"POST-{batch_id}-{n}"


def build_batch(session: Session, facility_id: str, actor: str, settings,
                limit: int = 50) -> PostBatch:
    """Print every waiting letter for one facility into one PDF (the caller commits).
    A letter is in at most one batch (a unique key): two volunteers building at once
    cannot print the same letter twice."""
    letters = post_queue(session).get(facility_id, [])[:limit]
    if not letters:
        raise PostError(f"no letters wait for the post to {facility_id}")
    prisoner = letters[0].prisoner
    address = postal_address(session, prisoner)
    profile = load_profiles()["post"]
    batch = PostBatch(facility_id=facility_id, pdf=b"", created_by=actor)
    session.add(batch)
    try:
        with session.begin_nested():
            session.flush()
            for n, letter in enumerate(letters, start=1):
                session.add(PostBatchLetter(batch_id=batch.id, letter_id=letter.id, n=n))
            session.flush()
    except IntegrityError as exc:
        raise PostError("another batch took some of these letters; build again") from exc
    printed = []
    for n, letter in enumerate(letters, start=1):
        photos = tuple((a.content_type, a.data) for a in session.scalars(
            select(LetterAttachment).where(LetterAttachment.letter_id == letter.id)
            .order_by(LetterAttachment.id)))
        printed.append(PrintedLetter(
            letter_id=letter.id, number=number_for(batch.id, n),
            recipient=_recipient(letter.prisoner), postal_address=postal_address(
                session, letter.prisoner),
            pages=print_pages(letter.rendered or letter.body or "", profile.page_chars),
            photos=photos, date=letter.created_at))
    batch.pdf, batch.pages = render_batch_pdf(batch.id, prisoner.facility_name, address,
                                              printed, settings)
    return batch


def mark_posted(session: Session, batch_id: int, actor: str, settings,
                postage: Decimal | None = None) -> list[int]:
    """The envelopes are in the post: each letter DESK -> SUBMITTED as POST-<batch>-<n>.
    `postage`: what the stamps and envelopes cost, for the spend ledger (per batch, as it
    is paid). Returns outbound mail ids ('sent' notices). Marking twice changes nothing."""
    batch = session.get(PostBatch, batch_id, with_for_update=True, populate_existing=True)
    if batch is None:
        raise PostError(f"no batch {batch_id}")
    mail: list[int] = []
    for item in session.scalars(select(PostBatchLetter).where(PostBatchLetter.batch_id == batch_id)
                                .order_by(PostBatchLetter.n)):
        number = number_for(batch_id, item.n)
        letter, sent = actions.claim_submitted(session, settings, item.letter_id, number,
                                               price=None, how=f"posted in batch {batch_id}",
                                               actor=actor, status="posted")
        if letter is None:
            continue  # discarded meanwhile, or already marked
        mail += sent
    if batch.state != "POSTED":
        batch.state, batch.posted_at, batch.posted_by = "POSTED", utcnow(), actor
        batch.postage = postage
    return mail
