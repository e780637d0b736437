"""The hostile corpus, generated: every case of docs/research reliability.md (b) and more.

`cases()` returns Case objects whose `build()` makes the raw bytes on demand (some are
40 MB). `python -m tests.corpus.generate DIR` writes them out as .eml files, to seed the
fuzzer or to look at. Every letter-like case names a prisoner of the demo directory, so
the check reaches the rules, not only the parser; hostile values carry the marker
"injected.example", which must never show up in a header the gateway writes.
"""

from __future__ import annotations

import base64
import gzip
import io
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MARK = "injected.example"
TO = "letters@gateway.local"
RECIPIENT = "Петровой Марии Сергеевне"
UNKNOWN = "Неизвестному Адресату"
TEXT = ("Здравствуйте, Мария!\n\nПишу вам из Казани. Весна пришла рано, во дворе цветёт "
        "сирень, и я вспоминаю наши прогулки. Мы все о вас думаем и ждём домой.\n"
        "Берегите себя.\n\nОбнимаю, Ольга\n")

# What a case must end as. None: any visible state (not RECEIVED).
READY, IGNORED, NOT_SENT = "READY", "IGNORED", "NOT_SENT"


@dataclass(frozen=True)
class Case:
    name: str
    category: str
    build: Callable[[], bytes]
    expect: str | None = None


def _sender(name: str) -> str:
    local = "".join(c if c.isalnum() else "." for c in name.lower())[:40].strip(".")
    return f"{local}@example.org"


def mail(name: str, *, subject: str = RECIPIENT, body: bytes | str = TEXT,
         headers: list[tuple[str, str]] | None = None, from_: str | None = None,
         ctype: str = 'text/plain; charset="utf-8"', cte: str = "8bit",
         extra_raw_headers: bytes = b"", eol: bytes = b"\r\n") -> bytes:
    """A message from raw parts, no email-package help (so it can be broken on purpose)."""
    hdrs = [("From", from_ if from_ is not None else f"Ольга <{_sender(name)}>"), ("To", TO),
            ("Subject", subject), ("Date", "Thu, 26 Nov 2026 10:00:00 +0300"),
            ("Message-ID", f"<{name}.{len(name)}@example.org>"), ("MIME-Version", "1.0"),
            ("Content-Type", ctype), ("Content-Transfer-Encoding", cte)]
    for k, v in headers or []:  # replace ours of the same name; None only removes it
        hdrs = [h for h in hdrs if h[0].lower() != k.lower()]
        if v is not None:
            hdrs.append((k, v))
    head = b"".join(f"{k}: {v}".encode("utf-8", "surrogateescape") + eol for k, v in hdrs)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return head + extra_raw_headers + eol + body


def multipart(name: str, parts: list[bytes], *, subtype: str = "mixed", boundary: str = "b1",
              close: bool = True, **kw) -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
    if close:
        body += b"--" + boundary.encode() + b"--\r\n"
    return mail(name, ctype=f'multipart/{subtype}; boundary="{boundary}"', cte="7bit",
                body=body, **kw)


def part(ctype: str, payload: bytes, *, cte: str = "base64", disposition: str | None = None
         ) -> bytes:
    if cte == "base64":
        payload = base64.encodebytes(payload)
    head = f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: {cte}\r\n"
    if disposition:
        head += f"Content-Disposition: {disposition}\r\n"
    return head.encode("utf-8", "surrogateescape") + b"\r\n" + payload


def text_part(text: str = TEXT, charset: str = "utf-8") -> bytes:
    return part(f'text/plain; charset="{charset}"', text.encode(charset), cte="8bit")


