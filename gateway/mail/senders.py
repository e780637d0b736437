"""Who wrote it, taken safely: exactly one From address, and the addresses a message was sent to.

Python 3.11.7 lacks the fixes for CVE-2023-27043 (``email.utils.getaddresses`` turns
``alice@example.org)<bob@example.org>`` into bob) and for gh-128110 (policy.default inserts
spaces into display names split across encoded words). So a From is accepted only when the
policy.default header parser finds exactly one address with no defects, email-validator
accepts its addr-spec (no quoted local parts: ``"a@b.c"@evil.example``), and the stdlib's
older ``parseaddr`` agrees with it. Display names are decoded from the raw header with
``decode_header``/``make_header``, which joins adjacent encoded words as RFC 2047 says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parseaddr
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from gateway.mail.charsets import decode_header_bytes
from gateway.mail.header_classes import HEADER_CLASSES

# CR, LF, NUL, other C0/C1 controls, the Unicode line/paragraph separators and the bidi
# overrides that can disguise a name or a file name.
_UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Sender:
    address: str | None  # lower-cased addr-spec, None when there is not exactly one safe one
    name: str | None  # decoded display name, cleaned, or None
    problem: str | None  # why address is None (English), else None


def clean_header_text(value: str, limit: int = 500) -> str:
    """One line of header text safe to store and show: no controls, no bidi tricks, bounded."""
    value = _UNSAFE_CHARS.sub(" ", value.replace("\t", " "))
    return re.sub(r" {2,}", " ", value).strip()[:limit]


def _has_raw_8bit(raw: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in raw)


def decode_header_text(raw: str) -> str:
    """A raw header value (encoded words, maybe undeclared 8-bit) -> text; never raises."""
    if _has_raw_8bit(raw):
        # Undeclared 8-bit bytes, kept by the parser as surrogate escapes.
        raw = decode_header_bytes(raw.encode("utf-8", "surrogateescape")).text
    try:
        return str(make_header(decode_header(raw)))
    except Exception:  # broken encoded words, unknown charsets: keep the raw text
        return raw


# Remembered: every letter names our own address, and writers write again. Only values of
# ordinary length, so hostile headers cannot fill the parse worker's memory with keys.
_REMEMBERED = 256
_REMEMBERED_CHARS = 1000


def is_valid_address(addr: str, *, special_use_domain: bool = False) -> bool:
    if len(addr) <= _REMEMBERED_CHARS:
        return _known_valid(addr, special_use_domain)
    return _is_valid_address(addr, special_use_domain)


def _is_valid_address(addr: str, special_use_domain: bool) -> bool:
    try:
        validate_email(addr, check_deliverability=False, allow_quoted_local=False,
                       allow_domain_literal=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        # Our own address may sit on a special-use domain (the demo's gateway.local, a
        # company's .internal): routing reads it, so only the syntax must hold there.
        return special_use_domain and "special-use or reserved name" in str(exc) \
            and is_valid_address(addr.rpartition("@")[0] + "@example.org")
    return True


_known_valid = lru_cache(maxsize=_REMEMBERED)(_is_valid_address)


def _raw_values(msg: EmailMessage, name: str) -> list[str]:
    return [v for k, v in msg.raw_items() if k.lower() == name.lower()]


def sender_of(msg: EmailMessage) -> Sender:
    raw_froms = _raw_values(msg, "From")
    if len(raw_froms) != 1:
        return Sender(None, None, f"{len(raw_froms)} From headers")
    raw = raw_froms[0]  # a writer's From is the same in each of their letters
    return _known_sender(raw) if len(raw) <= _REMEMBERED_CHARS else _sender(raw)


def _sender(raw: str) -> Sender:
    if _has_raw_8bit(raw):
        # Undeclared 8-bit (a raw UTF-8 or cp1251 display name): decode it by the charset
        # ladder first, then parse the text, so the header parser sees no undecodable bytes.
        raw = decode_header_bytes(raw.encode("utf-8", "surrogateescape")).text
    # Unfold first (RFC 5322 2.2.3): the header factory refuses a folded value with a
    # ValueError, and long encoded-word names are folded by Gmail and Python alike.
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw)
    try:
        header = HEADER_CLASSES("From", raw)
        addresses = header.addresses
        defects = header.defects
    except Exception as exc:  # the header parser has open crash bugs on hostile input
        return Sender(None, None, f"From header could not be parsed ({type(exc).__name__})")
    if defects:
        return Sender(None, None, "From header has defects: " + "; ".join(map(str, defects))[:200])
    if len(addresses) != 1:
        return Sender(None, None, f"From names {len(addresses)} addresses")
    addr = addresses[0].addr_spec
    if not is_valid_address(addr):
        return Sender(None, None, "From address is not a plain valid address")
    # The older parser must see the same single address in the raw text.
    unfolded = re.sub(r"\r?\n[ \t]", " ", raw)
    old_name, old_addr = parseaddr(unfolded)
    if old_addr.lower() != addr.lower():
        return Sender(None, None, "From header is read differently by two parsers")
    name = _display_name(old_name) if old_name else None
    return Sender(addr.lower(), name, None)


_known_sender = lru_cache(maxsize=_REMEMBERED)(_sender)


def _display_name(raw_name: str) -> str | None:
    name = clean_header_text(decode_header_text(raw_name), limit=200).strip("\"' ")
    if not name or "@" in name:  # a name that is an address is no name (and would leak one)
        return None
    return name


def addresses_in(msg: EmailMessage, names: Iterable[str]) -> tuple[str, ...]:
    """Lower-cased valid addr-specs in the given address headers, in order, without repeats.

    Used for routing only (plus-addresses), so a defective header still yields what can be
    read safely; each address must pass email-validator (a special-use domain such as
    .local allowed: these are the addresses the mail was delivered to, ours among them).
    """
    found: list[str] = []
    for name in names:
        for raw in _raw_values(msg, name):
            read = _known_addresses if len(raw) <= _REMEMBERED_CHARS else _addresses_from_raw
            for addr in read(name, raw):  # "To: letters@…" in every letter: read once
                addr = addr.lower()
                if addr not in found and is_valid_address(addr, special_use_domain=True):
                    found.append(addr)
    return tuple(found)


def _addresses_from_raw(name: str, raw: str) -> tuple[str, ...]:
    if _has_raw_8bit(raw):
        raw = decode_header_bytes(raw.encode("utf-8", "surrogateescape")).text
    try:
        header = HEADER_CLASSES(name, raw)
        return tuple(a.addr_spec for a in header.addresses)
    except Exception:
        pass
    # Delivered-To and its kin carry a bare address; a crashing header yields what looks like one.
    return tuple(re.findall(r"[\w.+\-=]+@[\w\-]+(?:\.[\w\-]+)+", raw))


_known_addresses = lru_cache(maxsize=_REMEMBERED)(_addresses_from_raw)
