"""Durable state. SQL is the truth; Redis only carries work.

Portable types only, so the same migrations run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator

from gateway.masking import mask_addresses


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on both SQLite (which drops tzinfo) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class MaskedText(TypeDecorator):
    """Free text that may quote an address (SMTP/DSN errors, notes, alerts): every e-mail
    address in it is masked as it is written (gateway/masking.py), whoever writes it."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return mask_addresses(value)


class MaskedString(MaskedText):
    impl = String
    cache_ok = True


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


class Prisoner(Base):
    __tablename__ = "prisoners"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    last_name: Mapped[str] = mapped_column(String(100))
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    birth_year: Mapped[int | None]
    # Known for some: organizers send cards for birthdays (the dashboard lists the next ones).
    birth_date: Mapped[date | None]
    region: Mapped[str] = mapped_column(String(200), default="")
    facility_name: Mapped[str] = mapped_column(String(200))
    facility_id: Mapped[str] = mapped_column(String(100))  # the provider's catalogue id
    # The service that reaches the prisoner (fsin-pismo, zonatelecom, post, desk); which
    # adapter carries its letters is configuration (gateway/providers/services.py). An
    # import without the column uses GATEWAY_DEFAULT_PROVIDER.
    provider: Mapped[str] = mapped_column(String(50), default="http")
    status: Mapped[str] = mapped_column(String(30), default="in_custody")
    can_receive: Mapped[bool] = mapped_column(default=True)
    # From the groups' lists: "f" or "m" (None when the list does not say); Russian
    # letters and greetings agree with it.
    gender: Mapped[str | None] = mapped_column(String(1))
    # What they like and asked to read, as the list wrote it, and as short tags to match.
    interests: Mapped[str | None] = mapped_column(Text)
    interest_tags: Mapped[list | None] = mapped_column(JSON)
    writer_note: Mapped[str | None] = mapped_column(Text)  # shown to writers, e.g. "пишите о книгах"
    wants_letters: Mapped[bool] = mapped_column(default=True, server_default=true())
    moved_at: Mapped[date | None]  # the last transfer between facilities
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def full_name(self) -> str:
        return " ".join(p for p in (self.last_name, self.first_name, self.middle_name) if p)