def jpeg(width: int = 64, height: int = 48, exif: bool = False) -> bytes:
    from PIL import Image
    img = Image.new("RGB", (width, height), (120, 160, 200))
    out = io.BytesIO()
    if exif:
        data = Image.Exif()
        data[0x010F] = "SpyCam"  # Make
        data[0xA431] = "SERIAL-8842-XYZ"  # BodySerialNumber
        data[0x8825] = {1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)}  # GPS
        img.save(out, "JPEG", exif=data.tobytes())
    else:
        img.save(out, "JPEG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(
        b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(10):
            z.writestr(f"layer{i}.txt", b"\0" * (10 * 1024 * 1024))
    return out.getvalue()


def nested(depth: int) -> bytes:
    inner = text_part()
    for i in range(depth):
        b = f"d{i}"
        inner = (f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n--{b}\r\n'.encode()
                 + inner + f"\r\n--{b}--\r\n".encode())
    return mail(f"nested{depth}", ctype="multipart/mixed; boundary=\"outer\"", cte="7bit",
                body=b"--outer\r\n" + inner + b"\r\n--outer--\r\n")


def injections() -> list[Case]:
    """CR/LF and friends smuggled into every value that could reach a header we write."""
    payloads = {
        "q_crlf": f"=?UTF-8?Q?Hi=0D=0ABcc:_x@{MARK}?=",
        "q_lf": f"=?UTF-8?Q?Hi=0ABcc:_x@{MARK}?=",
        "b_lf": "=?UTF-8?B?" + base64.b64encode(f"Hi\nBcc: x@{MARK}".encode()).decode() + "?=",
        "b_cr": "=?UTF-8?B?" + base64.b64encode(f"Hi\rBcc: x@{MARK}".encode()).decode() + "?=",
        "nel": "=?UTF-8?B?" + base64.b64encode(f"Hi\u0085Bcc: x@{MARK}".encode()).decode() + "?=",
        "ls": "=?UTF-8?B?" + base64.b64encode(f"Hi\u2028Bcc: x@{MARK}".encode()).decode() + "?=",
        "nul": "=?UTF-8?B?" + base64.b64encode(f"Hi\0Bcc: x@{MARK}".encode()).decode() + "?=",
    }
    out = []
    for key, p in payloads.items():
        # The subject names nobody we know: the gateway answers, quoting the subject.
        out.append(Case(f"inject_subject_{key}", "encoded-word", lambda p=p: mail(
            f"inj-s-{p[:12]}", subject=f"{UNKNOWN} {p}")))
        out.append(Case(f"inject_from_name_{key}", "encoded-word", lambda p=p, k=key: mail(
            f"inj-f-{k}", subject=UNKNOWN, from_=f"{p} <inj.{k}@example.org>")))
    for key, value in {
        "msgid_crlf": f"<a@b>\r\nBcc: x@{MARK}",
        "msgid_space": f"<a@b> Bcc: x@{MARK}",
        "msgid_long": "<" + "a" * 5000 + "@b>",
        "msgid_angle": f"<<a@{MARK}>>",
        # No whitespace, so it survives as a msg-id; the email package would decode it
        # into a line break when set as In-Reply-To (CVE-2024-6923 on 3.11.7).
        "msgid_encoded_word": f"<=?UTF-8?Q?a=0ABcc:_x@{MARK}?=>",
        "msgid_encoded_word_bare": f"=?UTF-8?Q?a=0D=0ABcc:_x@{MARK}?=",
        "msgid_nul": "<a\0\0\0b@example.org>",  # found by fuzz/fuzz_parse.py
    }.items():
        raw = f"Message-ID: {value}\r\n".encode()
        out.append(Case(f"inject_{key}", "header", lambda raw=raw, k=key: mail(
            f"inj-{k}", subject=UNKNOWN, headers=[("Message-ID", None)],
            extra_raw_headers=raw)))
    return out


def charsets() -> list[Case]:
    out = []
    for cs in ("koi8-r", "windows-1251", "cp866", "iso-8859-5", "mac-cyrillic", "utf-8"):
        out.append(Case(f"charset_{cs}", "charset", lambda cs=cs: mail(
            f"cs-{cs}", ctype=f'text/plain; charset="{cs}"', body=TEXT.encode(cs)), READY))
        out.append(Case(f"charset_{cs}_qp", "charset", lambda cs=cs: mail(
            f"csqp-{cs}", ctype=f'text/plain; charset="{cs}"', cte="quoted-printable",
            body=_qp(TEXT.encode(cs)))))
        subject = "=?" + cs + "?B?" + base64.b64encode(RECIPIENT.encode(cs)).decode() + "?="
        out.append(Case(f"charset_{cs}_subject", "charset", lambda cs=cs, s=subject: mail(
            f"css-{cs}", subject=s)))
    mislabels = {
        "cp1251_as_koi8r": ("koi8-r", TEXT.encode("cp1251")),
        "koi8r_as_cp1251": ("windows-1251", TEXT.encode("koi8-r")),
        "unknown_8bit": ("unknown-8bit", TEXT.encode("cp1251")),
        "utf8_junk": ("utf-8 junk", TEXT.encode()),
        "charset_1": ("1", TEXT.encode()),
        "charset_empty": ("", TEXT.encode()),
        "utf7": ("utf-7", TEXT.encode("utf-7")),
        "utf16_no_bom": ("utf-16", TEXT.encode("utf-16-le")),
        "gb18030": ("gb18030", TEXT.encode("gb18030")),
        "invalid_utf8": ("utf-8", TEXT.encode()[:50] + b"\xff\xfe\xc3\x28" + TEXT.encode()[50:]),
        "nul_in_8bit": ("utf-8", TEXT.encode().replace(b" ", b"\0", 5)),
        "unknown_name": ("x-martian", TEXT.encode()),
    }
    for key, (cs, body) in mislabels.items():
        out.append(Case(f"charset_{key}", "charset", lambda cs=cs, b=body, k=key: mail(
            f"cs-{k}", ctype=f'text/plain; charset="{cs}"', body=b)))
    out += [
        Case("charset_undeclared_8bit_headers", "charset", lambda: mail(
            "undecl", headers=[("Subject", None)], from_=None,
            extra_raw_headers="Subject: Петровой Марии\r\n".encode("cp1251"))),
        Case("cte_uuencode", "charset", lambda: mail("uu", cte="x-uuencode",
                                                      body=b"begin 644 a\r\n#86)C\r\nend\r\n")),
        Case("cte_bad_base64_padding", "charset", lambda: mail(
            "b64pad", cte="base64", body=base64.b64encode(TEXT.encode())[:-3])),
        Case("cte_base64_garbage", "charset", lambda: mail(
            "b64junk", cte="base64", body=b"!!!@@@###" * 100)),
        Case("cte_qp_trailing_equals", "charset", lambda: mail(
            "qpend", cte="quoted-printable", body=_qp(TEXT.encode()) + b"=")),
        Case("cte_unknown", "charset", lambda: mail("ctebogus", cte="bogus-encoding")),
    ]
    return out


def _qp(data: bytes) -> bytes:
    import quopri
    return quopri.encodestring(data)


def structure() -> list[Case]:
    out = [Case(f"nested_{d}", "structure", lambda d=d: nested(d)) for d in (50, 1000, 5000)]
    out += [
        Case("fifty_thousand_empty_parts", "structure", lambda: multipart(
            "parts50k", [b"\r\n"] * 50_000)),
        Case("missing_boundary", "structure", lambda: mail(
            "noboundary", ctype="multipart/mixed", cte="7bit", body=b"--x\r\n\r\nhi\r\n--x--")),
        Case("empty_boundary", "structure", lambda: multipart("emptyb", [text_part()],
                                                              boundary="")),
        Case("boundary_prefix_b1_b10", "structure", lambda: mail(
            "b1b10", ctype='multipart/mixed; boundary="b1"', cte="7bit",
            body=b"--b10\r\n" + text_part() + b"\r\n--b1\r\n" + text_part() + b"\r\n--b1--\r\n")),
        Case("no_closing_boundary", "structure", lambda: multipart(
            "noclose", [text_part()], close=False)),
        Case("mixed_line_endings", "structure", lambda: mail("eol", eol=b"\r")[:200] + mail(
            "eol2", eol=b"\n")[200:]),
        Case("bare_lf", "structure", lambda: mail("barelf", eol=b"\n"), READY),
        Case("bare_cr_in_header", "structure", lambda: mail(
            "barecr", extra_raw_headers=b"X-Note: a\rb\r\n")),
        Case("nul_in_header", "structure", lambda: mail(
            "nulhdr", extra_raw_headers=b"X-Note: a\0b\r\n")),
        Case("no_blank_line", "structure", lambda: mail("noblank")[:-len(TEXT.encode()) - 2]
             + b"Body-Without-Gap here\r\n" + TEXT.encode()),
        Case("headers_only", "structure", lambda: mail("hdronly", body=b"")),
        Case("body_only", "structure", lambda: TEXT.encode()),
        Case("empty_multipart", "structure", lambda: multipart("emptymp", [])),
        Case("rfc822_nested_20", "structure", lambda: _rfc822_chain(20)),
        Case("alternative_without_text", "structure", lambda: multipart(
            "altnotext", [part("image/png", png_header_only(10, 10))], subtype="alternative")),
        Case("huge_preamble", "structure", lambda: mail(
            "preamble", ctype='multipart/mixed; boundary="b1"', cte="7bit",
            body=b"x" * 2_000_000 + b"\r\n--b1\r\n" + text_part() + b"\r\n--b1--\r\n")),
        Case("boundary_in_quotes_weird", "structure", lambda: multipart(
            "bq", [text_part()], boundary='a"b')),
        Case("multipart_digest_of_letters", "structure", lambda: multipart(
            "digest", [b"\r\n" + mail(f"d{i}") for i in range(5)], subtype="digest")),
        Case("content_type_garbage", "structure", lambda: mail("ctjunk", ctype="%%%/;;;;;")),
        Case("five_hundred_parts", "structure", lambda: multipart(
            "parts500", [text_part("часть\n")] * 500)),
    ]
    return out


def _rfc822_chain(depth: int) -> bytes:
    inner = mail("rfc822inner")
    for i in range(depth):
        inner = mail(f"rfc822-{i}", ctype="message/rfc822", cte="7bit", body=inner)
    return inner


def size() -> list[Case]:
    return [
        Case("attachment_40mb", "size", lambda: multipart("big40", [
            text_part(), part("application/octet-stream", b"\0" * (40 * 1024 * 1024),
                              disposition="attachment; filename=big.bin")])),
        Case("header_line_1mb", "size", lambda: mail("hdr1mb", extra_raw_headers=(
            b"X-Big: " + b"a" * 1024 * 1024 + b"\r\n"))),
        Case("subject_folded_64kb", "size", lambda: mail("subj64k", subject=RECIPIENT + "".join(
            "\r\n слово" for _ in range(10_000)))),
        Case("received_10k", "size", lambda: mail("recv10k", extra_raw_headers=b"".join(
            b"Received: from a by b; Thu, 26 Nov 2026 10:00:00 +0300\r\n" for _ in range(10_000)))),
        Case("zip_bomb", "size", lambda: multipart("zipbomb", [text_part(), part(
            "application/zip", zip_bomb(), disposition="attachment; filename=a.zip")])),
        Case("gzip_bomb", "size", lambda: multipart("gzbomb", [text_part(), part(
            "application/gzip", gzip.compress(b"\0" * (50 * 1024 * 1024)),
            disposition="attachment; filename=a.gz")])),
        Case("png_60000_square", "size", lambda: multipart("pngbomb", [text_part(), part(
            "image/png", png_header_only(60000, 60000),
            disposition="attachment; filename=big.png")])),
        Case("body_27mb", "size", lambda: mail("body27m", body=(TEXT * 85_000).encode())),
        Case("line_2mb", "size", lambda: mail("line2m", body=b"a" * 2_000_000)),
        Case("two_hundred_attachments", "size", lambda: multipart("att200", [text_part()] + [
            part("image/jpeg", jpeg(8, 8), disposition=f"attachment; filename=p{i}.jpg")
            for i in range(200)])),
    ]


def headers() -> list[Case]:
    dup = [(h, v) for h, v in (("From", "A <a@example.org>"), ("Subject", RECIPIENT),
                               ("Content-Type", "text/html"), ("Message-ID", "<dup@x>"))]
    out = [Case(f"duplicate_{h.lower()}", "header", lambda h=h, v=v: mail(
        f"dup-{h}", extra_raw_headers=f"{h}: {v}\r\n".encode())) for h, v in dup]
    froms = {
        "from_two_addresses": ("a@example.org, b@example.org", NOT_SENT),
        "from_group": ("friends: a@example.org, b@example.org;", NOT_SENT),
        "from_empty": ("", NOT_SENT),
        "from_quote_only": ('"', NOT_SENT),
        "from_cve_2023_27043_paren": ("alice@example.org)<bob@example.org>", NOT_SENT),
        "from_cve_2023_27043_at": ("alice@example.org@<bob@example.org>", NOT_SENT),
        "from_8000_comments": ("(x)" * 8000 + " a@example.org", None),
        "from_deep_parens": ("(" * 5000 + ")" * 5000 + " a@example.org", None),
        "from_homoglyph_org": ("Письма <lеtters@gateway.local>", None),  # Cyrillic е
        "from_own_address": (f"Gateway <{TO}>", NOT_SENT),
        "from_mailer_daemon": ("MAILER-DAEMON@example.org", NOT_SENT),
        "from_no_domain": ("someone", NOT_SENT),
        "from_idn": ("Ольга <ольга@пример.рф>", None),
    }
    for key, (value, expect) in froms.items():
        out.append(Case(key, "header", lambda v=value, k=key: mail(k, from_=v), expect))
    out += [
        Case("to_quote", "header", lambda: mail("toquote", headers=[("To", '"')])),
        Case("to_10k_semicolons", "header", lambda: mail("semi", headers=[("To", ";" * 10_000)])),
        Case("to_10k_commas", "header", lambda: mail("comma", headers=[("To", "," * 10_000)])),
        Case("to_1000_addresses", "header", lambda: mail("to1000", headers=[("To", ", ".join(
            f"u{i}@example.org" for i in range(1000)))])),
        Case("subject_8000_encoded_words", "header", lambda: mail("ew8000", subject=" ".join(
            ["=?UTF-8?Q?=D0=B0?="] * 8000))),
        Case("header_name_with_space", "header", lambda: mail(
            "namespace", extra_raw_headers=b"X Bad Name: value\r\n")),
        Case("whitespace_continuation", "header", lambda: mail(
            "wscont", extra_raw_headers=b"X-Folded: a\r\n \r\n\t\r\n b\r\n")),
        Case("missing_from", "header", lambda: mail("nofrom", headers=[("From", None)]),
             NOT_SENT),
        Case("missing_date_and_msgid", "header", lambda: mail(
            "nodate", headers=[("Date", None), ("Message-ID", None)])),
        Case("reply_to_differs", "privacy", lambda: mail(
            "replyto", headers=[("Reply-To", f"other@{MARK}")])),
        Case("sender_differs", "header", lambda: mail(
            "senderhdr", headers=[("Sender", f"relay@{MARK}")])),
        Case("in_reply_to_hostile", "header", lambda: mail(
            "irt", subject=UNKNOWN, headers=[("In-Reply-To", f"<x@y>\tBcc: z@{MARK}")])),
        Case("references_10k", "header", lambda: mail("refs", headers=[("References", " ".join(
            f"<r{i}@x>" for i in range(10_000)))])),
        Case("date_garbage", "header", lambda: mail("dategarbage",
                                                     headers=[("Date", "32 Foo 99999 99:99")])),
    ]
    return out


def encoded_words() -> list[Case]:
    return [
        Case("ew_in_quotes", "encoded-word", lambda: mail(
            "ewq", from_='"=?UTF-8?B?0J7Qu9GM0LPQsA==?=" <ewq@example.org>')),
        Case("ew_broken_koi8r", "encoded-word", lambda: mail("ewbroken",
                                                              subject="=?koi8-r?B?###?=")),
        Case("ew_unknown_charset", "encoded-word", lambda: mail("ewunk",
                                                                 subject="=?x-unknown?Q?a?=")),
        Case("ew_raw_8bit_mix", "encoded-word", lambda: mail(
            "ew8bit", headers=[("Subject", None)],
            extra_raw_headers="Subject: Петровой =?UTF-8?B?0JzQsNGA0LjQuA==?=\r\n".encode())),
        Case("ew_split_multibyte", "encoded-word", lambda: mail(
            "ewsplit", subject="=?UTF-8?B?0J8=?= =?UTF-8?B?0LXRgtGA0L7QstC+0Lk=?= Марии")),
        Case("ew_112kb", "encoded-word", lambda: mail("ewhuge", subject="=?UTF-8?Q?" + (
            "=D0=B0" * 18_000) + "?=")),
        Case("filename_rfc2231_traversal", "attachment", lambda: multipart("trav", [
            text_part(), part("image/jpeg", jpeg(),
                              disposition="attachment; filename*=UTF-8''..%2F..%2Fetc%2Fpasswd")])),
        Case("filename_rtlo", "attachment", lambda: multipart("rtlo", [
            text_part(), part("image/jpeg", jpeg(),
                              disposition="attachment; filename=\"photo\u202egpj.exe\"")])),
        Case("filename_crlf", "attachment", lambda: multipart("fncrlf", [
            text_part(), part("image/jpeg", jpeg(), disposition=(
                "attachment; filename*=UTF-8''a%0D%0ABcc%3A%20x%40" + MARK))])),
        Case("filename_10kb", "attachment", lambda: multipart("fnlong", [
            text_part(), part("image/jpeg", jpeg(),
                              disposition="attachment; filename=" + "a" * 10_000 + ".jpg")])),
    ]


def html() -> list[Case]:
    def h(name: str, markup: str, expect: str | None = None) -> Case:
        return Case(f"html_{name}", "html", lambda: mail(
            f"html-{name}", ctype='text/html; charset="utf-8"',
            body=f"<html><body><p>{TEXT}</p>{markup}</body></html>"), expect)
    out = [
        h("script", "<script>alert(1)</script>"),
        h("onerror", '<img src=x onerror="alert(1)">'),
        h("javascript_href", '<a href="javascript:alert(1)">клик</a>'),
        h("meta_refresh", f'<meta http-equiv="refresh" content="0;url=http://{MARK}">'),
        h("remote_pixel", f'<img src="http://{MARK}/p.gif" width=1 height=1>'),
        h("css_url", f'<div style="background:url(http://{MARK}/x)">x</div>'),
        h("iframe_srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
        h("svg_script", "<svg><script>alert(1)</script></svg>"),
        h("data_uri", '<img src="data:image/png;base64,iVBORw0KGgo=">'),
        h("nested_divs_10k", "<div>" * 10_000 + "x" + "</div>" * 10_000),
        h("style_1mb", "<style>" + "a{color:red}" * 90_000 + "</style>"),
        h("unclosed_comment", "<!-- never closed " + "x" * 10_000),
        Case("html_differs_from_text", "html", lambda: multipart("htmldiff", [
            text_part(), part('text/html; charset="utf-8"',
                              "<p>Совсем другой текст для цензора</p>".encode(), cte="8bit")],
            subtype="alternative")),
    ]
    return out


def attachments() -> list[Case]:
    def att(name: str, ctype: str, data: bytes, filename: str, expect: str | None = None
            ) -> Case:
        return Case(f"attach_{name}", "attachment", lambda: multipart(f"att-{name}", [
            text_part(), part(ctype, data, disposition=f'attachment; filename="{filename}"')]),
            expect)
    return [
        att("exe_as_jpg", "image/jpeg", b"MZ\x90\x00" + b"\0" * 4000, "photo.jpg"),
        att("pdf_with_js", "application/pdf",
            b"%PDF-1.4\n1 0 obj<</OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj\n%%EOF",
            "letter.pdf"),
        att("jpeg_zip_polyglot", "image/jpeg", jpeg() + zip_bomb()[:5000], "poly.jpg"),
        att("exif_gps_serial", "image/jpeg", jpeg(exif=True), "gps.jpg"),
        att("encrypted_zip", "application/zip", b"PK\x03\x04\x14\x00\x01\x00" + b"\0" * 200,
            "secret.zip"),
        att("zero_bytes", "image/jpeg", b"", "empty.jpg"),
        att("heic_fake", "image/heic", b"\0\0\0\x18ftypheic" + b"\0" * 100, "a.heic"),
        att("tiff", "image/tiff", b"II*\0" + b"\0" * 100, "a.tif"),
        att("garbage_png", "image/png", b"\x89PNG\r\n\x1a\n" + b"\xff" * 500, "a.png"),
        att("html_attachment", "text/html", b"<script>alert(1)</script>", "a.html"),
        att("octet_stream", "application/octet-stream", b"\x7fELF" + b"\0" * 100, "run"),
        Case("photo_inline_no_filename", "attachment", lambda: multipart("inline", [
            text_part(), part("image/jpeg", jpeg(), disposition="inline")], subtype="related")),
    ]


def loops() -> list[Case]:
    robot = [
        ("auto_submitted", [("Auto-Submitted", "auto-replied")]),
        ("auto_generated", [("Auto-Submitted", "auto-generated")]),
        ("precedence_bulk", [("Precedence", "bulk")]),
        ("precedence_junk", [("Precedence", "junk")]),
        ("precedence_list", [("Precedence", "list")]),
        ("list_id", [("List-Id", "<news.example.org>")]),
        ("list_unsubscribe", [("List-Unsubscribe", "<mailto:u@example.org>")]),
        ("return_path_null", [("Return-Path", "<>")]),
        ("x_autoreply", [("X-Autoreply", "yes")]),
    ]
    out = [Case(f"loop_{k}", "loop", lambda k=k, hs=hs: mail(f"loop-{k}", headers=hs), IGNORED)
           for k, hs in robot]
    out += [
        Case("loop_dsn", "loop", lambda: multipart("dsn", [
            text_part("Delivery failed\n"), part("message/delivery-status",
                                                 b"Reporting-MTA: dns; mx\r\n\r\n"
                                                 b"Final-Recipient: rfc822; x@example.org\r\n"
                                                 b"Action: failed\r\nStatus: 5.1.1\r\n",
                                                 cte="7bit")],
            subtype='report; report-type="delivery-status"',
            from_="Mail Delivery System <MAILER-DAEMON@example.org>"), IGNORED),
        Case("loop_out_of_office_subject", "loop", lambda: mail(
            "ooo", subject="Автоответ: Out of Office")),
        Case("loop_x_auto_response_suppress", "loop", lambda: mail(
            "xars", headers=[("X-Auto-Response-Suppress", "All")])),
        Case("loop_x_loop", "loop", lambda: mail("xloop", headers=[("X-Loop", TO)])),
        Case("auth_forged_foreign_ar", "authentication", lambda: mail("forgedar", headers=[
            ("Authentication-Results", "evil.example; dmarc=pass; dkim=pass")])),
        Case("auth_two_ar", "authentication", lambda: mail("twoar", extra_raw_headers=(
            b"Authentication-Results: mx.gateway.local; dmarc=fail\r\n"
            b"Authentication-Results: mx.gateway.local; dmarc=pass\r\n"))),
        Case("auth_dkim_without_from", "authentication", lambda: mail("dkimnofrom", headers=[
            ("DKIM-Signature", "v=1; a=rsa-sha256; d=example.org; s=s; h=subject:date; "
                               "bh=AAAA; b=AAAA")])),
        Case("auth_ar_dmarc_fail", "authentication", lambda: mail("dmarcfail", headers=[
            ("Authentication-Results", "mx.gateway.local; dmarc=fail header.from=example.org")])),
    ]
    return out


def privacy() -> list[Case]:
    return [
        Case("privacy_quoted_reply_address", "privacy", lambda: mail("quoted", body=TEXT + (
            "\nOn Mon, Ivan Petrov <ivan.petrov@example.net> wrote:\n> старое письмо\n"))),
        Case("privacy_signature_phone", "privacy", lambda: mail("sigphone", body=TEXT + (
            "\n-- \nОльга Иванова\n+7 916 123-45-67\n"))),
        Case("privacy_forward_third_parties", "privacy", lambda: mail("fwd", body=TEXT + (
            "\n---------- Forwarded message ---------\nFrom: Третий <third@example.net>\n"
            "To: Четвёртый <fourth@example.net>\n\nчужой текст\n"))),
        Case("privacy_address_in_body", "privacy", lambda: mail("inbody", body=TEXT + (
            "\nПишите мне: olga.private@example.net\n"))),
        Case("privacy_phone_in_subject", "privacy", lambda: mail(
            "subjphone", subject=RECIPIENT + " +7 916 123 45 67")),
    ]


def controls() -> list[Case]:
    """Ordinary letters that must pass: the corpus is worthless if it only rejects."""
    return [
        Case("control_utf8", "control", lambda: mail("ctl-utf8"), READY),
        Case("control_koi8r", "control", lambda: mail(
            "ctl-koi8", ctype='text/plain; charset="koi8-r"', body=TEXT.encode("koi8-r"),
            subject="=?koi8-r?B?" + base64.b64encode(RECIPIENT.encode("koi8-r")).decode() + "?="),
            READY),
        Case("control_cp1251", "control", lambda: mail(
            "ctl-1251", ctype='text/plain; charset="windows-1251"', body=TEXT.encode("cp1251"),
            subject="=?windows-1251?Q?" + "".join(f"={b:02X}" for b in RECIPIENT.encode(
                "cp1251")) + "?="), READY),
        Case("control_one_photo", "control", lambda: multipart("ctl-photo", [
            text_part(), part("image/jpeg", jpeg(640, 480),
                              disposition='attachment; filename="photo.jpg"')]), READY),
        Case("control_long_letter", "control", lambda: mail("ctl-long", body=TEXT + (
            "Сегодня расскажу, как прошла неделя. " * 60) + "\nОльга\n"), READY),
        Case("control_folded_from", "control", lambda: mail("ctl-fold", from_=(
            "=?UTF-8?B?0J7Qu9GM0LPQsCDQodC80LjRgNC90L7QstCw?=\r\n <ctl.fold@example.org>")),
            READY),
        Case("control_qp_utf8", "control", lambda: mail(
            "ctl-qp", cte="quoted-printable", body=_qp(TEXT.encode())), READY),
        Case("control_alternative", "control", lambda: multipart("ctl-alt", [
            text_part(), part('text/html; charset="utf-8"',
                              f"<p>{TEXT}</p>".encode(), cte="8bit")], subtype="alternative"),
            READY),
    ]


def cases() -> list[Case]:
    found = (structure() + size() + headers() + encoded_words() + injections() + charsets()
             + html() + attachments() + loops() + privacy() + controls())
    names = [c.name for c in found]
    assert len(names) == len(set(names)), "case names must be unique"
    return found


def main(argv: list[str]) -> None:
    """generate.py DIR [MAX_BYTES]: write every case (up to MAX_BYTES each) as DIR/name.eml."""
    out = Path(argv[1] if len(argv) > 1 else "corpus")
    limit = int(argv[2]) if len(argv) > 2 else None
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for case in cases():
        raw = case.build()
        if limit is None or len(raw) <= limit:
            (out / f"{case.name}.eml").write_bytes(raw)
            written += 1
    print(f"{written} messages in {out}")


if __name__ == "__main__":
    main(sys.argv)
