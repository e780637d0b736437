"""Raw mail bytes -> ParsedLetter: the letter as its writer meant it, who wrote it, to whom,
and whether a robot sent it.

Parsing is done from bytes (never text decoded beforehand) by the stdlib ``email`` package
with ``policy.default``, inside limits checked *before* the parser runs (size, header block,
line length, MIME boundaries) and while walking (depth, part count, decoded size). A message
that breaks a limit or the parser raises ``UnparseableMessage`` with a readable reason: the
pipeline QUARANTINES it for a person and never retries it.

The pipeline runs this parse through ``gateway.mail.bounded``: in a persistent worker process
with an address-space limit and a wall-time limit.
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.policy import EmailPolicy

from gateway.mail.attachments import Attachment, Declined, carry, safe_filename
from gateway.mail.automated import automated_reason
from gateway.mail.charsets import Decoded, decode_text
from gateway.mail.cleanup import clean_letter_text, forward_note, forwarded_subject, html_to_text
from gateway.mail.documents import COVER_NOTE, Document, kind_of, read_document
from gateway.mail.header_classes import HEADER_CLASSES
from gateway.mail.senders import addresses_in, clean_header_text, decode_header_text, sender_of

__all__ = [
    "Attachment",
    "ParseLimits",
    "ParsedLetter",
    "UnparseableMessage",
    "parse_message",
]


@dataclass(frozen=True)
class ParseLimits:
    max_bytes: int = 30 * 1024 * 1024  # raw size; the watcher checks RFC822.SIZE against it
    max_header_bytes: int = 64 * 1024  # the top-level header block
    max_header_line_bytes: int = 8 * 1024  # one physical header line
    max_line_bytes: int = 1024 * 1024  # one body line (8bit HTML can be long, not endless)
    max_boundaries: int = 100  # "boundary=" parameters: bounds nesting before the parser runs
    max_depth: int = 10
    max_parts: int = 100
    max_decoded_bytes: int = 60 * 1024 * 1024  # all parts after base64/QP decoding
    max_text_chars: int = 500_000
    max_photos: int = 20
    max_attachment_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    wall_seconds: float = 10.0  # parse_message_bounded only
    memory_bytes: int = 1024 * 1024 * 1024  # parse_message_bounded only (RLIMIT_AS of a worker)


@dataclass(frozen=True)
class ParsedLetter:
    message_id: str | None  # without angle brackets; None if missing or unusable
    sender: str | None  # the ONE From address (None if zero or several / unsafe)
    sender_name: str | None
    return_path: str | None  # "" for the null path "<>", None when there is no Return-Path
    recipients: tuple[str, ...]  # To + Cc + Delivered-To (+ X-Original-To) addresses
    subject: str
    text: str  # decoded, HTML->text, quotes/signature cut
    attachments: tuple[Attachment, ...]
    declined: tuple[tuple[str, str], ...]  # (filename, reason) not carried
    automated: str | None  # why this is robot mail, else None
    charset_step: str  # worst ladder step among the body parts ("empty" if no body text)
    in_reply_to: tuple[str, ...]  # In-Reply-To + References ids, without angle brackets
    sender_problem: str | None = None  # why sender is None (English), for the organizer
    defects: tuple[str, ...] = field(default=())  # parser defects worth showing a person
    auth_results: tuple[str, ...] = ()  # raw Authentication-Results values, top first
    # Where a forwarding writer names the addressee: their note above the forwarded text, and
    # the forwarded message's subject (weaker sources for addressing than the mail's own).
    forward_notes: tuple[str, ...] = ()
    unreadable: str | None = None  # the text could not be recovered (English): a person looks
    # The letter was only a cover note for a document that could not be read: why (en, ru).
    document_problem: tuple[str, str] | None = None


class UnparseableMessage(Exception):
    """The message cannot be understood; ``reason`` (English) goes to the quarantine."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self):  # survive pickling across the worker pipe
        return (UnparseableMessage, (self.reason,))


