"""The overview: what is waiting, what is stuck, what it cost, and what needs a person now.

Every figure is one aggregate query over an index range that holds only letters still in
flight (or recently moved), so the page stays fast with a million letters. The one costly
figure, counting the settled letters that are most of the table, is refreshed at most once
a minute in the background. Nothing is loaded row by row except the latest 20 letters."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import flask
from flask_babel import format_currency, format_decimal, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, load_only

from gateway import connection_health
from gateway.directory import upcoming_birthdays
from gateway.models import Cursor, Letter, OutboundMail, PostBatch, Prisoner, Reply, utcnow
from gateway.providers.breaker import BreakerState
from gateway.states import LetterState as S
from gateway.web.context import db, settings
from gateway.web.health import Heartbeat, heartbeats, queue_depths
from gateway.web.labels import N_, label

bp = flask.Blueprint("overview", __name__)
log = logging.getLogger(__name__)

SPENT = (S.SUBMITTED, S.DELIVERED, S.CENSORED, S.UNDELIVERED)
# Where letters end up: most of the table. Counting them is the one costly figure.
SETTLED = (S.SUBMITTED, S.DELIVERED, S.CENSORED, S.UNDELIVERED, S.REJECTED, S.DISCARDED, S.IGNORED)
# Letters still on their way (any state added later counts here by default): few at any
# time, so counting them on every refresh is cheap.
IN_FLIGHT = tuple(s for s in S if s not in SETTLED)
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
class Settled:
    states: dict[str, tuple[int, datetime | None]]
    spend: tuple[tuple[str, Decimal], ...]  # (currency, sum) this month
    computed_at: datetime


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
    breakers: tuple[tuple[str, str, datetime | None], ...]  # (provider, open|half_open, until)
    provider_alerts: tuple[tuple[str, str, datetime], ...]
    computed_at: datetime
    settled_at: datetime  # when the settled counts and the spend were read
    heartbeats: tuple[Heartbeat, ...] = ()
    # Celery queue depths; None when Redis did not answer, {} when not looked at.
    queues: dict[str, int] | None = None
    queue_alert_depth: int = 500
    # Mail servers refused on security grounds: (what, error, since)
    transport: tuple[tuple[str, str, datetime], ...] = ()

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
        # Shown on the page in the reader's language; outside a request gettext gives English.
        out: list[Alert] = []
        for state, text in ((S.UNKNOWN, N_("letters may or may not have reached the provider: "
                                           "resolve each by hand")),
                            (S.FAILED, N_("letters the provider refused")),
                            (S.QUARANTINED, N_("messages the gateway could not read"))):
            if n := self.count(state):
                out.append(Alert("bad", _("%(n)d %(state)s: %(text)s", n=n, state=label(state),
                                          text=_(text)), "failures.index"))
        for name, until in self.paused:
            out.append(Alert("bad", _("Provider %(name)s is paused until %(time)s UTC (circuit "
                                      "open)", name=name, time=until.strftime("%H:%M")), None))
        for name, state, until in self.breakers:
            if until:
                text = _("Provider %(name)s: circuit %(state)s until %(time)s UTC (submissions "
                         "wait)", name=name, state=label(state, "breaker"),
                         time=until.strftime("%H:%M"))
            else:
                text = _("Provider %(name)s: circuit %(state)s (submissions wait)", name=name,
                         state=label(state, "breaker"))
            out.append(Alert("bad" if state == "open" else "warn", text, None))
        if self.failed_mail:
            out.append(Alert("warn", ngettext("%(num)d e-mail to writers could not be delivered",
                                              "%(num)d e-mails to writers could not be delivered",
                                              self.failed_mail), None))
        if self.budget is not None and self.spend_rub > Decimal(str(self.budget)):
            out.append(Alert("bad", _("Spend this month is over the budget of %(budget)s",
                                      budget=format_currency(Decimal(str(self.budget)), "RUB")),
                             None))
        for beat in self.heartbeats:
            if beat.silent(self.computed_at):
                since = (_("silent since %(when)s UTC", when=beat.last.strftime("%d.%m %H:%M"))
                         if beat.last else _("has never reported"))
                out.append(Alert("bad", f"{_(beat.label)} {since}: {_(beat.consequence)}", None))
        if self.queues is None:
            out.append(Alert("bad", _("The task queue (Redis) does not answer: nothing moves "
                                      "until it is back"), None))
        else:
            for queue, depth in self.queues.items():
                if depth > self.queue_alert_depth:
                    out.append(Alert("warn", _("Queue %(queue)s is growing: %(n)s tasks wait "
                                               "(workers are behind or stuck)", queue=queue,
                                               n=format_decimal(depth)), None))
        for what, error, since in self.transport:
            out.append(Alert("bad", _("%(what)s refused since %(when)s UTC: %(error)s",
                                      what=_(what), when=since.strftime("%d.%m %H:%M"), error=error),
                             None))
        for provider, why, at in self.provider_alerts:
            out.append(Alert("warn", f"{provider}: {why} ({at:%d.%m %H:%M})", None))
        return out


# gateway/connection_health.LABELS, marked for the catalogue: alerts() translates them.
TRANSPORT_WORDS = (N_("Outgoing mail (SMTP)"), N_("The shared inbox (IMAP)"),
                   N_("The reply mailbox (IMAP)"))


def _grouped(rows) -> tuple[GroupRow, ...]:
    groups: dict[str, dict[str, int]] = {}
    for name, state, n in rows:
        groups.setdefault(name or "—", {})[state] = n
    ordered = sorted(groups.items(), key=lambda kv: -sum(kv[1].values()))
    return tuple(GroupRow(name, counts) for name, counts in ordered)


def settled_figures(session: Session, now: datetime | None = None) -> Settled:
    """The slow-moving, expensive part: letters in settled states (most of the table) and
    this month's spend. Computed at most once a minute, off the request path."""
    now = now or utcnow()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    states = {state: (n, oldest) for state, n, oldest in session.execute(
        select(Letter.state, func.count(), func.min(Letter.updated_at))
        .where(Letter.state.in_(SETTLED)).group_by(Letter.state))}
    # updated_at >= submitted_at always (the move to SUBMITTED sets it), so bounding by the
    # (state, updated_at) index is exact and reads only this month's letters.
    spend = tuple((cur or "", Decimal(total or 0)) for cur, total in session.execute(
        select(Letter.currency, func.sum(Letter.price))
        .where(Letter.state.in_(SPENT), Letter.updated_at >= month_start,
               Letter.submitted_at >= month_start)
        .group_by(Letter.currency)))
    # The post's stamps and envelopes, per batch as it was posted: money spent like a tariff.
    postage = Decimal(session.scalar(select(func.coalesce(func.sum(PostBatch.postage), 0))
                                     .where(PostBatch.posted_at >= month_start)) or 0)
    if postage:
        rub = dict(spend)
        rub["RUB"] = rub.get("RUB", Decimal(0)) + postage
        spend = tuple(rub.items())
    return Settled(states=states, spend=spend, computed_at=now)


