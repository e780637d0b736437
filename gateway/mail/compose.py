"""Every e-mail the gateway writes to a participant: notices and forwarded replies.

Notices are RFC 3834 auto-replies (so well-behaved robots do not answer them); the
writer's address appears only in the envelope and To header, never in the text."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email import policy
from email.contentmanager import _encode_text
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid
from functools import lru_cache

# One class per header kind (header_classes.py); a module name of its own, which a test
# swaps for the stock policy.
from gateway.mail.header_classes import POLICY as _POLICY
from gateway.models import utcnow
from gateway.templating import TEMPLATES_DIR, render_text


@dataclass(frozen=True)
class Page:
    filename: str
    content_type: str
    data: bytes


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A msg-id we repeat in In-Reply-To: no whitespace, brackets, quotes or specials.
_MSG_ID = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,250}")


def _clean_header(value: str) -> str:
    # Anything that reaches a header is one line of printable text: no injected headers,
    # ever (CR, LF, NUL, NEL and the Unicode line separators all become spaces). "=?" is
    # broken up too: the email package DEcodes RFC 2047 words in a value we set, so
    # "=?UTF-8?Q?=0ABcc:_x?=" would turn into a real line break (CVE-2024-6923, unfixed
    # in Python 3.11.7).
    return " ".join(_CONTROLS.sub(" ", value).replace("=?", "= ?").split())


def _msg_id(value: str) -> str | None:
    bare = value.strip().strip("<>")
    return f"<{bare}>" if _MSG_ID.fullmatch(bare) and "=?" not in bare else None


_HEADERS = BytesHeaderParser(policy=policy.SMTP)

_WIDE = _POLICY.clone(max_line_length=998)  # RFC 5322's limit


def _verify(msg: EmailMessage, data: bytes) -> None:
    """The bytes we store carry exactly the headers we set, in order: the last guard against
    a value the email package turns into a header of its own. Only the header block is
    parsed: the top-level headers are all a full parse would compare."""
    written = [k.lower() for k in _HEADERS.parsebytes(data).keys()]
    if written != [k.lower() for k in msg.keys()]:
        raise ValueError(f"composed mail would carry headers we did not write: {written}")


@lru_cache
def _has_html(kind: str) -> bool:
    return (TEMPLATES_DIR / "email" / f"{kind}.html.j2").is_file()


@dataclass(frozen=True)
class Composed:
    data: bytes  # the RFC 5322 bytes, verified: what the outbox stores
    message_id: str  # without the angle brackets


def compose(kind: str, *, to: str | None, from_addr: str, from_name: str, subject: str,
            context: dict, in_reply_to: str | None = None, pages: tuple[Page, ...] = (),
            dedup_key: str, domain: str, headers: tuple[tuple[str, str], ...] = ()
            ) -> EmailMessage:
    msg = _build(kind, to=to, from_addr=from_addr, from_name=from_name, subject=subject,
                 context=context, in_reply_to=in_reply_to, pages=pages, dedup_key=dedup_key,
                 domain=domain, headers=headers)
    _verify(msg, bytes(msg))
    return msg


def compose_bytes(kind: str, **kw) -> Composed:
    """compose() serialized once: those very bytes are verified and stored (serializing is
    most of a notice's cost). A plain notice (one text part, no To, no pages, not an
    answer) is filled into a skeleton built and verified once: the same bytes."""
    if (not kw.get("to") and not kw.get("pages") and not kw.get("in_reply_to")
            and not kw.get("headers") and kw.get("domain") and not _has_html(kind)):
        return _from_skeleton(kind, **kw)
    msg = _build(kind, **kw)
    # A header carrying a URL (List-Unsubscribe) must stay one unbroken line: folded at 78
    # the email package would RFC 2047-encode the URL, and no mail provider reads that.
    # Only the headers are written wider; the body was encoded when it was set.
    data = msg.as_bytes(policy=_WIDE) if kw.get("headers") else bytes(msg)
    _verify(msg, data)
    return Composed(data, str(msg["Message-ID"]).strip().strip("<>"))


_SKELETON_KEY = "skeleton"
_SKELETON_DIGEST = hashlib.sha256(_SKELETON_KEY.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class _Skeleton:
    """A plain notice's bytes cut where they vary: before the Date value, between it and
    the Message-ID digest, after the digest up to the body."""
    head: bytes
    middle: bytes
    tail: bytes


@lru_cache(maxsize=64)
def _skeleton(kind: str, from_addr: str, from_name: str, subject: str,
              domain: str) -> _Skeleton:
    # Built by the general path (so verified by _verify) with a known date, digest and
    # body; only those three vary between the notices it serves. Everything else (From,
    # Subject and their folding, the MIME headers) is fixed by the cache key.
    msg = _build(kind, to=None, from_addr=from_addr, from_name=from_name, subject=subject,
                 context={}, dedup_key=_SKELETON_KEY, domain=domain, body="")
    data = bytes(msg)
    _verify(msg, data)
    date = str(msg["Date"]).encode()
    head, sep, rest = data.partition(b"\nDate: " + date + b"\n")
    middle, sep2, tail = rest.partition(_SKELETON_DIGEST.encode())
    if not sep or not sep2 or b"\n\n" not in tail:
        raise ValueError("notice skeleton: Date or Message-ID not where expected")
    return _Skeleton(head + b"\nDate: ", b"\n" + middle, tail[:tail.index(b"\n\n") + 2])


def _from_skeleton(kind: str, *, from_addr: str, from_name: str, subject: str, context: dict,
                   dedup_key: str, domain: str, **_none) -> Composed:
    # The header and body encodings of the general path, without the email package's
    # object tree and generator: _encode_text is what set_content() itself calls.
    skeleton = _skeleton(kind, from_addr, from_name, subject, domain)
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:24]
    _, body = _encode_text(render_text(f"email/{kind}.txt.j2", **context), "utf-8",
                           "quoted-printable", _POLICY)
    data = b"".join((skeleton.head, format_datetime(utcnow()).encode(), skeleton.middle,
                     digest.encode(), skeleton.tail, body.encode("ascii")))
    return Composed(data, f"{digest}@{domain}")


def _build(kind: str, *, to: str | None, from_addr: str, from_name: str, subject: str,
           context: dict, in_reply_to: str | None = None, pages: tuple[Page, ...] = (),
           dedup_key: str, domain: str, headers: tuple[tuple[str, str], ...] = (),
           body: str | None = None) -> EmailMessage:
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = Address(display_name=_clean_header(from_name), addr_spec=from_addr)
    if to:  # the outbox adds To at send time, so stored bytes carry no address
        msg["To"] = to
    msg["Subject"] = _clean_header(subject)
    msg["Date"] = format_datetime(utcnow())
    # Deterministic Message-ID: a re-sent copy after a crash is recognisably the same mail.
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<{digest}@{domain}>" if domain else make_msgid()
    # A msg-id has angle brackets (RFC 5322 3.6.4), or clients cannot thread; an unusable
    # one is dropped rather than repeated.
    ref = _msg_id(in_reply_to) if in_reply_to else None
    if ref:
        msg["In-Reply-To"] = ref
        msg["References"] = ref
    msg["Auto-Submitted"] = "auto-replied" if in_reply_to else "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    for name, value in headers:  # e.g. List-Unsubscribe (RFC 8058) on a mailing
        msg[_clean_header(name)] = _clean_header(value)
    text = render_text(f"email/{kind}.txt.j2", **context) if body is None else body
    msg.set_content(text, cte="quoted-printable")
    if _has_html(kind):  # a kind with an HTML template also gets an HTML alternative
        msg.add_alternative(render_text(f"email/{kind}.html.j2", **context), subtype="html",
                            cte="quoted-printable")
    for page in pages:
        maintype, _, subtype = page.content_type.partition("/")
        msg.add_attachment(page.data, maintype=maintype, subtype=subtype or "octet-stream",
                           filename=_clean_header(page.filename) or "page")
    # Last: set_content clears Content-* headers and add_attachment moves them into a part.
    msg["Content-Language"] = "ru, en"
    return msg
