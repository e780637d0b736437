"""Checks every letter passes before a ruble is spent: one small module per rule.

`run_rules` runs every enabled rule and folds the findings into one decision: pass, hold
for a person, or return to the writer. Organizers disable rules (or single finding codes,
"topics.lgbt") and re-rate severities through `RuleSettings`, per provider profile too.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.rules import (
    budget,
    censor_memory,
    contacts,
    duplicate,
    empty,
    language,
    length,
    photos,
    profanity,
    recipient,
    topics,
)
from gateway.rules.base import (
    Decision,
    Finding,
    LetterDraft,
    Rule,
    RuleSettings,
    Severity,
)

RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        empty.RULE,
        recipient.RULE,
        language.RULE,
        profanity.RULE,
        topics.RULE,
        contacts.RULE,
        length.RULE,
        photos.RULE,
        duplicate.RULE,
        censor_memory.RULE,
        budget.RULE,
    )
}

__all__ = [
    "RULES",
    "Decision",
    "Finding",
    "LetterDraft",
    "Rule",
    "RuleSettings",
    "Severity",
    "run_rules",
    "warm_up",
]


def run_rules(draft: LetterDraft, settings: RuleSettings = RuleSettings()) -> Decision:  # noqa: B008
    """All enabled rules, each on its own; one rule's crash never hides the others."""
    settings = settings.for_profile(draft.profile)
    findings: list[Finding] = []
    for name, rule in RULES.items():
        if settings.is_disabled(name):
            continue
        try:
            found = rule.check(draft, settings)
        except Exception as exc:  # a broken rule holds the letter rather than letting it through
            found = [
                Finding(
                    rule=name,
                    code="error",
                    severity="hold",
                    passages=(),
                    reason_ru="Одна из проверок не сработала; организатор посмотрит письмо.",
                    reason_en="One of our checks failed; an organizer will look at the letter.",
                    reason_organizer=f"Rule '{name}' crashed: {type(exc).__name__}: {exc}",
                )
            ]
        for finding in found:
            if settings.is_disabled(finding.key) and finding.code != "error":
                continue
            override = settings.severity.get(finding.key) or settings.severity.get(finding.rule)
            findings.append(replace(finding, severity=override) if override else finding)
    return Decision.of(findings)


def warm_up() -> None:
    """Build the detector, the analyzer and the lexicons now (call before forking workers,
    so children share them copy-on-write; about 1 s and 300 MiB once per host)."""
    language.detector()
    run_rules(LetterDraft(text="Здравствуйте! Как ваши дела? Пишу вам из дома, у нас тепло."))
