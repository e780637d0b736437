"""Value objects every check shares: the draft weighed, a finding, the decision, settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Literal

Severity = Literal["info", "hold", "return"]
Outcome = Literal["pass", "hold", "return"]
SEVERITIES: tuple[Severity, ...] = ("info", "hold", "return")
_RANK = {"info": 0, "hold": 1, "return": 2}


@dataclass(frozen=True)
class Finding:
    """One problem one rule saw, with reasons for the writer (ru, en) and for the organizer.

    `passages` are the words or snippets as written; `spans` their (start, end) offsets in
    the text the rule read, so a dashboard can highlight them. `code` names the precise
    problem inside the rule (e.g. "translit"); `suggestion` carries an offered fix, such as
    a Cyrillic version of a transliterated letter, never applied silently.
    """

    rule: str
    severity: Severity
    passages: tuple[str, ...]
    reason_ru: str
    reason_en: str
    reason_organizer: str
    code: str = ""
    spans: tuple[tuple[int, int], ...] = ()
    suggestion: str | None = None

    @property
    def key(self) -> str:
        """`rule.code` (or just `rule`): what settings name to disable or re-rate it."""
        return f"{self.rule}.{self.code}" if self.code else self.rule

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "code": self.code,
            "severity": self.severity,
            "passages": list(self.passages),
            "spans": [list(s) for s in self.spans],
            "reason_ru": self.reason_ru,
            "reason_en": self.reason_en,
            "reason_organizer": self.reason_organizer,
            "suggestion": self.suggestion,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            rule=data["rule"],
            severity=data["severity"],
            passages=tuple(data.get("passages", ())),
            reason_ru=data.get("reason_ru", ""),
            reason_en=data.get("reason_en", ""),
            reason_organizer=data.get("reason_organizer", ""),
            code=data.get("code", ""),
            spans=tuple((int(a), int(b)) for a, b in data.get("spans", ())),
            suggestion=data.get("suggestion"),
        )


@dataclass(frozen=True)
class Decision:
    """The one verdict all findings add up to: the worst severity wins (info passes)."""

    outcome: Outcome
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, findings: tuple[Finding, ...] | list[Finding]) -> Decision:
        findings = tuple(findings)
        worst = max((_RANK[f.severity] for f in findings), default=0)
        outcome: Outcome = ("pass", "hold", "return")[worst]  # type: ignore[assignment]
        return cls(outcome=outcome, findings=findings)

    def by_rule(self, rule: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.rule == rule)

    @property
    def rules_hit(self) -> frozenset[str]:
        return frozenset(f.rule for f in self.findings if f.severity != "info")

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            outcome=data["outcome"],
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", ())),
        )


@dataclass(frozen=True)
class PastCensorship:
    """A letter this facility's censor stopped: what the check batch passes to the
    censor_memory rule. `topics` are the topic codes found in it ("war"), kept after its
    text is forgotten; `text` is None once retention has purged it."""

    letter_id: int
    reason: str | None
    topics: tuple[str, ...] = ()
    photos: int = 0
    text: str | None = None


@dataclass(frozen=True)
class LetterDraft:
    """Everything the checks need to know about one letter; no database behind it.

    `text` is the letter body the writer wrote; `rendered_text`, when given, is exactly what
    the provider will receive (greeting, signature...) and drives pages, price and budget.
    `photos` are (sniffed content type, size in bytes). `previous_texts` are recent letters
    from the same writer to the same prisoner (the caller picks the window).
    `prisoner_status` is one of gateway.directory.STATUSES (in_custody, moved, released…).
    """

    text: str
    photos: tuple[tuple[str, int], ...] = ()
    sender: str | None = None
    prisoner_status: str = "in_custody"
    prisoner_can_receive: bool = True
    prisoner_wants_letters: bool = True  # the groups' lists: "can write" / a pause asked for
    facility_max_pages: int | None = None
    facility_max_photos: int | None = None
    facility_accepts_photos: bool = True
    profile: str = "http"
    previous_texts: tuple[str, ...] = ()
    month_spent: Decimal = Decimal(0)
    # Beyond the first interface; all optional.
    rendered_text: str | None = None
    reply_ordered: bool = False
    facility_reachable: bool = True
    campaign_spent: Decimal | None = None
    # What this facility's censor stopped recently, newest first (censor_memory).
    censor_history: tuple[PastCensorship, ...] = ()
    facility_name: str | None = None

    @property
    def billed_text(self) -> str:
        return self.text if self.rendered_text is None else self.rendered_text


def _decimal_or_none(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


@dataclass(frozen=True)
class RuleSettings:
    """What organizers tune. Names in `disabled` and keys of `severity` are either a rule
    ("topics") or a rule and a finding code ("topics.lgbt", "language.foreign_words").
    `per_profile` holds overrides by provider profile name, applied by `for_profile`."""

    disabled: frozenset[str] = frozenset()
    cyrillic_min_share: float = 0.7
    monthly_budget: Decimal | None = None
    campaign_budget: Decimal | None = None
    language_min_confidence: float = 0.6
    # A Latin word or two ("iPhone") in a Russian letter: how many before it is flagged.
    foreign_words_allowed: int = 0
    duplicate_similarity: float = 0.9
    severity: Mapping[str, Severity] = field(default_factory=dict)
    lexicon_dirs: tuple[str, ...] = ()
    per_profile: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, sev in self.severity.items():
            if sev not in SEVERITIES:
                raise ValueError(f"severity for {key!r} must be one of {SEVERITIES}, not {sev!r}")
        if not 0 <= self.cyrillic_min_share <= 1:
            raise ValueError("cyrillic_min_share must be between 0 and 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> RuleSettings:
        """Build from plain settings (TOML/JSON/env-decoded dict); unknown keys are errors
        so that a typo in an organizer's config does not silently switch nothing."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        if "providers" in data:  # friendlier name in config files
            data["per_profile"] = data.pop("providers")
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown rule settings: {', '.join(sorted(unknown))}")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "disabled":
                value = frozenset([value] if isinstance(value, str) else value)
            elif key in ("monthly_budget", "campaign_budget"):
                value = _decimal_or_none(value)
            elif key in ("cyrillic_min_share", "language_min_confidence", "duplicate_similarity"):
                value = float(value)
            elif key == "foreign_words_allowed":
                value = int(value)
            elif key == "lexicon_dirs":
                value = tuple(str(v) for v in ([value] if isinstance(value, str) else value))
            elif key in ("severity", "per_profile"):
                value = dict(value)
            kwargs[key] = value
        return cls(**kwargs)

    def for_profile(self, profile: str) -> RuleSettings:
        """These settings with the overrides configured for one provider profile."""
        override = self.per_profile.get(profile)
        if not override:
            return self
        merged: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "per_profile"
        }
        merged.update(override)
        merged["severity"] = {**self.severity, **dict(override.get("severity", {}))}
        if "disabled" in override:
            extra = override["disabled"]
            merged["disabled"] = self.disabled | frozenset(
                [extra] if isinstance(extra, str) else extra
            )
        return RuleSettings.from_mapping(merged)

    def is_disabled(self, key: str) -> bool:
        return key in self.disabled or key.split(".", 1)[0] in self.disabled


CheckFn = Callable[[LetterDraft, RuleSettings], list[Finding]]


@dataclass(frozen=True)
class Rule:
    """A named check: `check` returns findings, never raises on odd letters."""

    name: str
    description: str
    check: CheckFn
