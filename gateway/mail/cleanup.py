"""The letter as its writer meant it: HTML turned into text, quoted history, forwarded
headers and signatures cut (they leak addresses and phone numbers of the writer and others).

Rules, from what the clients our writers use actually produce:

* a reply's quoted history is cut: after an attribution line followed by ">" quotes only the
  quoted block goes (a writer who answers below the quote, bottom-posting as Thunderbird
  does, keeps their text); an attribution line followed by unquoted text, or
  ("On … wrote:", "… пишет:", "… написал(а):", Gmail-ru "пн, 3 июн. 2024 г. в 12:00, Имя
  <addr>:", Mail.ru "Понедельник, 3 июня 2024, 12:00 +03:00 от Имя <addr>:", Yandex
  "03.06.2024, 12:00, "Имя" <addr>:"), "-----Original Message-----" / "Исходное сообщение",
  an Outlook "From:/Sent:" block cut everything from there on; lines starting with ">" are
  dropped wherever they are;
* a forward keeps the forwarded text (it may be the letter itself) but loses its marker and
  header block ("From:", "Date:", "От кого:", "Кому:", "Тема:" …); such a header block pasted
  without a marker goes too;
* a signature is cut at "-- " (or "--") near the end, and mobile footers ("Sent from my
  iPhone", "Отправлено с iPhone", "Отправлено из мобильной Почты Mail.ru", "Get Outlook for
  iOS" …) are cut; after a sign-off with no "-- " ("С уважением,", "Best regards,") the name
  stays and what follows it (phones, addresses, company lines) goes;
* in HTML, quote and signature containers of Gmail, Outlook, Thunderbird, Apple Mail, Yahoo and
  Proton are removed before the text is made.
"""

from __future__ import annotations

import re
import textwrap

import lxml.html
from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig
from lxml import etree

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\u2028\u2029\ufeff]")

_REPLY_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(original\s+message|исходное\s+сообщение|ursprüngliche\s+nachricht|"
    r"message\s+d'origine)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_FORWARD_SEPARATOR = re.compile(
    r"^\s*(-{2,}\s*(forwarded\s+message|пересылаемое\s+сообщение|перенаправленное\s+сообщение|"
    r"пересланное\s+сообщение|weitergeleitete\s+nachricht|message\s+transféré)\s*-{2,}|"
    r"begin\s+forwarded\s+message:|начало\s+переадресованного\s+сообщения:|"
    r"переадресованное\s+сообщение:)\s*$",
    re.IGNORECASE,
)
_FORWARD_END = re.compile(
    r"^\s*-{2,}\s*(конец\s+пересылаемого\s+сообщения|end\s+of\s+forwarded\s+message)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION = re.compile(
    r"^\s*(>\s*)*("
    r"(on|am|le|el|op)\s.{4,300}(wrote|schrieb|a\s+écrit|escribió|schreef)\s*:"
    r"|.{0,300}(пишет|написал\(а\)|написала|написал|писал\(а\)|писала|писал)\s*:"
    r")\s*$",
    re.IGNORECASE,
)
# "<date>, Name <addr>:" with no verb: Gmail in Russian, Mail.ru, Yandex.
_ADDRESS_ATTRIBUTION = re.compile(r"^\s*(>\s*)*(?=.*\d).{0,300}<[^<>\s]+@[^<>\s]+>\s*\"?:\s*$")
_HEADER_FROM = re.compile(r"^\s*\*?(from|от|von|de|från)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT = re.compile(
    r"^\s*\*?(sent|date|отправлено|дата|gesendet|datum|envoyé|date\s+d'envoi)\s*:", re.IGNORECASE
)
_HEADER_LINE = re.compile(
    r"^\s*\*?(from|to|cc|bcc|date|sent|subject|reply-to|от|от\s+кого|кому|копия|дата|"
    r"отправлено|тема|ответить|von|an|betreff|gesendet|de|à|objet|envoyé)\s*:",
    re.IGNORECASE,
)
_SENDER_HEADER = re.compile(r"^\s*\*?(from|от|от\s+кого)\s*:", re.IGNORECASE)
_SIGN_OFF = re.compile(
    r"^\s*(с\s+уважением|с\s+наилучшими\s+пожеланиями|best\s+regards|kind\s+regards|"
    r"warm\s+regards|regards|best\s+wishes|sincerely|yours\s+sincerely|cheers)\s*[,.!]?\s*$",
    re.IGNORECASE)
