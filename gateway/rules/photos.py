"""photos: type, size and count per facility and provider."""

from __future__ import annotations

from gateway.providers.profiles import load_profiles
from gateway.rules.base import Finding, LetterDraft, Rule, RuleSettings


def _mib(size: int) -> str:
    return f"{size / 1048576:.1f}".rstrip("0").rstrip(".")


def check(draft: LetterDraft, settings: RuleSettings) -> list[Finding]:
    if not draft.photos:
        return []
    profile = load_profiles().get(draft.profile)
    findings: list[Finding] = []

    def add(code: str, passages: tuple[str, ...], ru: str, en: str, org: str) -> None:
        findings.append(
            Finding(
                rule="photos",
                code=code,
                severity="return",
                passages=passages,
                reason_ru=ru,
                reason_en=en,
                reason_organizer=org,
            )
        )

    accepts = draft.facility_accepts_photos and (profile is None or profile.max_photos > 0)
    if not accepts:
        add(
            "not_accepted",
            (),
            "Это учреждение не принимает фотографии. Пришлите, пожалуйста, письмо без них: "
            "с фото его не отправить.",
            "This facility does not accept photos. Please send the letter without them; it "
            "cannot go with photos.",
            f"{len(draft.photos)} photo(s) but the facility accepts none.",
        )
        return findings
    limits = [
        x
        for x in (draft.facility_max_photos, profile.max_photos if profile else None)
        if x is not None
    ]
    limit = min(limits) if limits else None
    if limit is not None and len(draft.photos) > limit:
        add(
            "too_many",
            (),
            f"К письму приложено фотографий: {len(draft.photos)}, а можно не больше {limit}. "
            "Уберите лишние и пришлите письмо снова.",
            f"Your letter has {len(draft.photos)} photos; at most {limit} can go. Please remove "
            "some and send it again.",
            f"{len(draft.photos)} photos over the limit of {limit}.",
        )
    if profile is not None:
        bad_types = tuple(
            dict.fromkeys(ct for ct, _ in draft.photos if ct.lower() not in profile.photo_types)
        )
        if bad_types:
            allowed = ", ".join(sorted(t.split("/")[-1].upper() for t in profile.photo_types))
            add(
                "type",
                bad_types,
                f"Некоторые вложения не подходят: принимаются только фотографии {allowed}. "
                "Пересохраните их в одном из этих форматов.",
                f"Some attachments cannot go: only {allowed} photos are accepted. Please save them "
                "in one of those formats.",
                f"Photo type(s) not accepted by {profile.name}: {', '.join(bad_types)}.",
            )
        if profile.photo_max_bytes:
            big = tuple(
                f"{i + 1}: {_mib(size)} MiB"
                for i, (_, size) in enumerate(draft.photos)
                if size > profile.photo_max_bytes
            )
            if big:
                add(
                    "size",
                    big,
                    f"Фотография слишком большая (не больше {_mib(profile.photo_max_bytes)} МБ). "
                    "Уменьшите её и пришлите письмо снова.",
                    f"A photo is too large (at most {_mib(profile.photo_max_bytes)} MiB). Please make "
                    "it smaller and send the letter again.",
                    f"Photo(s) over {_mib(profile.photo_max_bytes)} MiB: {', '.join(big)}.",
                )
    return findings


RULE = Rule(name="photos", description="Photos of an accepted type, size and number.", check=check)
