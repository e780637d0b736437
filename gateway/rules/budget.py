"""budget: a letter that would overrun the organization's budget waits."""

from __future__ import annotations

from gateway.pricing import quote
from gateway.providers.profiles import load_profiles
from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings

_WHAT = {"monthly": ("на письма", "for letters"),
         "campaign": ("на письма этой кампании", "for this campaign's letters")}


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    profile = load_profiles().get(draft.profile)
    if profile is None or (settings.monthly_budget is None and settings.campaign_budget is None):
        return []
    price = quote(draft.billed_text, len(draft.photos), draft.reply_ordered, profile).amount
    findings = []
    for code, budget, spent, label in (
        ("monthly", settings.monthly_budget, draft.month_spent, "monthly"),
        ("campaign", settings.campaign_budget, draft.campaign_spent, "campaign"),
    ):
        if budget is None or spent is None or spent + price <= budget:
            continue
        what_ru, what_en = _WHAT[code]
        findings.append(
            Finding(
                rule="budget",
                code=code,
                severity="hold",
                passages=(),
                reason_ru=f"Спасибо за письмо! Деньги, которые организация выделила {what_ru}, "
                "на этот раз закончились; письмо подождёт, пока бюджет пополнится, и уйдёт без "
                "вашего участия.",
                reason_en=f"Thank you for your letter! The money the organization set aside "
                f"{what_en} has run out for now; your letter will wait until the budget is "
                "topped up and then go on its own.",
                reason_organizer=f"Would exceed the {label} budget: {spent} + {price} > {budget} "
                f"{profile.currency}.",
            )
        )
    return findings


RULE = Rule(
    name="budget", description="The letter fits the monthly and campaign budgets.", check=check
)