class InboundMessage(Base):
    """Raw bytes of every message taken from a mailbox, stored before the move."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(200))
    uidvalidity: Mapped[int]
    uid: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


# letters' columns indexed only where they hold a value (see Letter.__table_args__)
_MOSTLY_EMPTY = ("part_of_id", "provider_number", "submitted_at", "campaign_id", "evening_id",
                 "postcard_id")


def _where_set(table: str, column: str) -> Index:
    where = text(f"{column} IS NOT NULL")
    return Index(f"ix_{table}_{column}", column, postgresql_where=where, sqlite_where=where)


class Letter(Base):
    __tablename__ = "letters"
    __table_args__ = (
        Index("ix_letters_state_next", "state", "next_attempt_at"),
        Index("ix_letters_state_updated", "state", "updated_at"),
        # The overview's in-flight counts per service and per facility read this index
        # alone; lookups by state alone use its leading column.
        Index("ix_letters_state_provider_prisoner", "state", "provider", "prisoner_id"),
        # Columns empty for most letters or most of a letter's life: their indexes hold only
        # the rows that have a value, so a letter's every move (an UPDATE that changes the
        # indexed state, hence writes an entry in every index) skips them. Lookups by a
        # value (=, <, >) imply IS NOT NULL, and both databases use these indexes for them.
        *(_where_set("letters", column) for column in _MOSTLY_EMPTY),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # the idempotency key
    # None for the parts of a split letter after the first: they came from no message.
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"),
                                                   unique=True)
    # A letter longer than its facility takes, split (GATEWAY_SPLIT_MAX_PARTS): each part
    # is a letter of its own (own public id, so its own idempotency key and charge); the
    # first part is the letter the writer sent, the others point to it.
    part_of_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"))  # indexed where set
    part_no: Mapped[int | None]
    parts: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(20))  # indexed: see __table_args__
    prisoner_id: Mapped[int | None] = mapped_column(ForeignKey("prisoners.id"), index=True)
    sender_sealed: Mapped[str | None] = mapped_column(Text)  # encrypted writer address
    sender_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    writer_name: Mapped[str | None] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str | None] = mapped_column(Text)  # the letter as the writer meant it
    rendered: Mapped[str | None] = mapped_column(Text)  # exactly what the provider receives
    findings: Mapped[list | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(MaskedText)  # why it is where it is, for a person
    provider: Mapped[str | None] = mapped_column(String(50))  # the adapter that carries it
    service: Mapped[str | None] = mapped_column(String(50))  # the service it goes through
    # The desk: a volunteer holds the letter while typing it; a lease that runs out frees it.
    leased_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    pages: Mapped[int | None]
    photos: Mapped[int] = mapped_column(default=0)
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    provider_number: Mapped[str | None] = mapped_column(String(64))  # indexed where set
    provider_status: Mapped[str | None] = mapped_column(String(30))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[datetime | None]  # spend sums; indexed where set
    # Retention forgot its text and its writer (gateway/retention.py); counts stay.
    purged_at: Mapped[datetime | None]
    # The campaign or letter evening the writer joined (its plus-address or [tag]).
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))  # indexed where set
    evening_id: Mapped[int | None] = mapped_column(ForeignKey("evenings.id"))  # indexed where set
    # A short greeting gathered into a postcard (gateway/postcards.py): the postcard it
    # joined. The postcard's own letter (Postcard.letter_id) is the one that is paid for.
    postcard_id: Mapped[int | None] = mapped_column(ForeignKey("postcards.id"))  # indexed where set

    prisoner: Mapped[Prisoner | None] = relationship(lazy="joined")
    events: Mapped[list[LetterEvent]] = relationship(
        order_by="LetterEvent.id", back_populates="letter", lazy="select"
    )
    attachments: Mapped[list[LetterAttachment]] = relationship(lazy="select")


class Postcard(Base):
    """Short greetings to one prisoner from one campaign or evening, gathered to go as one
    letter (gateway/postcards.py). Open while `letter_id` is NULL; closed, its letter is
    submitted like any other. No text here: the greetings and the composed letter are
    letters, purged with them (retention)."""

    __tablename__ = "postcards"
    id: Mapped[int] = mapped_column(primary_key=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    evening_id: Mapped[int | None] = mapped_column(ForeignKey("evenings.id"), index=True)
    provider: Mapped[str] = mapped_column(String(50))  # the adapter that carries it
    service: Mapped[str] = mapped_column(String(50))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closes_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(100))
    # use_alter: letters point here and this points back; the cycle is broken at creation.
    letter_id: Mapped[int | None] = mapped_column(
        ForeignKey("letters.id", use_alter=True, name="fk_postcards_letter_id"), unique=True)
    greetings: Mapped[int] = mapped_column(default=0)
    chars: Mapped[int] = mapped_column(default=0)  # the greetings' signed text, to fill pages
    # What the greetings would have cost as a letter each, and what the postcard costs:
    # the saving shown to organizers is the difference.
    own_letters_rub: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal(0))
    price_rub: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    pages: Mapped[int | None]


class LetterEvent(Base):
    """Append-only: the letter's history, and the dashboard's timeline."""

    __tablename__ = "letter_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(100), default="system")
    note: Mapped[str | None] = mapped_column(MaskedText)
    reason_code: Mapped[str | None] = mapped_column(String(40), index=True)  # states.Reason
    letter: Mapped[Letter] = relationship(back_populates="events")


class LetterAttachment(Base):
    __tablename__ = "letter_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SubmissionAttempt(Base):
    """One row per call to a provider, written before the call leaves."""

    __tablename__ = "submission_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), index=True)
    provider: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(20), default="started")
    http_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(MaskedText)


class Reply(Base):
    """A scanned reply, from the provider's API or the reply mailbox."""

    __tablename__ = "replies"
    __table_args__ = (UniqueConstraint("source", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # api | email | upload
    external_id: Mapped[str] = mapped_column(String(200))
    letter_number: Mapped[str | None] = mapped_column(String(64))  # as the prisoner wrote it
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default="RECEIVED")
    # RECEIVED -> FORWARDED | UNMATCHED | DUPLICATE | KEPT (writer opted out or bounced)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(MaskedText)
    # sha256 over the pages: the same scan by API and by e-mail is one reply.
    pages_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # Evidence short of a number only *suggests* a letter; a person confirms in triage.
    suggested_letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"))
    suggestion: Mapped[str | None] = mapped_column(MaskedText)
    pages: Mapped[list[ReplyPage]] = relationship(order_by="ReplyPage.n", lazy="select")


class ReplyPage(Base):
    __tablename__ = "reply_pages"
    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("replies.id"), index=True)
    n: Mapped[int]
    content_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class OutboundMail(Base):
    """Every e-mail the gateway sends to a writer: an outbox row first, SMTP after commit.

    The unique dedup key makes 'one notice of a kind per letter' and 'one forward per
    letter's reply' a database fact rather than a hope."""

    __tablename__ = "outbound_mail"
    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"), index=True)
    reply_id: Mapped[int | None] = mapped_column(ForeignKey("replies.id"))
    state: Mapped[str] = mapped_column(String(20), default="PENDING", index=True)
    # PENDING -> SENT | FAILED (bounced / 5xx)
    message: Mapped[bytes] = mapped_column(LargeBinary)  # the composed RFC 5322 bytes
    recipient_sealed: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(MaskedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # Our Message-ID (without <>): a writer's answer names it in In-Reply-To.
    message_id: Mapped[str | None] = mapped_column(String(200), index=True)
    writer_hash: Mapped[str | None] = mapped_column(String(64), index=True)  # daily cap per writer


class Sender(Base):
    """A writer, known only by the HMAC of their address (as Letter.sender_hash).

    Confirmation: an unverified writer's letters wait (AWAITING_SENDER) until they answer a
    one-time token; only its hash is stored. Opting out is a Suppression row (one truth for
    'never mail this address'), not a column here."""

    __tablename__ = "senders"
    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Sealed (gateway.crypto), so `gateway keys rotate` can recompute address_hash and an
    # opt-out survives a rotation; purged with the writer's last letter (retention).
    address_sealed: Mapped[str | None] = mapped_column(Text)
    pseudonym: Mapped[str | None] = mapped_column(String(40))  # the name the prison sees
    verified_at: Mapped[datetime | None]
    token_hash: Mapped[str | None] = mapped_column(String(64))
    token_expires_at: Mapped[datetime | None]
    count_day: Mapped[str | None] = mapped_column(String(10))  # ISO date letters_today counts
    letters_today: Mapped[int] = mapped_column(default=0)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Cursor(Base):
    """Named positions: the provider's reply cursor, each mailbox's UIDVALIDITY."""

    __tablename__ = "cursors"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(MaskedString(200))  # alert texts quote SMTP answers
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    # admin | moderator | viewer | volunteer (the desk and the post, nothing else)
    role: Mapped[str] = mapped_column(String(20), default="viewer")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Two-factor login: the TOTP secret, sealed; NULL = not enrolled. The last time step a
    # code was accepted for, so a code seen over a shoulder cannot be used twice.
    totp_sealed: Mapped[str | None] = mapped_column(Text)
    totp_last_step: Mapped[int | None]
    # Where the weekly digest goes, sealed like a writer's address; NULL = none given.
    email_sealed: Mapped[str | None] = mapped_column(Text)
    digest_opt_in: Mapped[bool] = mapped_column(default=False)


class WebSession(Base):
    """A dashboard session on the server: the browser's cookie holds only a random token
    whose SHA-256 is stored here, so deleting the row (logout, password reset, an admin's
    "log out everywhere") ends the session wherever its cookie was copied to."""

    __tablename__ = "web_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    # Password given, second factor still owed: the session opens nothing but the code form.
    pending_second_factor: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)  # the CSRF token, an enrolment


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    letter_id: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(MaskedText)