def compute(session: Session, budget: float | None = None,
            settled: Settled | None = None, queues: dict[str, int] | None = None,
            queue_alert_depth: int = 500) -> Overview:
    """Every figure on the overview. `settled` may be a cached earlier result: the rest is
    read fresh, each from an index range that holds only letters still in flight."""
    now = utcnow()
    settled = settled or settled_figures(session, now)
    state_rows = {state: (n, oldest) for state, n, oldest in session.execute(
        select(Letter.state, func.count(), func.min(Letter.updated_at))
        .where(Letter.state.in_(IN_FLIGHT)).group_by(Letter.state))}
    state_rows.update(settled.states)
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

    # Letters whose submission falls in the last hour and day, in one pass over the day's.
    # Counted on letters, not on the event log: letter_events has no index on its time,
    # letters has (state, updated_at).
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    submitted_hour, submitted_day = session.execute(
        select(func.count().filter(Letter.updated_at >= hour, Letter.submitted_at >= hour),
               func.count())
        .where(Letter.state.in_(SPENT), Letter.updated_at >= day, Letter.submitted_at >= day)
    ).one()

    # A provider's pause and breaker: a few cursors per provider, read at once.
    paused, breakers = [], []
    for row in session.scalars(select(Cursor).where(Cursor.name.like("provider:%"))):
        if row.name.endswith(":paused_until"):
            try:
                until = datetime.fromisoformat(row.value)
            except ValueError:
                continue
            if until > now:
                paused.append((row.name.split(":")[1], until))
        elif row.name.endswith(":breaker"):
            state = BreakerState.from_json(row.value)
            if state.state != "closed":
                breakers.append((row.name.split(":")[1], state.state, state.until))
    # Alerts pile up (one a bounce): the newest five of the day, chosen by the database.
    provider_alerts = tuple(
        (row.name.split(":")[1], row.value, row.updated_at) for row in session.scalars(
            select(Cursor).where(Cursor.name.like("alert:%"),
                                 Cursor.updated_at >= now - timedelta(hours=24))
            .order_by(Cursor.updated_at.desc()).limit(5)))
    unmatched_replies, failed_mail = session.execute(select(
        select(func.count()).select_from(Reply).where(Reply.state == "UNMATCHED")
        .scalar_subquery(),
        select(func.count()).select_from(OutboundMail).where(OutboundMail.state == "FAILED")
        .scalar_subquery())).one()
    return Overview(
        states=states, providers=providers, facilities=facilities,
        submitted_hour=submitted_hour or 0, submitted_day=submitted_day or 0,
        spend=settled.spend, budget=budget,
        unmatched_replies=unmatched_replies or 0, failed_mail=failed_mail or 0,
        paused=tuple(paused), breakers=tuple(breakers), provider_alerts=provider_alerts,
        computed_at=now, settled_at=settled.computed_at, heartbeats=heartbeats(session),
        queues=queues, queue_alert_depth=queue_alert_depth,
        transport=connection_health.problems(session))