_CONTACT_LIKE = re.compile(r"\d{3}|@|https?://|www\.|\b(ул|д|кв|тел|моб|tel|phone)\b\.?",
                           re.IGNORECASE)
_UNDERSCORE_RULE = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_DASHES = re.compile(r"^--\s?$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(sent\s+from\s+my\s|sent\s+from\s+(mail|outlook|yahoo|yandex|mail\.ru)|"
    r"sent\s+with\s+proton|sent\s+with\s+protonmail|sent\s+via\s|get\s+outlook\s+for\s|"
    r"отправлено\s+(с|из|через)\s|отправлено\s+с\s+помощью|получить\s+outlook\s+для\s|"
    r"скачайте\s+outlook|отправлено\s+из\s+мобильной)",
    re.IGNORECASE,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|fw|пересл|пер|переслать|wg)\s*:", re.IGNORECASE)

# HTML containers that hold quoted history or signatures, by client.
_HTML_DROP = [
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote_container ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_attr ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-cite-prefix ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' moz-signature ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' protonmail_quote ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' protonmail_signature_block ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' js-signature ')]",
    "//*[@id='Signature' or @id='signature' or @id='divSignature']",
    "//*[@data-signature-widget='container']",
    "//head | //script | //style | //template | //iframe | //object | //svg",
]
# Outlook: everything from these markers to the end of their parent is quoted history.
_HTML_CUT_FROM = "//*[@id='divRplyFwdMsg' or @id='appendonsend' or @id='mail-editor-reference-message-container']"


def html_to_text(html: str) -> str:
    """HTML (already decoded) -> readable text with block line breaks, quotes and signatures
    dropped. No remote content is loaded; scripts and styles never reach the text."""
    if not html.strip():
        return ""
    try:
        doc = lxml.html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    for marker in doc.xpath(_HTML_CUT_FROM):
        parent = marker.getparent()
        if parent is None:
            continue
        for sibling in list(marker.itersiblings()):
            parent.remove(sibling)
        marker.drop_tree()
    # A quoted message becomes one ">" line: the text rules then cut the attribution and the
    # quote, and keep what the writer wrote below it (bottom-posting).
    for quote in doc.xpath("//blockquote"):
        if quote.getparent() is not None and (quote.get("type") == "cite"
                                              or _after_attribution(quote)):
            marker = lxml.html.Element("div")
            marker.text = ">"
            marker.tail = quote.tail
            quote.getparent().replace(quote, marker)
    # A Thunderbird or Outlook forward keeps its text; only reply quotes are dropped here.
    for path in _HTML_DROP:
        for el in doc.xpath(path):
            if el.getparent() is not None:
                el.drop_tree()
    text = Inscriptis(doc, ParserConfig(display_links=False, display_images=False)).get_text()
    return textwrap.dedent(text)


def _after_attribution(quote) -> bool:
    """A plain <blockquote> (Yandex, Mail.ru) right after an attribution line is a quote; one
    after anything else may be the writer's own (a poem)."""
    text = ""
    for sibling in quote.itersiblings(preceding=True):  # the nearest text before it
        text = (sibling.tail or "").strip() or sibling.text_content().strip()
        if text:
            break
    else:
        text = (quote.getparent().text or "").strip()
    last = [line for line in text.replace("\u00a0", " ").split("\n") if line.strip()][-1:]
    return bool(last) and bool(_ATTRIBUTION.match(last[0]) or _ADDRESS_ATTRIBUTION.match(last[0]))


