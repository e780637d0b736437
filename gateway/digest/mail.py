"""The digest as an e-mail in the outbox, one per opted-in organizer and week. The dedup key
(user, ISO week) makes a beat that fires twice, or a re-run, one mail."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.digest.figures import Figures, week_figures
from gateway.models import OutboundMail, User, utcnow
from gateway.notices import en_date
from gateway.plural import en_count, ru_count
from gateway.templating import render_text


def _money(amount: Decimal) -> str:
    # Russian format: a space between thousands, a comma before kopecks.
    whole = f"{int(amount):,}".replace(",", "\u00a0")
    kopecks = int((amount - int(amount)) * 100)
    return f"{whole},{kopecks:02d} ₽" if kopecks else f"{whole} ₽"


def render_digest(f: Figures, org_name: str) -> str:
    """Pure: the figures as the mail's text, Russian first, English below."""
    return render_text("digest/digest.txt.j2", f=f, org_name=org_name, ru=ru_count,
                       en=en_count, money=_money, start_en=en_date(f.start),
                       end_en=en_date(f.end))


def _compose(text: str, f: Figures, settings, dedup_key: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = Address(display_name=settings.org_name, addr_spec=settings.gateway_address)
    msg["Subject"] = f"Сводка за неделю / Weekly digest: {f.start.isoformat()} – {f.end.isoformat()}"
    msg["Date"] = format_datetime(utcnow())
    domain = settings.gateway_address.partition("@")[2] or "gateway.local"
    msg["Message-ID"] = f"<{hashlib.sha256(dedup_key.encode()).hexdigest()[:24]}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(text, cte="quoted-printable")
    msg["Content-Language"] = "ru, en"
    return bytes(msg)


def queue_digests(session: Session, settings, now: datetime | None = None) -> list[int]:
    """Queue this week's digest for every active organizer who opted in and gave an
    address; returns the new outbox ids (none for a week already queued)."""
    now = now or utcnow()
    users = session.scalars(select(User).where(
        User.active.is_(True), User.digest_opt_in.is_(True), User.email_sealed.is_not(None))
        .order_by(User.id)).all()
    if not users:
        return []
    figures = week_figures(session, settings, now)
    text = render_digest(figures, settings.org_name)
    year, week, _ = now.isocalendar()
    queued: list[int] = []
    for user in users:
        key = f"digest:{user.id}:{year}-W{week:02d}"
        row = OutboundMail(dedup_key=key, kind="digest", message=_compose(text, figures, settings, key),
                           recipient_sealed=user.email_sealed, next_attempt_at=utcnow())
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # this week's digest is queued already
        queued.append(row.id)
    return queued
