"""The overview: what is waiting, what is stuck, what it cost, and what needs a person now.

Every figure is one aggregate query on an indexed column (or bounded by one), so the page
stays fast with a million letters; nothing loads letters row by row except the latest 20."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import Cursor, Letter, LetterEvent, OutboundMail, Prisoner, Reply, utcnow
from gateway.states import LetterState as S
from gateway.web.context import db, settings

bp = flask.Blueprint("overview", __name__)

# Letters still on their way: the per-provider and per-facility tables are about these.
IN_FLIGHT = (S.RECEIVED, S.HELD, S.READY, S.DESK, S.SUBMITTING, S.UNKNOWN, S.FAILED,
             S.QUARANTINED)
SPENT = (S.SUBMITTED, S.DELIVERED, S.CENSORED)
STATE_ORDER = tuple(S)


@dataclass(frozen=True)
class StateRow:
    state: str
    count: int
    oldest: datetime | None  # the longest any letter has been in this state


@dataclass(frozen=True)
class GroupRow:
    name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Alert:
    level: str  # "bad" | "warn"
    text: str
    link: str | None = None


@dataclass(frozen=True)
class Overview:
    states: tuple[StateRow, ...]
    providers: tuple[GroupRow, ...]
    facilities: tuple[GroupRow, ...]
    submitted_hour: int
    submitted_day: int
    spend: tuple[tuple[str, Decimal], ...]  # (currency, sum) this month
    budget: float | None
    unmatched_replies: int
    failed_mail: int
    paused: tuple[tuple[str, datetime], ...]
    provider_alerts: tuple[tuple[str, str, datetime], ...]
    computed_at: datetime

    def count(self, state: str) -> int:
        return next((r.count for r in self.states if r.state == state), 0)

    def oldest(self, state: str) -> datetime | None:
        return next((r.oldest for r in self.states if r.state == state), None)

    @property
    def total(self) -> int:
        return sum(r.count for r in self.states)

    @property
    def spend_rub(self) -> Decimal:
        return sum((v for c, v in self.spend if c in ("RUB", "")), Decimal(0))

    def alerts(self) -> list[Alert]:
        out: list[Alert] = []
        for state, text in ((S.UNKNOWN, "letters may or may not have reached the provider: "
                                        "resolve each by hand"),
                            (S.FAILED, "letters the provider refused"),
                            (S.QUARANTINED, "messages the gateway could not read")):
            if n := self.count(state):
                out.append(Alert("bad", f"{n} {state}: {text}", "failures.index"))
        for name, until in self.paused:
            out.append(Alert("bad", f"Provider {name} is paused until "
                                    f"{until:%H:%M UTC} (circuit open)", None))
        if self.failed_mail:
            out.append(Alert("warn", f"{self.failed_mail} e-mails to writers could not be "
                                     "delivered", None))
        if self.budget is not None and self.spend_rub > Decimal(str(self.budget)):
            out.append(Alert("bad", f"Spend this month is over the budget of "
                                    f"{self.budget:,.0f} RUB", None))
        for provider, why, at in self.provider_alerts:
            out.append(Alert("warn", f"{provider}: {why} ({at:%d %b %H:%M})", None))
        return out


def _grouped(rows) -> tuple[GroupRow, ...]:
    groups: dict[str, dict[str, int]] = {}
    for name, state, n in rows:
        groups.setdefault(name or "—", {})[state] = n
    ordered = sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))
    return tuple(GroupRow(name, counts) for name, counts in ordered)


def compute(session: Session, budget: float | None = None) -> Overview:
    now = utcnow()
    # (state, updated_at) index: an index-only scan gives both the count and the oldest.
    state_rows = {state: (n, oldest) for state, n, oldest in session.execute(
        select(Letter.state, func.count(), func.min(Letter.updated_at)).group_by(Letter.state))}
    states = tuple(StateRow(s.value, *state_rows.get(s.value, (0, None)))
                   for s in STATE_ORDER)
    providers = _grouped(session.execute(
        select(Letter.provider, Letter.state, func.count())
        .where(Letter.state.in_(IN_FLIGHT)).group_by(Letter.provider, Letter.state)))
    facilities = _grouped(session.execute(
        select(Prisoner.facility_name, Letter.state, func.count())
        .join(Prisoner, Prisoner.id == Letter.prisoner_id)
        .where(Letter.state.in_(IN_FLIGHT))
        .group_by(Prisoner.facility_name, Letter.state)))

    def submitted_since(delta: timedelta) -> int:
        return session.scalar(select(func.count()).select_from(LetterEvent).where(
            LetterEvent.to_state == S.SUBMITTED, LetterEvent.at >= now - delta)) or 0

    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spend = tuple((cur or "", Decimal(total or 0)) for cur, total in session.execute(
        select(Letter.currency, func.sum(Letter.price))
        .where(Letter.state.in_(SPENT), Letter.submitted_at >= month_start)
        .group_by(Letter.currency)))
    paused = []
    for row in session.scalars(select(Cursor).where(Cursor.name.like("provider:%:paused_until"))):
        try:
            until = datetime.fromisoformat(row.value)
        except ValueError:
            continue
        if until > now:
            paused.append((row.name.split(":")[1], until))
    provider_alerts = tuple(
        (row.name.split(":")[1], row.value, row.updated_at) for row in session.scalars(
            select(Cursor).where(Cursor.name.like("alert:%"),
                                 Cursor.updated_at >= now - timedelta(hours=24))
            .order_by(Cursor.updated_at.desc()).limit(5)))
    return Overview(
        states=states, providers=providers, facilities=facilities,
        submitted_hour=submitted_since(timedelta(hours=1)),
        submitted_day=submitted_since(timedelta(days=1)),
        spend=spend, budget=budget,
        unmatched_replies=session.scalar(
            select(func.count()).select_from(Reply).where(Reply.state == "UNMATCHED")) or 0,
        failed_mail=session.scalar(select(func.count()).select_from(OutboundMail)
                                   .where(OutboundMail.state == "FAILED")) or 0,
        paused=tuple(paused), provider_alerts=provider_alerts, computed_at=now)


def latest_letters(session: Session, limit: int = 20) -> list[Letter]:
    return list(session.scalars(select(Letter).order_by(Letter.created_at.desc(),
                                                        Letter.id.desc()).limit(limit)))


class _Cache:
    """Several open dashboards poll every 5 s; they share one computation per interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Overview | None = None
        self._at = 0.0

    def get(self, ttl: float, make) -> Overview:
        with self._lock:
            if self._value is None or time.monotonic() - self._at >= ttl:
                self._value = make()
                self._at = time.monotonic()
            return self._value


def current() -> Overview:
    app = flask.current_app
    cache = app.extensions.setdefault("gateway.overview_cache", _Cache())
    return cache.get(app.config["OVERVIEW_CACHE_SECONDS"],
                     lambda: compute(db(), settings().monthly_budget_rub))


@bp.route("/")
def index():
    return flask.render_template("dashboard/overview.html", o=current(),
                                 latest=latest_letters(db()))


@bp.route("/overview/live")
def live():
    """The fragment htmx swaps in every 5 seconds."""
    return flask.render_template("dashboard/_overview_live.html", o=current(),
                                 latest=latest_letters(db()))