def clean_letter_text(text: str, subject: str = "") -> str:
    """Cut quoted history, forwarded headers and signatures from a letter's text."""
    lines = _normalize(text).split("\n")
    lines = _cut_reply_history(lines, forward=bool(_FORWARD_SUBJECT.match(subject or "")))
    lines = _drop_forward_headers(lines)
    lines = _drop_header_blocks(lines)
    lines = [line for line in lines if not line.lstrip().startswith(">")]
    lines = _cut_signature(lines)
    return _tidy(lines)


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = _CONTROL.sub("", text)
    return "\n".join(line.rstrip() for line in text.split("\n"))


def _is_attribution(line: str, following: str) -> bool:
    # Both patterns end in a colon: the test of the last character spares the regexes on
    # nearly every line of a letter (they were ~7% of a parse).
    if line.rstrip().endswith(":") and (_ATTRIBUTION.match(line)
                                        or _ADDRESS_ATTRIBUTION.match(line)):
        return True
    # Gmail and others wrap long attribution lines in plain text.
    if following and following.rstrip().endswith(":") and not line.lstrip().startswith(">") \
            and len(line) > 10:
        joined = f"{line} {following.strip()}"
        return bool(_ATTRIBUTION.match(joined) or _ADDRESS_ATTRIBUTION.match(joined))
    return False


def _outlook_header_block(lines: list[str], i: int) -> bool:
    if not _HEADER_FROM.match(lines[i]):
        return False
    return any(_HEADER_SENT.match(line) for line in lines[i + 1 : i + 4])


def _cut_reply_history(lines: list[str], *, forward: bool) -> list[str]:
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if _FORWARD_SEPARATOR.match(line):
            return lines  # the rest is a forward: handled by _drop_forward_headers
        if _is_attribution(line, following) and _quoted_block_follows(lines, i):
            # Only the quote goes: a bottom-posted answer below it is the letter.
            end = _end_of_quote(lines, i)
            return lines[:i] + _cut_reply_history(lines[end:], forward=forward)
        if _REPLY_SEPARATOR.match(line) or _is_attribution(line, following):
            return lines[:i]
        if _outlook_header_block(lines, i):
            start = i - 1 if i > 0 and _UNDERSCORE_RULE.match(lines[i - 1]) else i
            if forward:
                # Outlook forwards look like replies; keep the forwarded text.
                return lines[:start] + _skip_header_block(lines, i)
            return lines[:start]
    return lines


def _quoted_block_follows(lines: list[str], i: int) -> bool:
    rest = [line for line in lines[i + 1 : i + 4] if line.strip()]
    # A wrapped attribution's second line is part of the attribution, not the letter.
    if rest and not rest[0].lstrip().startswith(">") and len(rest) > 1 \
            and not _ATTRIBUTION.match(lines[i]) and not _ADDRESS_ATTRIBUTION.match(lines[i]):
        rest = rest[1:]
    return bool(rest) and rest[0].lstrip().startswith(">")


def _end_of_quote(lines: list[str], i: int) -> int:
    """The first line after the attribution at i and the ">" block below it."""
    j = i + 1
    while j < len(lines) and not lines[j].lstrip().startswith(">"):
        j += 1  # blank lines, or the second half of a wrapped attribution
    while j < len(lines) and (lines[j].lstrip().startswith(">") or not lines[j].strip()):
        j += 1
    return j