_STEP_RANK = {"empty": 0, "declared": 1, "utf-8": 2, "detected": 3, "replacement": 4}
_SILENT_TYPES = {"application/pgp-signature", "application/pkcs7-signature",
                 "application/x-pkcs7-signature", "message/delivery-status",
                 "message/disposition-notification", "text/rfc822-headers"}
_MSGID = re.compile(r"<([^<>\s\x00-\x1f\x7f]{1,500})>")  # one printable token, never a control
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset\s*=\s*[\"']?([A-Za-z0-9_.:\-]{1,40})", re.I)


class _FetchOncePolicy(EmailPolicy):
    """policy.default, but each header value is parsed once per message rather than at every
    get(): a part's Content-Type is read a dozen times (type, charset, name, format...), and
    parsing it was a third of the parse. Header objects are immutable, so sharing is safe."""

    _parsed: dict | None = None  # (name, raw value) -> header object, for one message

    def header_fetch_parse(self, name, value):
        if self._parsed is None or hasattr(value, "name"):
            return super().header_fetch_parse(name, value)
        key = (name, value)
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = _known_header(key, lambda: super(
                _FetchOncePolicy, self).header_fetch_parse(name, value))
        return found


# Header objects by (name, raw value) across messages too: most messages carry the same
# Content-Type values ('text/plain; charset="utf-8"'), whose parse is a pure function of
# the text. Only values of ordinary length, and a bounded number, so hostile mail cannot
# fill the parse worker's memory.
_KNOWN_HEADERS: dict[tuple[str, str], object] = {}
_KNOWN_HEADERS_MAX = 256
_KNOWN_HEADER_CHARS = 300


# Only headers whose values repeat from letter to letter: a Message-ID, a Date or a Subject
# is new each time, and remembering them emptied the memory every few dozen letters and
# grew the parse worker by ~20 MB (bench run 9).
_REPEATING = frozenset({"content-type", "content-transfer-encoding", "content-disposition",
                        "mime-version", "to"})


def _known_header(key: tuple[str, str], parse):
    if len(key[1]) > _KNOWN_HEADER_CHARS or key[0].lower() not in _REPEATING:
        return parse()
    found = _KNOWN_HEADERS.get(key)
    if found is None:
        if len(_KNOWN_HEADERS) >= _KNOWN_HEADERS_MAX:
            _KNOWN_HEADERS.clear()
        found = _KNOWN_HEADERS[key] = parse()
    return found


