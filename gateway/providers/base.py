"""The one interface every provider adapter speaks, and its two kinds of error.

An adapter is found by name through the `gateway.providers` entry point group (registry.py)
and describes itself as data: its profile (page size, prices, photo limits, from
profiles.toml) and whether it calls a service (`assisted = False`) or hands each letter to
a person who carries it (`assisted = True`: the desk and the post)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from gateway.providers.profiles import ProviderProfile


@dataclass(frozen=True)
class Recipient:
    last_name: str
    first_name: str
    middle_name: str | None
    birth_year: int | None


@dataclass(frozen=True)
class Photo:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Submission:
    """What a provider receives: the organization as author, never the participant."""

    facility_id: str
    recipient: Recipient
    author_name: str
    author_email: str
    author_phone: str
    text: str
    reply_ordered: bool
    client_ref: str
    photos: tuple[Photo, ...] = ()


@dataclass(frozen=True)
class Accepted:
    number: str
    status: str
    pages: int
    amount: Decimal
    currency: str
    replayed: bool = False  # the provider recognised the idempotency key


@dataclass(frozen=True)
class LetterStatus:
    number: str
    status: str  # accepted | in_censorship | delivered | rejected
    reason: str | None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Facility:
    """One entry of a provider's catalogue."""

    id: str
    name: str
    region: str = ""
    accepts_photos: bool = True
    max_pages: int | None = None
    max_photos: int = 0
    postal_address: str | None = None


@dataclass(frozen=True)
class ReplyPageRef:
    n: int
    content_type: str
    url: str


@dataclass(frozen=True)
class RemoteReply:
    id: str
    letter_number: str | None
    received_at: datetime | None
    pages: tuple[ReplyPageRef, ...] = field(default_factory=tuple)


class ProviderError(Exception):
    pass


class TransientError(ProviderError):
    """Try again later. `maybe_sent` is True when the request may have reached the
    provider (timeout, reset after sending): the letter is then UNKNOWN, not failed."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 maybe_sent: bool = False, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent
        self.status = status


class PermanentError(ProviderError):
    """A reason for a person: the same request will never succeed."""

    def __init__(self, message: str, *, code: str = "", fields: dict | None = None,
                 status: int | None = None):
        super().__init__(message)
        self.code = code
        self.fields = fields or {}
        self.status = status


class RefusedPage(PermanentError):
    """A reply page we will not take (on another origin than the provider's, or too
    large): the reply goes to triage with this reason instead of being fetched again."""


class PaymentRequired(PermanentError):
    """402: the account is empty. Pause the provider and alert; the letter itself is fine."""


@runtime_checkable
class Provider(Protocol):
    name: str
    assisted: bool  # True: no call; a person carries the letter (desk, post)

    @property
    def profile(self) -> ProviderProfile: ...

    def submit(self, submission: Submission, idempotency_key: str) -> Accepted: ...

    def status(self, number: str) -> LetterStatus: ...

    def replies(self, after: str | None, limit: int = 100) -> tuple[list[RemoteReply], str | None]: ...

    def reply_page(self, page: ReplyPageRef) -> tuple[str, bytes]: ...

    def facilities(self) -> list[Facility]: ...

    def close(self) -> None: ...