def _drop_header_blocks(lines: list[str]) -> list[str]:
    """A pasted "От кого: / Кому: / Дата: / Тема:" block (two or more header lines, one
    naming a sender) is mail metadata, never the letter: it carries addresses."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _HEADER_LINE.match(lines[j]):
            j += 1
        if j - i >= 2 and any(_SENDER_HEADER.match(line) for line in lines[i:j]):
            while j < len(lines) and lines[j].strip() and lines[j][:1].isspace():
                j += 1  # a wrapped To: list
            i = j
            continue
        out.append(lines[i])
        i += 1
    return out


def _skip_header_block(lines: list[str], i: int) -> list[str]:
    """Lines after a header block that starts at i (header lines and their continuations)."""
    j = i
    while j < len(lines) and not lines[j].strip():
        j += 1
    seen_header = False
    while j < len(lines):
        line = lines[j]
        if _HEADER_LINE.match(line) or (
            not seen_header and (_ADDRESS_ATTRIBUTION.match(line) or _ATTRIBUTION.match(line))
        ):
            seen_header = True
        elif seen_header and line.strip() and (line[:1].isspace() or "@" in line):
            pass  # a wrapped To: or Cc: list
        else:
            break
        j += 1
    return lines[j:]


def _drop_forward_headers(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FORWARD_END.match(line):
            i += 1
            continue
        if _FORWARD_SEPARATOR.match(line):
            rest = _skip_header_block(lines, i + 1)
            i = len(lines) - len(rest)
            # A quoted reply inside the forwarded text is still history.
            rest_cut = _cut_reply_history(lines[i:], forward=False)
            lines = lines[:i] + rest_cut
            continue
        out.append(line)
        i += 1
    return out


def _cut_signature(lines: list[str]) -> list[str]:
    for i in range(len(lines) - 1, -1, -1):
        if _SIGNATURE_DASHES.match(lines[i]) and len(lines) - i <= 15:
            lines = lines[:i]
            break
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    for i in nonblank[-6:]:
        if _MOBILE_FOOTER.match(lines[i]):
            lines = lines[:i]
            break
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    for i in nonblank[-8:]:
        if _SIGN_OFF.match(lines[i]):
            return lines[:i + 1] + _without_card(lines[i + 1 :])
    return lines


_POSTSCRIPT = re.compile(r"^\s*(p\.?\s?s\.?|п\.?\s?с\.?)(\s|:|$)", re.IGNORECASE)


def _without_card(lines: list[str]) -> list[str]:
    """After a sign-off: the writer's name (a short line or two) and any P.S., not their
    card (phones, addresses, job lines)."""
    kept: list[str] = []
    names, name_done, in_postscript = 0, False, False
    for line in lines:
        if not line.strip():
            in_postscript = False
            name_done = name_done or names > 0
        elif _POSTSCRIPT.match(line):
            in_postscript = name_done = True
            kept += ["", line]
        elif in_postscript:
            if not _CONTACT_LIKE.search(line):
                kept.append(line)
        elif not name_done and names < 2 and len(line.strip()) <= 40 \
                and not _CONTACT_LIKE.search(line):
            names += 1
            kept.append(line)
        else:
            name_done = True  # the card: dropped
    return kept


def _tidy(lines: list[str]) -> str:
    text = "\n".join(lines).strip("\n")
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


_SUBJECT_HEADER = re.compile(r"^\s*\*?(subject|тема|betreff|objet)\s*:\*?\s*(?P<value>.+?)\s*$",
                             re.IGNORECASE)


def _forward_start(lines: list[str], subject: str) -> int | None:
    """Where a forwarded message starts in a text, if it holds one."""
    forward = bool(_FORWARD_SUBJECT.match(subject or ""))
    for i, line in enumerate(lines):
        if _FORWARD_SEPARATOR.match(line) or (forward and _outlook_header_block(lines, i)):
            return i
    return None


def forward_note(text: str, subject: str = "") -> str:
    """The forwarding writer's own words above a forwarded message ("" if none): where they
    often name the addressee ("перешлите, пожалуйста, Петровой Марии")."""
    lines = _normalize(text).split("\n")
    start = _forward_start(lines, subject)
    if start is None:
        return ""
    return _tidy([line for line in lines[:start] if not line.lstrip().startswith(">")])


def forwarded_subject(text: str) -> str:
    """The Subject:/Тема: of the first forwarded header block ("" if none)."""
    lines = _normalize(text).split("\n")
    start = _forward_start(lines, "fwd:")
    if start is None:
        return ""
    for line in lines[start : start + 12]:
        found = _SUBJECT_HEADER.match(line)
        if found:
            return found.group("value")[:300]
    return ""
