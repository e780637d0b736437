"""contacts: phone numbers, e-mail addresses, postal addresses, links and messenger handles."""

from __future__ import annotations

import re

import phonenumbers

from gateway.rules import addresses
from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings
from gateway.rules.normalize import clean_mapped

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_TLDS = (
    "ru|рф|su|com|org|net|info|io|me|ua|by|kz|de|uk|eu|us|ly|gl|cc|tv|app|dev|online|site|"
    "xyz|biz|pro|club|link|page|to|co|fm|am|ge|lv|lt|ee|fi|pl|cz|il|tk"
)
URL = re.compile(
    r"(?:https?://|www\.)\S+"
    rf"|(?<![\w@.-])(?:[\w-]+\.)+(?:{_TLDS})(?![\w-])(?:/[^\s,;!?()«»\"']*)?",
    re.IGNORECASE | re.UNICODE,
)
# @handle of a messenger (Telegram, Instagram...), not part of an e-mail address.
HANDLE = re.compile(r"(?<![\w.@+-])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@])")
_DIGITS = re.compile(r"\d")

_CONTACT_KINDS = {
    "phone": ("номер телефона", "a phone number"),
    "email": ("адрес электронной почты", "an e-mail address"),
    "url": ("ссылка", "a link"),
    "handle": ("имя в мессенджере", "a messenger handle"),
    "address": ("почтовый адрес", "a postal address"),
}


def _phones(text: str) -> list[tuple[int, int]]:
    if len(_DIGITS.findall(text)) < 7:  # nothing dialable: skip the matcher
        return []
    return [
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(text, "RU", leniency=phonenumbers.Leniency.VALID)
    ]


# A link has "://", "www." or a dot before a top-level domain's first letter (or a letter
# that matches one case-insensitively: tests/rules/test_rules_shortcuts.py checks the class):
# looked for with a literal first, in C, before the link pattern is tried at every position.
_URL_HINT = re.compile(r"\.(?:[A-Za-zРрФфİıſ\u212a]|(?<=[Ww]{3}\.))")


def _may_link(text: str) -> bool:
    return "://" in text or _URL_HINT.search(text) is not None


def find(text: str) -> dict[str, list[tuple[int, int]]]:
    found: dict[str, list[tuple[int, int]]] = {}
    at = "@" in text  # every e-mail address and handle has one
    emails = [(m.start(), m.end()) for m in EMAIL.finditer(text)] if at else []

    def outside_emails(a: int) -> bool:
        return not any(s <= a < e for s, e in emails)

    urls = [(m.start(), m.end()) for m in URL.finditer(text) if outside_emails(m.start())] \
        if _may_link(text) else []
    handles = [(m.start(), m.end()) for m in HANDLE.finditer(text)
               if outside_emails(m.start())] if at else []
    for kind, spans in (
        ("phone", _phones(text)),
        ("email", emails),
        ("url", urls),
        ("handle", handles),
        ("address", addresses.find(text)),
    ):
        if spans:
            found[kind] = [(a, _trim(text, a, b)) for a, b in spans]
    return found


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in ".,;:!?)»\"'":
        end -= 1
    return end


# The only characters Python's case-insensitive matching equates with an ASCII character
# other than its own two cases (checked against every code point in the tests).
_ASCII_FOLD = (("İ", "i"), ("ı", "i"), ("ſ", "s"), ("\u212a", "k"))


def _ascii_folded(text: str) -> str:
    for odd, plain in _ASCII_FOLD:  # str.replace: far faster than translate() on Cyrillic
        text = text.replace(odd, plain)
    return text.lower()


def _own_address(text: str, sender: str | None) -> list[tuple[int, int]]:
    if not sender or "@" not in sender:
        return []
    local, _, domain = sender.strip().lower().rpartition("@")
    if sender.isascii() and local not in _ascii_folded(text):
        return []  # every match starts with the local part: no need to build the pattern
    variants = [
        re.escape(f"{local}@{domain}"),
        # "ivan (at) mail.ru", "ivan собака mail.ru": spelled out to dodge filters.
        rf"{re.escape(local)}\s*[\[(]?\s*(?:at|собака|собачка)\s*[\])]?\s*{re.escape(domain)}",
    ]
    pattern = re.compile("|".join(variants), re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    cleaned = clean_mapped(draft.text)
    text = cleaned.text
    findings: list[Finding] = []
    own_found = _own_address(text, draft.sender)
    own = [cleaned.span(a, b) for a, b in own_found]
    if own:
        findings.append(
            Finding(
                rule="contacts",
                code="own_address",
                severity="return",
                passages=tuple(dict.fromkeys(draft.text[a:b] for a, b in own)),
                spans=tuple(own),
                reason_ru="В письме указан ваш собственный адрес электронной почты. Ради вашей безопасности "
                "мы не передаём его в тюремную службу: пожалуйста, уберите его и пришлите письмо снова. "
                "Ответ заключённого всё равно придёт вам через нас.",
                reason_en="Your letter contains your own e-mail address. For your safety we never pass it to "
                "the prison service: please remove it and send the letter again. The prisoner's reply "
                "will still reach you through us.",
                reason_organizer="The writer's own e-mail address is in the text; returned so it never "
                "reaches the provider.",
            )
        )
    for kind, found in find(text).items():
        found = [s for s in found if not any(a <= s[0] < b for a, b in own_found)]
        if not found:
            continue
        spans = [cleaned.span(a, b) for a, b in found]
        passages = tuple(dict.fromkeys(draft.text[a:b] for a, b in spans))
        if kind == "address":
            findings.append(_address_finding(passages, spans))
            continue
        ru, en = _CONTACT_KINDS[kind]
        findings.append(
            Finding(
                rule="contacts",
                code=kind,
                severity="hold",
                passages=passages,
                spans=tuple(spans),
                reason_ru=f"В письме есть {ru} ({', '.join(passages[:5])}). Цензура обычно задерживает или "
                "не пропускает письма с контактами и ссылками. Организатор посмотрит письмо; лучше убрать их.",
                reason_en=f"Your letter contains {en} ({', '.join(passages[:5])}). Censors usually delay or "
                "stop letters with contact details and links. An organizer will look at it; better remove them.",
                reason_organizer=f"Contact detail ({kind}): {', '.join(passages[:10])}.",
            )
        )
    return findings


def _address_finding(passages: tuple[str, ...], spans) -> Finding:
    # The writer's own home, most likely: the one detail that must never reach the
    # prison system. Held, so a person sees it (it may be a facility's address, quoted).
    shown = "; ".join(passages[:3])
    return Finding(
        rule="contacts",
        code="address",
        severity="hold",
        passages=passages,
        spans=tuple(spans),
        reason_ru=f"В письме есть почтовый адрес ({shown}). Если это ваш адрес, ради вашей "
        "безопасности его лучше убрать: письмо прочитают в учреждении, а ответ адресата всё "
        "равно придёт вам через нас. Организатор посмотрит письмо, прежде чем его отправить; "
        "можно прислать исправленное письмо.",
        reason_en=f"Your letter contains a postal address ({shown}). If it is yours, for your "
        "safety better remove it: the letter is read at the facility, and the prisoner's reply "
        "reaches you through us anyway. An organizer will look at the letter before it is "
        "sent; you may send a corrected one.",
        reason_organizer=f"Postal address in the text: {'; '.join(passages[:10])}.",
    )


RULE = Rule(
    name="contacts",
    description="No phone numbers, e-mail or postal addresses, links or handles; never the "
    "writer's own e-mail address.",
    check=check,
)
