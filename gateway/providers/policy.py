"""How hard the gateway pushes a paid provider: retry pace, the circuit breaker, the daily
spend cap, how long UNKNOWN letters are replayed before a person is asked.

Read from the same GATEWAY_ environment (and .env) as gateway.config.Settings, so a
deployment sets e.g. GATEWAY_DAILY_SPEND_CAP_RUB=3000; values on the Settings object, when
it has them, win."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pydantic_settings import BaseSettings, SettingsConfigDict


class _FromEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    daily_spend_cap_rub: Decimal | None = None
    submit_retry_base_s: float = 5.0
    submit_retry_cap_s: float = 3600.0
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 60.0
    breaker_max_cooldown_s: float = 1800.0
    pause_on_402_minutes: int = 30
    catalogue_max_age_h: float = 24.0


@dataclass(frozen=True)
class SubmissionPolicy:
    daily_spend_cap: Decimal | None = None  # all paid providers together, per UTC day
    retry_base_s: float = 5.0
    retry_cap_s: float = 3600.0
    breaker_threshold: int = 5  # consecutive transient failures that open the breaker
    breaker_cooldown_s: float = 60.0  # first open period; doubles while probes fail
    breaker_max_cooldown_s: float = 1800.0
    pause_on_402_minutes: int = 30
    catalogue_max_age_h: float = 24.0

    @classmethod
    def from_settings(cls, settings=None) -> SubmissionPolicy:
        env = _FromEnv()
        values = {
            "daily_spend_cap": env.daily_spend_cap_rub,
            "retry_base_s": env.submit_retry_base_s,
            "retry_cap_s": env.submit_retry_cap_s,
            "breaker_threshold": env.breaker_threshold,
            "breaker_cooldown_s": env.breaker_cooldown_s,
            "breaker_max_cooldown_s": env.breaker_max_cooldown_s,
            "pause_on_402_minutes": env.pause_on_402_minutes,
            "catalogue_max_age_h": env.catalogue_max_age_h,
        }
        for field, attr in (("daily_spend_cap", "daily_spend_cap_rub"),
                            ("retry_base_s", "submit_retry_base_s"),
                            ("breaker_threshold", "breaker_threshold"),
                            ("breaker_cooldown_s", "breaker_cooldown_s")):
            value = getattr(settings, attr, None) if settings is not None else None
            if value is not None:
                values[field] = Decimal(str(value)) if field == "daily_spend_cap" else value
        return cls(**values)
