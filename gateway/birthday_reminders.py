"""Birthday reminders for writers who ask for them, double opt-in.

A writer asks by writing to ``letters+birthdays@…`` (or "[birthdays]" in the subject); we
answer with a code; their reply with the code (our subject carries the tag back) confirms.
Only then, for every birthday campaign that opens, they get one mail naming the person and
the date, whose subject carries the campaign's tag: "reply to this mail with your greeting"
works, because the reply joins that one-person campaign. Every mail ends with how to stop
(the footer: "STOP"); a stopped writer's row is forgotten. Every reminder also carries a
one-click unsubscribe link (RFC 8058 headers and a visible link, served by the dashboard
without a login): its signed token names the subscription row, never the address, and
following it forgets the row (reminders end; other mail, unlike STOP, does not). Addresses
only sealed, found by their keyed hash, as everywhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import actions, campaigns
from gateway.birthdays import open_birthday_campaigns
from gateway.crypto import Keyring, keyring
from gateway.intake import writers
from gateway.mail.compose import compose_bytes
from gateway.models import (
    BirthdaySubscriber,
    Campaign,
    Letter,
    OutboundMail,
    Suppression,
    utcnow,
)
from gateway.notices import _inflect
from gateway.states import Reason as R

TAG = "birthdays"
TOKEN_DAYS = 7


def wants_subscription(tags: list[str]) -> bool:
    return TAG in tags


def handle(session: Session, settings, letter: Letter, parsed, text: str) -> list[int]:
    """A message to the subscription address: ask for the code, or take it. Never a
    letter to a prisoner (IGNORED, with the reason)."""
    keys = keyring(settings)
    if not letter.sender_hash or not letter.sender_sealed:
        actions.ignore(session, letter, "a birthday subscription request from an "
                       "address we may not write to", R.BIRTHDAY_SUBSCRIPTION)
        return []
    sub = session.scalar(select(BirthdaySubscriber).where(
        BirthdaySubscriber.address_hash == letter.sender_hash).with_for_update())
    if sub is not None and sub.confirmed_at is not None:
        actions.ignore(session, letter, "already subscribed to birthday reminders",
                       R.BIRTHDAY_SUBSCRIPTION)
        return []
    codes = writers.tokens_in(parsed.subject, text)
    if sub is not None and sub.token_hash and sub.token_expires_at and \
            sub.token_expires_at >= utcnow() and \
            any(keys.code_matches(c, sub.token_hash) for c in codes):
        sub.confirmed_at, sub.token_hash, sub.token_expires_at = utcnow(), None, None
        actions.ignore(session, letter, "confirmed birthday reminders",
                       R.BIRTHDAY_SUBSCRIPTION)
        return _answer(session, settings, letter, parsed, "subscribed",
                       "Подписка на дни рождения / Birthday reminders are on", {})
    if sub is None:
        sub = BirthdaySubscriber(address_hash=letter.sender_hash,
                                 address_sealed=letter.sender_sealed)
        session.add(sub)
    token = writers.new_token()
    sub.token_hash = keys.code_digest(token)
    sub.token_expires_at = utcnow() + timedelta(days=TOKEN_DAYS)
    actions.ignore(session, letter, "asked for birthday reminders; code sent",
                   R.BIRTHDAY_SUBSCRIPTION)
    shown = writers.show_token(token)
    # The tag comes back in the writer's reply: that is how the reply is recognised.
    return _answer(session, settings, letter, parsed, "confirm",
                   f"[{TAG}] Подтвердите подписку: код {shown} / Confirm: code {shown}",
                   {"token_shown": shown})


def _answer(session: Session, settings, letter: Letter, parsed, kind: str, subject: str,
            context: dict) -> list[int]:
    """Our answer to the writer's message: at most one of a kind a day (its dedup key),
    none to a writer who said STOP; sealed, To added at send time, as every notice."""
    if session.scalar(select(Suppression.id).where(
            Suppression.address_hash == letter.sender_hash)) is not None:
        return []
    key = f"birthdays_{kind}:{letter.sender_hash}:{utcnow().date().isoformat()}"
    if session.scalar(select(OutboundMail.id).where(OutboundMail.dedup_key == key)):
        return []
    keys = keyring(settings)
    mail = compose_bytes(f"birthdays/{kind}", to=None, from_addr=settings.gateway_address,
                         from_name=settings.org_name, subject=subject,
                         context={"org_name": settings.org_name, **context},
                         in_reply_to=parsed.message_id, dedup_key=key,
                         domain=settings.gateway_address.partition("@")[2])
    row = OutboundMail(dedup_key=key, kind=f"birthdays_{kind}", letter_id=letter.id,
                       message=keys.seal_bytes(mail.data),
                       recipient_sealed=keys.seal(parsed.return_path or parsed.sender),
                       next_attempt_at=utcnow(), message_id=mail.message_id,
                       writer_hash=letter.sender_hash)
    session.add(row)
    session.flush()
    return [row.id]


def queue_reminders(session: Session, settings, today) -> list[int]:
    """One mail per confirmed subscriber per open birthday campaign, once (its dedup key).
    Subscribers who said STOP, or never confirmed in time, are forgotten here. The caller commits, then publishes."""
    stopped = set(session.scalars(select(Suppression.address_hash)))
    subs = []
    for sub in session.scalars(select(BirthdaySubscriber)):
        expired = sub.confirmed_at is None and (sub.token_expires_at is None
                                                or sub.token_expires_at < utcnow())
        if sub.address_hash in stopped or expired:  # forget who said no, or never said yes
            session.delete(sub)
        elif sub.confirmed_at is not None:
            subs.append(sub)
    open_ = open_birthday_campaigns(session, today)
    if not subs or not open_:
        return []
    keys = keyring(settings)
    domain = settings.gateway_address.partition("@")[2]
    wanted = {f"bdrem:{s.id}:{c.tag}": (s, c) for s in subs for c in open_}
    done = set(session.scalars(select(OutboundMail.dedup_key)
                               .where(OutboundMail.dedup_key.in_(sorted(wanted)))))
    rows = []
    for key, (sub, campaign) in wanted.items():
        if key in done:
            continue
        mail = _reminder(settings, campaign, key, domain,
                         unsubscribe_url(settings, unsubscribe_token(keys, sub)))
        rows.append(OutboundMail(dedup_key=key, kind="birthday_reminder",
                                 message=keys.seal_bytes(mail.data),
                                 recipient_sealed=sub.address_sealed,
                                 next_attempt_at=utcnow(), message_id=mail.message_id,
                                 writer_hash=sub.address_hash))
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows]


def _reminder(settings, campaign: Campaign, key: str, domain: str, unsubscribe: str):
    (prisoner,) = campaign.prisoners
    context = {"org_name": settings.org_name, "person": f"{prisoner.first_name} "
               f"{prisoner.last_name}", "on": campaign.ends_on, "tag": campaign.tag,
               "person_gent": _inflect(prisoner, "gent"), "facility": prisoner.facility_name,
               "address": campaigns.plus_address(settings.gateway_address, campaign.tag),
               "unsubscribe": unsubscribe}
    subject = (f"[{campaign.tag}] День рождения: {context['person']}, {campaign.ends_on:%d.%m}"
               f" / Birthday")
    return compose_bytes("birthdays/reminder", to=None, from_addr=settings.gateway_address,
                         from_name=settings.org_name, subject=subject, context=context,
                         dedup_key=key, domain=domain,
                         headers=(("List-Unsubscribe", f"<{unsubscribe}>"),
                                  ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")))


# -- the one-click unsubscribe link ----------------------------------------------------------

def _stamp(at: datetime) -> int:
    # The row's creation second binds a token to that row: an id SQLite hands out again
    # after a deletion does not carry an old token over to someone else.
    return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())


def unsubscribe_token(keys: Keyring, sub: BirthdaySubscriber) -> str:
    what = f"birthdays:{sub.id}:{_stamp(sub.created_at)}"
    return f"{sub.id}.{_stamp(sub.created_at)}.{keys.link_mac(what)}"


def unsubscribe_url(settings, token: str) -> str:
    return f"{settings.web_public_url.rstrip('/')}/unsubscribe/{token}"


def verify_token(keys: Keyring, token: str) -> int | None:
    """The subscription row id a well-signed token names (it may be gone already)."""
    sub_id, stamp, mac = (token.split(".") + ["", ""])[:3]
    if not (sub_id.isdigit() and stamp.isdigit() and len(token) < 100) or \
            not keys.link_mac_matches(f"birthdays:{sub_id}:{stamp}", mac):
        return None
    return int(sub_id)


def unsubscribe(session: Session, keys: Keyring, token: str) -> bool | None:
    """Forget the subscription the token names: True, or False when it is gone already
    (forgotten, or unsubscribed before); None for a token we did not sign. The caller
    commits."""
    sub_id = verify_token(keys, token)
    if sub_id is None:
        return None
    sub = session.get(BirthdaySubscriber, sub_id)
    stamp = int(token.split(".")[1])
    if sub is None or _stamp(sub.created_at) != stamp:
        return False
    session.delete(sub)
    return True
