"""recipient: the prisoner can get this letter where we are sending it."""

from __future__ import annotations

from gateway.providers.profiles import load_profiles
from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    def f(code: str, severity: str, ru: str, en: str, org: str) -> Finding:
        return Finding(
            rule="recipient",
            code=code,
            severity=severity,
            passages=(),  # type: ignore[arg-type]
            reason_ru=ru,
            reason_en=en,
            reason_organizer=org,
        )

    if draft.prisoner_status == "released":
        return [
            f(
                "released",
                "return",
                "Хорошая новость: адресат вышел на свободу, и письмо в учреждение ему уже не передадут. "
                "Мы его не отправляем и ничего не списываем.",
                "Good news: the recipient has been released, so a letter to the facility would not "
                "reach them. We are not sending it and nothing is charged.",
                "Prisoner released: letter returned unsent.",
            )
        ]
    if not draft.prisoner_can_receive:
        return [
            f(
                "not_accepting",
                "return",
                "Этому адресату сейчас нельзя написать через нас (например, ради его безопасности). "
                "Письмо не отправлено, деньги не списаны.",
                "This recipient cannot be written to through us right now (for example, for their "
                "safety). The letter was not sent and nothing was charged.",
                "Prisoner flagged as not accepting letters.",
            )
        ]
    findings = []
    if draft.prisoner_status == "moved":
        findings.append(
            f(
                "moved",
                "hold",
                "Адресата перевели в другое учреждение. Мы уточним новый адрес и тогда отправим письмо.",
                "The recipient has been moved to another facility. We will confirm the new address "
                "and send the letter then.",
                "Prisoner moved: update the facility, then approve.",
            )
        )
    elif draft.prisoner_status not in ("in_custody", "moved"):
        findings.append(
            f(
                "status_unknown",
                "hold",
                "Мы не уверены, где сейчас адресат; организатор проверит, прежде чем платить за письмо.",
                "We are not sure where the recipient is now; an organizer will check before paying "
                "for the letter.",
                f"Prisoner status '{draft.prisoner_status}': verify before paying.",
            )
        )
    if not draft.prisoner_wants_letters:
        findings.append(
            f(
                "paused",
                "hold",
                "Адресат просил пока не присылать ему писем. Организатор посмотрит, можно ли "
                "передать ваше письмо сейчас или лучше немного подождать.",
                "The recipient asked for no letters for now. An organizer will see whether "
                "yours can go now or should wait a little.",
                "The directory says this prisoner wants no letters now (the list's 'can write' "
                "column): send, wait or discard.",
            )
        )
    if not draft.facility_reachable or draft.profile not in load_profiles():
        findings.append(
            f(
                "unreachable",
                "hold",
                "До учреждения адресата пока не доходит ни одна из наших служб; организатор решит, "
                "как передать письмо (например, почтой).",
                "None of our services reaches the recipient's facility yet; an organizer will decide "
                "how to deliver it (for example, by post).",
                f"No configured provider reaches the facility (profile '{draft.profile}').",
            )
        )
    return findings


RULE = Rule(
    name="recipient",
    description="The prisoner is in custody, reachable and accepting letters.",
    check=check,
)
