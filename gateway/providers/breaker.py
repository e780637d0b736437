"""A circuit breaker per provider, kept in SQL so every worker process shares it.

closed  -> N consecutive transient failures -> open (cool-down, doubling up to a cap)
open    -> cool-down over -> half-open: exactly one caller gets to probe
half-open -> the probe succeeds -> closed; fails -> open again, longer

The state is one `cursors` row, `provider:<name>:breaker`, read FOR UPDATE in the same
transaction as the letter's claim, so two workers never both become the probe. Opening
writes an `alert:` row the dashboard shows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.models import Cursor, utcnow
from gateway.providers.policy import SubmissionPolicy


@dataclass(frozen=True)
class BreakerState:
    state: str = "closed"  # closed | open | half_open
    failures: int = 0
    until: datetime | None = None  # open: end of cool-down; half_open: end of the probe's lease
    cooldown_s: float = 0.0

    def to_json(self) -> str:
        return json.dumps({"state": self.state, "failures": self.failures,
                           "until": self.until.isoformat() if self.until else None,
                           "cooldown_s": self.cooldown_s})

    @classmethod
    def from_json(cls, value: str) -> BreakerState:
        try:
            raw = json.loads(value)
            return cls(state=raw["state"], failures=int(raw["failures"]),
                       until=datetime.fromisoformat(raw["until"]) if raw.get("until") else None,
                       cooldown_s=float(raw.get("cooldown_s") or 0))
        except (ValueError, KeyError, TypeError):
            return cls()


@dataclass(frozen=True)
class Permit:
    allowed: bool
    retry_at: datetime | None = None
    probe: bool = False


def _name(provider: str) -> str:
    return f"provider:{provider}:breaker"


def _row(session: Session, provider: str) -> Cursor | None:
    return session.get(Cursor, _name(provider), with_for_update=True, populate_existing=True)


def read(session: Session, provider: str) -> BreakerState:
    row = session.get(Cursor, _name(provider))
    return BreakerState.from_json(row.value) if row else BreakerState()


def _write(session: Session, provider: str, state: BreakerState) -> None:
    row = _row(session, provider)
    if row is None:
        session.add(Cursor(name=_name(provider), value=state.to_json()))
    else:
        row.value = state.to_json()
        row.updated_at = utcnow()


# The probe's lease: if the probing worker dies, another may probe after this.
PROBE_LEASE = timedelta(minutes=2)


def peek(session: Session, provider: str, now: datetime | None = None) -> Permit:
    """What permit() would answer, without taking the probe: the row stays locked (FOR
    UPDATE) until the caller commits, so it can take_probe() once it has a letter to probe
    with, and give nothing back if it has none."""
    now = now or utcnow()
    row = _row(session, provider)
    state = BreakerState.from_json(row.value) if row else BreakerState()
    if state.state == "closed":
        return Permit(True)
    if state.until is not None and now < state.until:
        return Permit(False, retry_at=state.until)
    # Open and cooled down, or a half-open probe whose lease ran out: this caller may probe.
    return Permit(True, probe=True)


def take_probe(session: Session, provider: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    state = read(session, provider)  # the row peek() locked, from the identity map
    _write(session, provider, BreakerState("half_open", state.failures, now + PROBE_LEASE,
                                           state.cooldown_s))


def permit(session: Session, provider: str, now: datetime | None = None) -> Permit:
    answer = peek(session, provider, now)
    if answer.probe:
        take_probe(session, provider, now)
    return answer


def record_success(session: Session, provider: str) -> None:
    row = _row(session, provider)
    if row is None:
        return
    state = BreakerState.from_json(row.value)
    if state.state != "closed" or state.failures:
        _write(session, provider, BreakerState())


def record_failure(session: Session, provider: str, policy: SubmissionPolicy,
                   why: str, now: datetime | None = None) -> BreakerState:
    """Count a transient failure. Returns the state now: open when this failure opened the
    breaker, or when another worker's had."""
    now = now or utcnow()
    row = _row(session, provider)
    state = BreakerState.from_json(row.value) if row else BreakerState()
    failures = state.failures + 1
    if state.state == "half_open":
        cooldown = min(policy.breaker_max_cooldown_s,
                       max(state.cooldown_s, policy.breaker_cooldown_s) * 2)
    elif state.state == "closed" and failures >= policy.breaker_threshold:
        cooldown = policy.breaker_cooldown_s
    else:
        after = BreakerState(state.state, failures, state.until, state.cooldown_s)
        _write(session, provider, after)
        return after
    after = BreakerState("open", failures, now + timedelta(seconds=cooldown), cooldown)
    _write(session, provider, after)
    session.add(Cursor(name=f"alert:{provider}:breaker:{now.isoformat()}",
                       value=f"circuit open for {cooldown:.0f} s after {failures} failures: "
                             f"{why}"[:200]))
    return after