class ProviderFacility(Base):
    """A provider's catalogue as last synced: which facilities each adapter reaches.
    For the post, the postal address block printed on the envelope sheet."""

    __tablename__ = "provider_facilities"
    __table_args__ = (UniqueConstraint("provider", "facility_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(50), index=True)
    facility_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(200), default="")
    postal_address: Mapped[str | None] = mapped_column(Text)
    accepts_photos: Mapped[bool] = mapped_column(default=True)
    max_pages: Mapped[int | None]
    max_photos: Mapped[int] = mapped_column(default=0)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostBatch(Base):
    """Letters printed together for one facility; a volunteer marks the batch posted."""

    __tablename__ = "post_batches"
    id: Mapped[int] = mapped_column(primary_key=True)
    facility_id: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(20), default="PRINTED")  # PRINTED -> POSTED
    # Stamps and envelopes paid for this batch: the spend ledger counts it on posted_at.
    postage: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    pages: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    posted_at: Mapped[datetime | None]
    posted_by: Mapped[str | None] = mapped_column(String(100))


class PostBatchLetter(Base):
    __tablename__ = "post_batch_letters"
    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("post_batches.id"), index=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), unique=True)
    n: Mapped[int]


class CensorDecision(Base):
    """What the censor said, per facility, for organizers to learn from."""

    __tablename__ = "censor_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id"), unique=True)
    provider: Mapped[str | None] = mapped_column(String(50))
    facility_id: Mapped[str | None] = mapped_column(String(100), index=True)
    facility_name: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(MaskedText)
    # What the stopped letter was about, kept when retention forgets its text: the rules'
    # finding keys ("topics.war"), the kinds of photo, and its content-word lemmas. The
    # censor_memory rule weighs new letters to the same facility against them.
    features: Mapped[dict | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(Base):
    """A writer we must not mail: opted out, or their address bounced (SMTP 5xx / DSN).
    Keyed by the address HMAC, like every other look-up of a writer."""

    __tablename__ = "suppressions"
    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(20))  # opted_out | bounced
    note: Mapped[str | None] = mapped_column(MaskedText)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class GuidanceText(Base):
    """The organizers' edit of the guide for writers, one row per language (Markdown).
    No row: the default shipped in templates/guidance/ is used."""

    __tablename__ = "guidance_texts"
    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(2), unique=True)  # ru | en
    markdown: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
