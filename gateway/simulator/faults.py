"""Injected faults: errors, latency and dropped connections, before or after processing.

"after" simulates the worst case for a client: the service accepts and charges the
letter, then the answer is lost (an error status, a reset connection, or a delay longer
than the client's timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

FAULT_STATUSES = (429, 500, 502, 503, 504)
RESET = "reset"


class InvalidFaults(ValueError):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(str(fields))
        self.fields = fields


@dataclass(frozen=True)
class FaultPlan:
    error_rate: float = 0.0
    latency_ms: int = 0
    status: int | str = 503  # an HTTP status, or "reset" to drop the connection
    mode: str = "before"  # "before": fail without processing; "after": process, then fail
    retry_after: int = 1  # seconds, sent with 429 and 503
    count: int | None = None  # fail at most this many more requests; None = no limit
    method: str | None = None  # only this HTTP method, e.g. "POST"
    path_prefix: str = "/v1/"  # only paths starting with this

    @property
    def inert(self) -> bool:
        spent = self.count is not None and self.count <= 0
        return self.latency_ms <= 0 and (self.error_rate <= 0 or spent)

    def applies_to(self, method: str, path: str) -> bool:
        if self.method is not None and method.upper() != self.method.upper():
            return False
        return path.startswith(self.path_prefix)

    def fires(self, roll: float) -> bool:
        if self.count is not None and self.count <= 0:
            return False
        return roll < self.error_rate

    def used_once(self) -> FaultPlan:
        assert self.count is not None
        return replace(self, count=self.count - 1)

    @classmethod
    def from_json(cls, body: object) -> FaultPlan:
        if not isinstance(body, dict):
            raise InvalidFaults({"body": "must be a JSON object"})
        known = {f.name for f in fields(cls)}
        errors = {k: "unknown field" for k in body if k not in known}
        plan = cls(**{k: v for k, v in body.items() if k in known})
        if not _number(plan.error_rate) or not 0 <= plan.error_rate <= 1:
            errors["error_rate"] = "a number from 0 to 1"
        if not _int(plan.latency_ms) or not 0 <= plan.latency_ms <= 600_000:
            errors["latency_ms"] = "an integer from 0 to 600000"
        if plan.status != RESET and plan.status not in FAULT_STATUSES:
            errors["status"] = f"one of {list(FAULT_STATUSES)} or {RESET!r}"
        if plan.mode not in ("before", "after"):
            errors["mode"] = "'before' or 'after'"
        if not _int(plan.retry_after) or plan.retry_after < 0:
            errors["retry_after"] = "a non-negative integer"
        if plan.count is not None and (not _int(plan.count) or plan.count < 0):
            errors["count"] = "a non-negative integer or null"
        if plan.method is not None and not isinstance(plan.method, str):
            errors["method"] = "an HTTP method or null"
        if not isinstance(plan.path_prefix, str):
            errors["path_prefix"] = "a string"
        if errors:
            raise InvalidFaults(errors)
        return replace(plan, error_rate=float(plan.error_rate))


@dataclass(frozen=True)
class FaultDraw:
    plan: FaultPlan
    fail: bool


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