def latest_letters(session: Session, limit: int = 20) -> list[Letter]:
    # Only what the table shows (macros.letter_row): not each letter's body, rendered text
    # and findings, read and decoded on every refresh for nothing.
    return list(session.scalars(
        select(Letter).options(
            load_only(Letter.id, Letter.state, Letter.provider, Letter.provider_number,
                      Letter.price, Letter.currency, Letter.created_at, Letter.prisoner_id),
            joinedload(Letter.prisoner).load_only(Prisoner.last_name, Prisoner.first_name,
                                                  Prisoner.middle_name))
        .order_by(Letter.created_at.desc(), Letter.id.desc()).limit(limit)))


class SettledCache:
    """Settled counts and spend, shared by every request and scrape of one process.

    Stale-while-revalidate: once there is a value, a request never waits for the costly
    query; a stale value is served while one background thread reads a fresh one."""

    def __init__(self, sessions: Callable[[], Session], ttl: float) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._lock = threading.Lock()
        self._value: Settled | None = None
        self._at = 0.0
        self._refreshing = False

    def _read(self) -> Settled:
        with self._sessions() as session:
            return settled_figures(session)

    def _refresh(self) -> None:
        try:
            value = self._read()
            with self._lock:
                self._value, self._at = value, time.monotonic()
        except Exception:  # noqa: BLE001 - keep serving the old figures; log and go on
            log.exception("overview: refreshing settled figures failed")
        finally:
            with self._lock:
                self._refreshing = False

    def get(self) -> Settled:
        with self._lock:
            value, fresh = self._value, time.monotonic() - self._at < self._ttl
            # ttl <= 0 (tests, the benchmark's cold pass): read below, no thread beside it.
            if value is not None and not fresh and not self._refreshing and self._ttl > 0:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="overview-settled",
                                 daemon=True).start()
        if value is None or self._ttl <= 0:
            value = self._read()
            with self._lock:
                self._value, self._at = value, time.monotonic()
        return value


def settled_cache(app: flask.Flask) -> SettledCache:
    cache = app.extensions.get("gateway.settled_cache")
    if cache is None:
        cache = SettledCache(app.extensions["gateway.sessions"],
                             app.config["OVERVIEW_SETTLED_SECONDS"])
        app.extensions["gateway.settled_cache"] = cache
    return cache


def current() -> Overview:
    s = settings()
    return compute(db(), s.monthly_budget_rub, settled=settled_cache(flask.current_app).get(),
                   queues=queue_depths(s.broker_url), queue_alert_depth=s.queue_alert_depth)


def _page_values() -> dict:
    # Birthdays: a card written on a letter evening arrives in time (a week's margin).
    return dict(o=current(), latest=latest_letters(db()), in_flight=IN_FLIGHT,
                birthdays=upcoming_birthdays(db(), days=14))


@bp.route("/")
def index():
    return flask.render_template("dashboard/overview.html", **_page_values())


@bp.route("/overview/live")
def live():
    """The fragment htmx swaps in every 5 seconds."""
    return flask.render_template("dashboard/_overview_live.html", **_page_values())
