"""The Celery app without its tasks: broker, routes, schedule. Beat and the inbox watcher
only send tasks by name, so they import this and not `workers.tasks`, which pulls in the
whole pipeline (rules, lingua, pymorphy, providers): ~50 MB less in each of them.

acks_late + prefetch 1: a task whose worker dies is redelivered; every task is idempotent
(it checks the state it expects), so a redelivery is harmless. No ETAs or countdowns:
retries are scheduled in SQL and re-driven by the sweeper. The one countdown, a reply poll
that failed after progress asking again in 5 s, may be lost harmlessly: beat polls too.
The worker serves its queues in a fixed order, not in turn: `workers.queues`."""

from __future__ import annotations

from celery import Celery, signals
from celery.schedules import crontab

from gateway.config import get_settings
from gateway.logging_setup import configure

settings = get_settings()

app = Celery("gateway", broker=settings.broker_url)
app.conf.update(
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 600, "queue_order_strategy": "priority"},
    task_default_queue="letters",
    task_routes={
        "workers.tasks.fetch_inbox": {"queue": "intake"},
        "workers.tasks.poll_replies": {"queue": "intake"},
        "workers.tasks.send_mail": {"queue": "mail"},
        # Its own queue, served before the checks: during a burst a checked letter goes
        # out instead of waiting behind every check still queued.
        "workers.tasks.submit_letters": {"queue": "submit"},
    },
    beat_schedule={
        "sweep": {"task": "workers.tasks.sweep", "schedule": settings.sweep_interval_s},
        "fetch-inbox": {"task": "workers.tasks.fetch_inbox", "schedule": settings.inbox_poll_s},
        "poll-replies": {"task": "workers.tasks.poll_replies", "schedule": settings.reply_poll_s},
        "poll-statuses": {"task": "workers.tasks.poll_statuses", "schedule": settings.status_poll_s},
        "sync-catalogues": {"task": "workers.tasks.sync_catalogues", "schedule": 6 * 3600.0},
        "purge": {"task": "workers.tasks.purge", "schedule": 24 * 3600.0},  # retention
        # Monday morning in Moscow (06:00 UTC): the organizers' week starts with it.
        "weekly-digest": {"task": "workers.tasks.send_digests",
                          "schedule": crontab(day_of_week="mon", hour=6, minute=0)},
        # As often as the sweep, but it works once a day (a cursor): beat's intervals count
        # from its start, so a longer one could miss the day after every restart.
        # Postcards whose window has ended go (gateway/postcards.py).
        "close-postcards": {"task": "workers.tasks.close_postcards",
                            "schedule": settings.sweep_interval_s},
        "birthday-campaigns": {"task": "workers.tasks.birthday_campaigns",
                               "schedule": settings.sweep_interval_s},
    },
    timezone="UTC",
)


@signals.setup_logging.connect
def _logging(loglevel=None, logfile=None, **_kw) -> None:
    """Celery leaves logging alone when this signal has a receiver: the worker, its pool
    processes and beat all use the gateway's one set-up, with the address redaction."""
    configure(loglevel or None, logfile=logfile or None)


def send(name: str, *args) -> None:
    """Queue task `name` (routed as the worker's own `.delay()` would be)."""
    app.send_task(name, args=args)
