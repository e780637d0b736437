"""empty: a letter with no words in it."""

from __future__ import annotations

from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    if any(ch.isalnum() for ch in draft.text):
        return []
    if draft.photos:
        # Photos alone can be sent, but a person should see that this was meant.
        return [
            Finding(
                rule="empty",
                code="photos_only",
                severity="hold",
                passages=(),
                reason_ru="В письме только фотографии, без текста. Организаторы посмотрят его, прежде чем отправить.",
                reason_en="Your letter has photos but no text. An organizer will look at it before it is sent.",
                reason_organizer="No text, photos only: confirm that the writer meant to send photos alone.",
            )
        ]
    return [
        Finding(
            rule="empty",
            code="no_text",
            severity="return",
            passages=(),
            reason_ru="Письмо пришло пустым: мы не нашли в нём текста. Пожалуйста, напишите письмо в теле сообщения, а не во вложении.",
            reason_en="Your letter arrived empty: we found no text in it. Please write it in the body of the e-mail, not as an attachment.",
            reason_organizer="No text at all: returned to the writer.",
        )
    ]


RULE = Rule(name="empty", description="The letter has some text.", check=check)
