"""/metrics for Prometheus and /healthz for the orchestrator.

The figures are read from SQL (and Redis) when scraped, by a custom collector: the gateway's
processes keep no counters in memory that a restart would lose, and the database is the
truth. No personal data is exposed: counts only, and only to Prometheus with
GATEWAY_METRICS_TOKEN or to a logged-in organizer."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

import flask
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gateway.models import Letter, OutboundMail, Reply, utcnow
from gateway.states import LetterState
from gateway.web.context import current_user, db, settings
from gateway.web.health import queue_depths
from gateway.web.overview import Settled, compute, settled_cache

bp = flask.Blueprint("metrics", __name__)
log = logging.getLogger(__name__)



class GatewayCollector(Collector):
    def __init__(self, sessions: Callable[[], Session], broker_url: str,
                 settled: Callable[[], Settled]) -> None:
        self._sessions = sessions
        self._broker_url = broker_url
        self._settled = settled

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            overview = compute(session, settled=self._settled())
            letters = GaugeMetricFamily("gateway_letters", "Letters per state", labels=["state"])
            oldest = GaugeMetricFamily("gateway_letters_oldest_age_seconds",
                                       "How long the oldest letter has been in each state",
                                       labels=["state"])
            now = utcnow()
            for row in overview.states:
                letters.add_metric([row.state], row.count)
                if row.oldest is not None and row.state not in ("DELIVERED", "CENSORED"):
                    oldest.add_metric([row.state], (now - row.oldest).total_seconds())
            yield letters
            yield oldest
            submitted = GaugeMetricFamily("gateway_letters_submitted_window",
                                          "Letters submitted in the trailing window",
                                          labels=["window"])
            submitted.add_metric(["1h"], overview.submitted_hour)
            submitted.add_metric(["24h"], overview.submitted_day)
            yield submitted
            mail = GaugeMetricFamily("gateway_outbound_mail", "E-mails to writers per state",
                                     labels=["state"])
            for state, n in session.execute(select(OutboundMail.state, func.count())
                                            .group_by(OutboundMail.state)):
                mail.add_metric([state], n)
            yield mail
            replies = GaugeMetricFamily("gateway_replies", "Replies per state",
                                        labels=["state"])
            for state, n in session.execute(select(Reply.state, func.count())
                                            .group_by(Reply.state)):
                replies.add_metric([state], n)
            yield replies
            paused = GaugeMetricFamily("gateway_provider_paused",
                                       "1 while a provider's circuit is open",
                                       labels=["provider"])
            for name, _until in overview.paused:
                paused.add_metric([name], 1)
            yield paused
            circuit = GaugeMetricFamily("gateway_provider_circuit_open",
                                        "1 while a provider's breaker is open, 0.5 half-open",
                                        labels=["provider"])
            for name, state, _until in overview.breakers:
                circuit.add_metric([name], 1 if state == "open" else 0.5)
            yield circuit
            spend = GaugeMetricFamily("gateway_spend_month", "Spend this calendar month",
                                      labels=["currency"])
            for currency, total in overview.spend:
                spend.add_metric([currency], float(total))
            yield spend
            failing = GaugeMetricFamily("gateway_letters_failed_last_hour",
                                        "Letters now FAILED or UNKNOWN that got there in the "
                                        "last hour", labels=["state"])
            for state, n in session.execute(  # the (state, updated_at) index bounds this
                    select(Letter.state, func.count())
                    .where(Letter.updated_at >= now - timedelta(hours=1),
                           Letter.state.in_([LetterState.FAILED, LetterState.UNKNOWN]))
                    .group_by(Letter.state)):
                failing.add_metric([state], n)
            yield failing
            beats = GaugeMetricFamily("gateway_heartbeat_age_seconds",
                                      "Seconds since each long-lived process last reported "
                                      "(absent: never)", labels=["process"])
            for beat in overview.heartbeats:
                if beat.last is not None:
                    beats.add_metric([beat.who], (now - beat.last).total_seconds())
            yield beats
        yield from self._queues()

    def _queues(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("gateway_broker_up", "1 when Redis answered the scrape")
        depth = GaugeMetricFamily("gateway_queue_depth", "Tasks waiting in each Celery queue",
                                  labels=["queue"])
        lengths = queue_depths(self._broker_url)
        up.add_metric([], 0 if lengths is None else 1)
        yield up
        if lengths is None:
            return
        for queue, n in lengths.items():
            depth.add_metric([queue], n)
        yield depth


def _registry() -> CollectorRegistry:
    app = flask.current_app
    registry = app.extensions.get("gateway.metrics")
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(GatewayCollector(app.extensions["gateway.sessions"],
                                           app.extensions["gateway.settings"].broker_url,
                                           settled_cache(app).get))
        app.extensions["gateway.metrics"] = registry
    return registry


def _allowed() -> bool:
    """Prometheus with the bearer token, or an organizer who is logged in."""
    if current_user() is not None:
        return True
    token = settings().metrics_token
    expected = token.get_secret_value().encode() if token is not None else b""
    given = flask.request.headers.get("Authorization", "")
    # An empty setting (GATEWAY_METRICS_TOKEN= in .env) is no token, not an empty password.
    return bool(expected) and given.startswith("Bearer ") and hmac.compare_digest(
        given.removeprefix("Bearer ").strip().encode(), expected)


@bp.route("/metrics")
def metrics():
    # Spend and volumes are nobody else's business.
    if not _allowed():
        return flask.Response("a bearer token or a login is needed\n", status=401,
                              mimetype="text/plain",
                              headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    return flask.Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


@bp.route("/healthz")
def healthz():
    try:
        db().execute(text("SELECT 1"))
        db().commit()
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        log.warning("healthz: database not answering: %s", exc)
        return flask.Response("database not answering\n", status=503, mimetype="text/plain")
    return flask.Response("ok", mimetype="text/plain")