class Campaign(Base):
    """A themed call to write (8 March, New Year, a birthday) to chosen prisoners.

    Writers join with its tag: ``letters+<tag>@…`` or "[tag]" in the subject. The prisoners
    are fixed when it is made (by hand or by a filter, kept in `chosen_by` for the record),
    so "anyone" within it has a stable pool."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(40), unique=True)  # lower case, as matched
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="campaign")  # campaign | birthday
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    guidance: Mapped[str] = mapped_column(Text, default="")  # for writers
    greeting_template: Mapped[str | None] = mapped_column(Text)
    budget_rub: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    chosen_by: Mapped[dict | None] = mapped_column(JSON)  # the filter, or None: by hand
    # Short greetings to one prisoner go together as one postcard (gateway/postcards.py):
    # off by default for a campaign, whose writers may expect a letter of their own.
    postcards: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    prisoners: Mapped[list[Prisoner]] = relationship(secondary="campaign_prisoners",
                                                     order_by="Prisoner.last_name",
                                                     lazy="select")


class CampaignPrisoner(Base):
    __tablename__ = "campaign_prisoners"
    __table_args__ = (UniqueConstraint("campaign_id", "prisoner_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    prisoner_id: Mapped[int] = mapped_column(ForeignKey("prisoners.id"), index=True)


class Evening(Base):
    """A letter evening: a room writing at once. Its short code joins letters to it the
    way a campaign tag does (and to its campaign, if it has one)."""

    __tablename__ = "evenings"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # lower case, as matched
    city: Mapped[str] = mapped_column(String(100))
    place: Mapped[str] = mapped_column(String(200), default="")
    held_on: Mapped[date]
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    # Short greetings to one prisoner go together as one postcard (gateway/postcards.py):
    # on by default for an evening, where a room writes short greetings at once.
    postcards: Mapped[bool] = mapped_column(default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="system")
    campaign: Mapped[Campaign | None] = relationship(lazy="joined")


class BirthdaySubscriber(Base):
    """A writer who asked for birthday reminders: known by the keyed hash of their address
    (as Sender), the address sealed. Mailed only once confirmed (double opt-in); "STOP"
    (a Suppression) ends it and the row is forgotten."""

    __tablename__ = "birthday_subscribers"
    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    address_sealed: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str | None] = mapped_column(String(64))
    token_expires_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