def parse_message(raw: bytes, *, own_addresses: frozenset[str] = frozenset(),
                  limits: ParseLimits = ParseLimits()) -> ParsedLetter:
    """Parse raw message bytes in this process. Raises UnparseableMessage."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError("parse_message takes the raw bytes of the message")
    raw = bytes(raw)
    check_raw_limits(raw, limits)
    try:
        msg = email.message_from_bytes(raw, policy=_FetchOncePolicy(
            _parsed={}, header_factory=HEADER_CLASSES))
        return _ParseRun(msg, own_addresses, limits).letter()
    except UnparseableMessage:
        raise
    except RecursionError:
        raise UnparseableMessage("the MIME structure is nested too deeply to read") from None
    except MemoryError:
        raise UnparseableMessage("the message needs too much memory to read") from None
    except Exception as exc:  # the stdlib parser has open crash bugs on hostile input
        raise UnparseableMessage(
            f"the message could not be read ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None


def check_raw_size(raw: bytes, limits: ParseLimits) -> None:
    """The message is not empty and not over the size limit: checked before a message is
    shipped to a parse worker (the rest of check_raw_limits is the worker's to run)."""
    if not raw or raw.isspace():  # what strip() would empty, without copying the message
        raise UnparseableMessage("the message is empty")
    if len(raw) > limits.max_bytes:
        raise UnparseableMessage(
            f"the message is {len(raw) // 1_000_000} MB, more than the "
            f"{limits.max_bytes // 1_000_000} MB limit"
        )


def check_raw_limits(raw: bytes, limits: ParseLimits) -> None:
    check_raw_size(raw, limits)
    end = _header_end(raw)
    header = raw[:end] if end >= 0 else raw
    if len(header) > limits.max_header_bytes:
        raise UnparseableMessage(
            f"the header block is larger than {limits.max_header_bytes // 1024} KB"
        )
    if max(map(len, header.split(b"\n")), default=0) > limits.max_header_line_bytes:
        raise UnparseableMessage(
            f"a header line is longer than {limits.max_header_line_bytes // 1024} KB"
        )
    if max(map(len, raw.split(b"\n")), default=0) > limits.max_line_bytes:
        raise UnparseableMessage(f"a line is longer than {limits.max_line_bytes // 1024} KB")
    boundaries = len(re.findall(rb"(?i)boundary\s*=", raw))
    if boundaries > limits.max_boundaries:
        raise UnparseableMessage(f"the message declares {boundaries} MIME boundaries")
    delimiters = raw.count(b"\n--")
    if delimiters > 4 * limits.max_parts + 50:
        raise UnparseableMessage(f"the message has too many MIME parts ({delimiters} delimiters)")


def _header_end(raw: bytes) -> int:
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else -1


class _ParseRun:
    """One message's walk: collects body texts and attachments under the limits."""

    def __init__(self, msg: EmailMessage, own_addresses: frozenset[str], limits: ParseLimits):
        self.msg = msg
        self.own = frozenset(a.lower() for a in own_addresses)
        self.limits = limits
        self.parts = 0
        self.decoded_bytes = 0
        self.plain: list[Decoded] = []
        self.html: list[Decoded] = []
        self.files: list[tuple[str | None, bytes, str]] = []  # (filename, data, declared type)
        self.declined: list[tuple[str, str]] = []
        self.defects: list[str] = []
        self.forwarded: list[tuple[str, str]] = []  # (text, charset step) of attached messages
        self.forwarded_subjects: list[str] = []
        self.text_defects: list[str] = []  # damage found while decoding the body text

    # -- headers ---------------------------------------------------------------------------
    def _raw(self, name: str) -> list[str]:
        return [str(v) for k, v in self.msg.raw_items() if k.lower() == name.lower()]

    def _subject(self) -> str:
        values = self._raw("Subject")
        if len(values) > 1:
            self.defects.append(f"{len(values)} Subject headers")
        return clean_header_text(decode_header_text(values[0])) if values else ""

    def _message_id(self) -> str | None:
        values = self._raw("Message-ID")
        if not values:
            return None
        if len(values) > 1:
            self.defects.append(f"{len(values)} Message-ID headers")
        found = _MSGID.search(values[0])
        if found:
            return found.group(1)
        bare = values[0].strip()
        return bare if bare and len(bare) <= 500 and re.fullmatch(r"[!-;=?-~]+", bare) else None

    def _references(self) -> tuple[str, ...]:
        ids: list[str] = []
        for name in ("In-Reply-To", "References"):
            for value in self._raw(name):
                for found in _MSGID.findall(value):
                    if found not in ids:
                        ids.append(found)
        return tuple(ids[:100])

    def _return_path(self) -> str | None:
        values = self._raw("Return-Path")
        if not values:
            return None
        value = values[0].strip()  # the topmost one, added by our own delivery agent
        inner = value[1:-1].strip() if value.startswith("<") and value.endswith(">") else value
        if inner == "":
            return ""
        return inner.lower() if re.fullmatch(r"[^\s<>@]+@[^\s<>@]+", inner) else None

    # -- body ------------------------------------------------------------------------------
    def _payload(self, part: Message) -> bytes:
        try:
            data = part.get_payload(decode=True)
        except Exception as exc:
            self.defects.append(f"undecodable part ({type(exc).__name__})")
            return b""
        data = data if isinstance(data, bytes) else b""
        self.decoded_bytes += len(data)
        if self.decoded_bytes > self.limits.max_decoded_bytes:
            raise UnparseableMessage(
                f"the decoded parts exceed {self.limits.max_decoded_bytes // 1_000_000} MB"
            )
        return data

    def _walk(self, part: Message, depth: int, want_text: bool) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise UnparseableMessage(f"the message has more than {self.limits.max_parts} parts")
        if depth > self.limits.max_depth:
            raise UnparseableMessage(f"the MIME structure is deeper than {self.limits.max_depth}")
        ctype = _content_type(part)
        if ctype == "message/rfc822" or ctype == "message/global":
            self._walk_forwarded(part, depth)
            return
        if part.is_multipart():
            self._walk_multipart(part, ctype, depth, want_text)
            return
        disposition = _disposition(part)
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            if want_text:
                decoded = self._decode_text(part, ctype)
                (self.plain if ctype == "text/plain" else self.html).append(decoded)
            return
        if ctype in _SILENT_TYPES:
            return
        data = self._payload(part)
        if ctype in ("application/pgp-encrypted", "application/pkcs7-mime",
                     "application/x-pkcs7-mime"):
            self.declined.append((safe_filename(filename, self.parts),
                                  "encrypted mail cannot be read; please send it unencrypted"))
            return
        self.files.append((filename, data, ctype))

    def _walk_forwarded(self, part: Message, depth: int) -> None:
        """A letter forwarded as an attachment: its text (and photos) are the writer's letter;
        its headers (the original sender's address) are not."""
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        if not isinstance(inner, Message):
            self.declined.append((safe_filename(_filename(part), self.parts) or "message",
                                  "the attached message could not be read"))
            return
        sub = _ParseRun(inner, self.own, self.limits)
        sub.parts, sub.decoded_bytes = self.parts, self.decoded_bytes
        sub._walk(inner, depth + 1, want_text=True)
        self.parts, self.decoded_bytes = sub.parts, sub.decoded_bytes
        text, step = sub._body()
        self.forwarded.append((text, step))
        self.forwarded_subjects.extend(clean_header_text(decode_header_text(str(v)))
                                       for k, v in inner.raw_items() if k.lower() == "subject")
        self.forwarded.extend(sub.forwarded)
        self.forwarded_subjects.extend(sub.forwarded_subjects)
        self.files.extend(sub.files)
        self.declined.extend(sub.declined)
        self.defects.extend(sub.defects)

    def _walk_multipart(self, part: Message, ctype: str, depth: int, want_text: bool) -> None:
        children = part.get_payload()
        if not isinstance(children, list):
            return
        if ctype == "multipart/alternative" and want_text:
            chosen = self._choose_alternative(children)
            for i, child in enumerate(children):
                self._walk(child, depth + 1, want_text=(i == chosen))
        elif ctype == "multipart/related":
            for i, child in enumerate(children):
                self._walk(child, depth + 1, want_text=want_text and i == 0)
        elif ctype in ("multipart/signed", "multipart/report"):
            for i, child in enumerate(children):
                self._walk(child, depth + 1, want_text=want_text and i == 0)
        elif ctype == "multipart/encrypted":
            self.declined.append(("message", "encrypted mail cannot be read; please send it "
                                             "unencrypted"))
            self.parts += len(children)
        else:
            for child in children:
                self._walk(child, depth + 1, want_text)

    def _choose_alternative(self, children: list[Message]) -> int:
        """text/plain if it says something, else HTML, else a nested multipart."""
        ranked: list[tuple[int, int]] = []
        for i, child in enumerate(children):
            ctype = _content_type(child)
            if ctype == "text/plain":
                try:
                    has_text = bool((child.get_payload(decode=True) or b"").strip())
                except Exception:
                    has_text = False
                ranked.append((0 if has_text else 3, i))
            elif ctype == "text/html":
                ranked.append((1, i))
            elif ctype.startswith("multipart/"):
                ranked.append((2, i))
        return min(ranked)[1] if ranked else 0

    def _decode_text(self, part: Message, ctype: str) -> Decoded:
        data = self._payload(part)
        try:  # decoding records damage (bad base64) on the part
            self.text_defects.extend(type(d).__name__ for d in part.defects)
        except Exception:
            pass
        try:
            declared = part.get_content_charset()
        except Exception:
            declared = None
        if declared is None and ctype == "text/html":
            meta = _META_CHARSET.search(data[:4096])
            declared = meta.group(1).decode("ascii") if meta else None
        decoded = decode_text(data, declared)
        text = decoded.text
        if ctype == "text/plain" and _param(part, "format").lower() == "flowed":
            text = _unflow(text, delsp=_param(part, "delsp").lower() == "yes")
        if ctype == "text/html":
            text = html_to_text(text)
        return Decoded(text, decoded.step, decoded.charset)

    def _body(self) -> tuple[str, str]:
        chosen = self.plain or self.html
        if not chosen:
            return "", "empty"
        text = "\n\n".join(d.text.strip("\n") for d in chosen if d.text.strip())
        worst = max(chosen, key=lambda d: _STEP_RANK[d.step.split(":")[0]])
        return text, worst.step

    # -- attachments -----------------------------------------------------------------------
    def _carry_files(self, *, want_documents: bool
                     ) -> tuple[tuple[Attachment, ...], list[tuple[str, str]], list[object]]:
        """Photos carried, files declined, and (when the text is only a cover note) the
        documents read: Document or Unreadable, in order."""
        carried: list[Attachment] = []
        declined = list(self.declined)
        documents: list[object] = []
        seen: set[bytes] = set()
        for filename, data, declared in self.files:
            digest = hashlib.sha256(data).digest()
            if digest in seen:  # the same image in two alternative branches
                continue
            seen.add(digest)
            kind = kind_of(data, declared, filename) if want_documents else None
            if kind is not None:
                read = read_document(data, kind)
                documents.append(read)
                if not isinstance(read, Document):
                    declined.append((safe_filename(filename, len(seen)), read.reason_en))
                continue
            if len(carried) >= self.limits.max_photos:
                declined.append((safe_filename(filename, len(seen)),
                                 f"only {self.limits.max_photos} photos can be sent with a letter"))
                continue
            outcome = carry(filename, data, len(carried) + 1,
                            max_bytes=self.limits.max_attachment_bytes,
                            max_pixels=self.limits.max_image_pixels)
            if isinstance(outcome, Declined):
                declined.append((outcome.filename, outcome.reason))
            else:
                carried.append(outcome)
        return tuple(carried), declined, documents

    # -- all -------------------------------------------------------------------------------
    def letter(self) -> ParsedLetter:
        subject = self._subject()
        sender = sender_of(self.msg)
        return_path = self._return_path()
        self._walk(self.msg, 0, want_text=True)
        text, step = self._body()
        too_long = f"the letter text is longer than {self.limits.max_text_chars} characters"
        if len(text) > 2 * self.limits.max_text_chars:  # refuse before the costly cleaning
            raise UnparseableMessage(too_long)
        notes = [forward_note(text, subject), forwarded_subject(text)]
        text = clean_letter_text(text, subject)
        self.defects.extend(_defects(self.msg))
        unreadable = _unreadable(text, self.defects, self.text_defects, step)
        if self.forwarded:
            notes = [text, *self.forwarded_subjects]
            inner = [clean_letter_text(t) for t, _ in self.forwarded]
            text = "\n\n".join(t for t in (text, *inner) if t.strip())
            unreadable = unreadable if not text.strip() else None
        if len(text) > self.limits.max_text_chars:
            raise UnparseableMessage(too_long)
        cover = _is_cover_note(text)
        attachments, declined, documents = self._carry_files(want_documents=cover)
        document_problem = None
        if documents:
            texts = [d.text for d in documents if isinstance(d, Document)]
            if texts:
                text = "\n\n".join([_without_cover_lines(text), *texts]).strip()
                if len(text) > self.limits.max_text_chars:
                    raise UnparseableMessage(too_long)
            else:
                problem = documents[0]
                document_problem = (problem.reason_en, problem.reason_ru)
        automated = automated_reason(
            self.msg.raw_items(),
            content_type=_content_type(self.msg),
            sender=sender.address,
            return_path=return_path,
            subject=subject,
            own_addresses=self.own,
        )
        return ParsedLetter(
            message_id=self._message_id(),
            sender=sender.address,
            sender_name=sender.name,
            return_path=return_path,
            recipients=addresses_in(self.msg, ("To", "Cc", "Delivered-To", "X-Original-To")),
            subject=subject,
            text=text,
            attachments=attachments,
            declined=tuple(declined),
            automated=automated,
            charset_step=step,
            in_reply_to=self._references(),
            sender_problem=sender.problem,
            defects=tuple(dict.fromkeys(self.defects))[:20],
            auth_results=tuple(v[:2000] for v in self._raw("Authentication-Results")[:20]),
            forward_notes=tuple(n for n in notes if n and n.strip()),
            unreadable=unreadable,
            document_problem=document_problem,
        )


def _is_cover_note(text: str) -> bool:
    """Nothing but a line or two saying the letter is attached (or no text at all)."""
    body = [line for line in text.split("\n") if line.strip()
            and not re.match(r"^\s*(кому|для|to)\s*:", line, re.IGNORECASE)]
    return sum(map(len, body)) <= 200 and (not body or any(COVER_NOTE.search(b) for b in body))


def _without_cover_lines(text: str) -> str:
    return "\n".join(line for line in text.split("\n")
                     if not (COVER_NOTE.search(line) and len(line) <= 120)).strip()


# Control characters other than newline and tab: a sign of bytes decoded wrongly.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
# Parser defects that mean the body was lost, not merely untidy.
_BROKEN_BODY = ("undecodable part", "StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect",
                "MultipartInvariantViolationDefect", "InvalidBase64", "MissingHeaderBodySeparator")


def _unreadable(text: str, defects: list[str], text_defects: list[str],
                step: str) -> str | None:
    """Why the text cannot be trusted as what the writer wrote, if it cannot: then a person
    looks, and the writer is never told "recipient not found" for mail nobody could read."""
    damaged = [d for d in text_defects if d.startswith("InvalidBase64")]
    if damaged and step.startswith(("detected", "replacement")):
        # Bytes shifted by broken base64 decode as mojibake in some charset: not the letter.
        return f"the text's base64 is damaged ({damaged[0]}) and what decodes is not readable"
    broken = text.count("\ufffd") + len(_CONTROL.findall(text))
    # Letters are counted (a loop over every character) only for a text with broken ones.
    if broken and broken * 5 > sum(ch.isalpha() for ch in text) + broken:
        return f"the text is mostly undecodable bytes ({broken} broken characters)"
    lost = [d for d in defects if d.startswith(_BROKEN_BODY)]
    if not text.strip() and lost:
        return "the body could not be recovered (" + ", ".join(dict.fromkeys(lost)) + ")"
    return None


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return "attachment"


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:
        return None
    if isinstance(name, tuple):  # an undecoded RFC 2231 triple
        name = email.utils.collapse_rfc2231_value(name)
    return decode_header_text(str(name)) if name else None


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return value if isinstance(value, str) else ""


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676 format=flowed: lines ending in a space continue on the next line."""
    out: list[str] = []
    buf = ""
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if line.startswith(" "):  # space-stuffing
            line = line[1:]
        if line.endswith(" ") and line != "-- ":
            buf += line[:-1] if delsp else line
            continue
        out.append(buf + line)
        buf = ""
    if buf:
        out.append(buf)
    return "\n".join(out)


def _defects(msg: EmailMessage) -> list[str]:
    try:
        return [type(d).__name__ for d in msg.defects][:10]
    except Exception:
        return []
