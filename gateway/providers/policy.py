"""How hard the gateway pushes a paid provider: retry pace, the circuit breaker, the daily
spend cap, how long UNKNOWN letters are replayed before a person is asked.

The values come from gateway.config.Settings (e.g. GATEWAY_DAILY_SPEND_CAP_RUB=3000)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


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
        from gateway.config import get_settings
        s = settings if settings is not None else get_settings()
        cap = getattr(s, "daily_spend_cap_rub", None)
        return cls(
            daily_spend_cap=Decimal(str(cap)) if cap is not None else None,
            retry_base_s=s.submit_retry_base_s, retry_cap_s=s.submit_retry_cap_s,
            breaker_threshold=s.breaker_threshold, breaker_cooldown_s=s.breaker_cooldown_s,
            breaker_max_cooldown_s=s.breaker_max_cooldown_s,
            pause_on_402_minutes=s.pause_on_402_minutes,
            catalogue_max_age_h=s.catalogue_max_age_h,
        )
