"""Thin tasks: ids in, one domain step, commit, then publish the next step."""

from __future__ import annotations

import gc
import logging
from functools import lru_cache

import redis
from celery import signals
from imapclient.exceptions import IMAPClientError
from kombu.exceptions import OperationalError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from gateway import connection_health
from gateway.config import get_settings
from gateway.crypto import keyring
from gateway.db import one_of, session_factory
from gateway.notices import queue_late_received
from gateway.pipeline import checking, outbox, statuses, submission, sweeper
from gateway.pipeline.budget_holds import release_budget_holds
from gateway.pipeline.intake import Mailbox, ingest
from gateway.providers.base import ProviderError
from gateway.providers.registry import open_provider
from gateway.replies import intake as replies
from workers.celery_app import app

log = logging.getLogger(__name__)
LOCK_TTL_S = 30


def _settings():
    return get_settings()


def _sessions():
    return session_factory(_settings().database_url)


@lru_cache
def _provider(name: str):
    return open_provider(name, _settings())


@lru_cache
def _redis():
    return redis.Redis.from_url(_settings().broker_url)


def _release(lock) -> None:
    try:
        lock.release()
    except redis.exceptions.LockError:  # expired (or cleared) under us: nothing to free
        pass


def inbox() -> Mailbox:
    return Mailbox.inbox(_settings())


def reply_mailbox() -> Mailbox:
    return Mailbox.replies(_settings())


def _chunks(ids: list[int]):
    size = _settings().task_batch
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _publish(task, ids: list[int]) -> None:
    """The ids in batches: both pool processes get work, and no task holds hundreds of rows
    (a batch of reply forwards carries their scans)."""
    for chunk in _chunks(ids):
        task.delay(chunk)


def publish_checks(ids: list[int]) -> None:
    _publish(check_letters, ids)


def publish_mail(ids: list[int]) -> None:
    _publish(send_mail, ids)


@signals.worker_init.connect
def _warm_up(**_kw):
    # Load the language models and morphology once in the parent, before the pool forks,
    # so the children share them copy-on-write instead of each building its own.
    from gateway.rules import warm_up
    warm_up()
    # Everything the parent holds now (modules, the lexicons, the analyzer's Python side)
    # lives for the process's life. Frozen out of the collector, a child's collections no
    # longer write into those objects' headers, which copied each touched page into the
    # child: measured, each pool child's PSS fell from ~165 MB (see bench/README.md).
    gc.collect()
    gc.freeze()


@signals.worker_process_init.connect
def _fresh_connections(**_kw):
    # Forked children must not share the parent's DB or HTTP connections.
    from gateway.db import engine_for
    engine_for(_settings().database_url).dispose(close=False)
    _provider.cache_clear()


@app.task(name="workers.tasks.fetch_inbox")
def fetch_inbox() -> int:
    """One ingester per mailbox at a time, whoever asks (watcher, beat, a person)."""
    # A short lock, renewed after each batch: a worker killed mid-ingest blocks intake for
    # at most LOCK_TTL_S, never for the length of a long lock.
    user = _settings().imap_user
    lock = _redis().lock(f"gateway:lock:ingest:{user}", timeout=LOCK_TTL_S, blocking_timeout=0)
    # A ring while an ingest runs may be for mail that came after that ingest's SEARCH: it
    # is left as a request, and the ingester rings again when it is done. Without it the
    # last letters of a burst waited for the backstop poll (a minute).
    again = f"gateway:ingest-again:{user}"
    if not lock.acquire(blocking=False):
        _redis().set(again, 1, ex=LOCK_TTL_S * 4)
        if not lock.acquire(blocking=False):  # still held: its holder will see the request
            return 0
    _redis().delete(again)  # this ingest's SEARCH comes after every request made so far

    def stored(ids: list[int]) -> None:
        publish_checks(ids)
        try:
            lock.extend(LOCK_TTL_S, replace_ttl=True)
        except redis.exceptions.LockError:
            # The lock expired or was cleared under us: finish this ingest anyway; the
            # content-hash dedup (and PostgreSQL's advisory lock) keep it one letter each.
            log.warning("ingest lock lost mid-ingest; finishing")

    try:
        with _transport_health("imap-inbox"):
            return len(ingest(_sessions(), inbox(), keys=keyring(_settings()),
                              batch=_settings().imap_batch, on_stored=stored))
    finally:
        _release(lock)
        _ring_again_if_asked(again)


def _ring_again_if_asked(again: str) -> None:
    try:
        if _redis().delete(again):  # someone rang while we held the lock
            fetch_inbox.delay()
    except (redis.exceptions.RedisError, OperationalError) as exc:
        # The broker is away: what is in the inbox waits for the backstop poll, not lost.
        log.warning("could not ring the inbox again after an ingest: %s", exc)


def _transport_health(channel: str):
    """A mail server refused on security grounds shows on the dashboard until it is fixed."""
    return connection_health.watched(_sessions(), channel)


def _set_aside(letter_id: int, expected: str, target: str, exc: BaseException) -> None:
    """A letter whose step raises is set aside for a person, with the error, so that the
    sweeper cannot re-drive it into the same crash for ever (Mailman's shunt queue)."""
    from gateway import actions
    from gateway.models import Letter
    log.exception("letter %s: %s step failed; set aside as %s", letter_id, expected, target)
    with _sessions()() as session:
        letter = session.get(Letter, letter_id)
        if letter is not None and letter.state == expected:
            actions.set_aside(session, letter, target, f"internal error in the {expected} step: "
                              f"{type(exc).__name__}: {str(exc)[:300]}")
            session.commit()


@app.task(name="workers.tasks.check_letters")
def check_letters(letter_ids: list[int]) -> int:
    try:
        with _sessions()() as session:
            result = checking.check_letters(session, letter_ids, _settings())
            session.commit()
    except DBAPIError:
        raise  # the database itself is unwell: leave the letters for the sweeper
    except Exception as exc:
        if len(letter_ids) == 1:
            _set_aside(letter_ids[0], "RECEIVED", "QUARANTINED", exc)
            return 0
        # One bad letter must not hold up the batch: check each alone; the one that
        # fails is set aside and the rest proceed.
        for letter_id in letter_ids:
            check_letters(letter_ids=[letter_id])
        return 0
    if result.ready:
        submit_letters.delay(result.ready)
    if result.mail:
        publish_mail(result.mail)
    return len(result.ready)


@app.task(name="workers.tasks.submit_letters")
def submit_letters(letter_ids: list[int]) -> int:
    from gateway.models import Letter

    by_provider: dict[str, list[int]] = {}
    with _sessions()() as session:  # two columns, not the letters (submit_many reads them)
        for letter_id, provider in session.execute(
                select(Letter.id, Letter.provider).where(one_of(session, Letter.id, letter_ids))):
            by_provider.setdefault(provider or "http", []).append(letter_id)
    sent = 0
    for name, ids in by_provider.items():
        try:
            result = submission.submit_many(_sessions(), _provider(name), ids, _settings())
        except DBAPIError:
            raise
        except Exception as exc:
            if len(ids) == 1:  # a bug, not the provider (its errors are recorded inside)
                _set_aside(ids[0], "READY", "FAILED", exc)
                continue
            for letter_id in ids:
                sent += submit_letters(letter_ids=[letter_id])
            continue
        sent += len(result.submitted)
        if result.mail:
            publish_mail(result.mail)
        if result.again:  # a slow provider: the rest of the batch, to any free worker now
            _publish(submit_letters, result.again)
    return sent


@app.task(name="workers.tasks.send_mail")
def send_mail(mail_ids: list[int]) -> dict:
    return outbox.send_pending(_sessions(), _settings(), mail_ids)


@app.task(name="workers.tasks.poll_replies")
def poll_replies() -> int:
    lock = _redis().lock("gateway:lock:replies", timeout=4 * LOCK_TTL_S, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        return 0
    mail: list[int] = []

    def stored(ids: list[int]) -> None:  # forwards leave while later pages are fetched
        if not ids:
            return
        mail.extend(ids)
        publish_mail(ids)
        try:
            lock.reacquire()  # a long poll keeps its lock
        except redis.exceptions.LockError:
            pass  # lost already: at worst two polls overlap, and replies are deduplicated

    again = False
    try:
        # Two independent ways in: one being down must not stop the other.
        for name in _api_providers():
            before = len(mail)
            try:
                replies.poll_provider(_sessions(), _provider(name), _settings(), on_stored=stored)
            except ProviderError as exc:
                log.warning("replies from %s not polled this time: %s", name, exc)
                # It was making progress: try again soon rather than at the next beat tick.
                again = again or len(mail) > before
        try:
            with _transport_health("imap-replies"):
                stored(replies.poll_mailbox(_sessions(), reply_mailbox(), _settings()))
        except (OSError, IMAPClientError) as exc:
            log.warning("reply mailbox not polled this time: %s", exc)
    finally:
        _release(lock)
    if again:
        poll_replies.apply_async(countdown=5)  # a lost retry is harmless: beat polls too
    return len(mail)


@app.task(name="workers.tasks.poll_statuses")
def poll_statuses() -> dict:
    counts: dict = {}
    for name in _api_providers():
        with _sessions()() as session:
            ids = statuses.due_for_status(session, name)
        result = statuses.poll_statuses(_sessions(), _provider(name), ids, _settings())
        if result.get("mail"):
            publish_mail(result["mail"])
        counts[name] = {k: v for k, v in result.items() if k != "mail"}
    return counts


def _api_providers() -> list[str]:
    """Providers with an API to ask (desk and post letters are carried by people)."""
    from gateway.providers.registry import adapter_class, adapter_names
    return [n for n in adapter_names() if not getattr(adapter_class(n), "assisted", False)]


@app.task(name="workers.tasks.sync_catalogues")
def sync_catalogues() -> list:
    from gateway.providers.catalogue import sync_all
    with _sessions()() as session:
        reports = sync_all(session, _settings())
        session.commit()
    return [r.__dict__ for r in reports]


@app.task(name="workers.tasks.purge")
def purge() -> dict:
    """Daily: forget what the retention policy says (gateway/retention.py)."""
    from gateway.retention import purge as run_purge
    done = run_purge(_sessions(), _settings())
    log.info("purge: %d letters, %d raw mails, %d photos, %d reply pages, %d mails, "
             "%d writer addresses", done.letters, done.raw_messages, done.photos,
             done.reply_pages, done.mails, done.writer_addresses)
    return {"letters": done.letters, "writer_addresses": done.writer_addresses}


@app.task(name="workers.tasks.send_digests")
def send_digests() -> int:
    from gateway.digest.mail import queue_digests
    with _sessions()() as session:
        ids = queue_digests(session, _settings())
        session.commit()
    publish_mail(ids)
    return len(ids)


@app.task(name="workers.tasks.birthday_campaigns")
def birthday_campaigns() -> list[str]:
    """Once a day: a birthday campaign for each known birthday within the setting's days;
    each run: the reminders of confirmed subscribers not yet sent for open ones."""
    from datetime import UTC, datetime

    from gateway.birthday_reminders import queue_reminders
    from gateway.birthdays import run_daily
    with _sessions()() as session:
        made = run_daily(session, _settings().birthday_campaign_days)
        session.commit()
        mail = queue_reminders(session, _settings(), datetime.now(UTC).date())
        session.commit()
    if made:
        log.info("birthday campaigns: %s", ", ".join(m.tag for m in made))
    publish_mail(mail)
    return [m.tag for m in made]


@app.task(name="workers.tasks.close_postcards")
def close_postcards() -> int:
    """Postcards whose window has ended close, and their letters are submitted."""
    from gateway.postcards import close_due
    with _sessions()() as session:
        ids = close_due(session, _settings())
        session.commit()
    _publish(submit_letters, ids)
    return len(ids)


@app.task(name="workers.tasks.sweep")
def sweep() -> dict:
    from gateway.heartbeat import beat
    with _sessions()() as session:
        found = sweeper.sweep(session, _settings().stuck_after_s,
                              unconfirmed_after_s=_settings().confirm_token_days * 86400)
        beat(session, "worker")  # the dashboard's canary: a worker ran the sweep
        session.commit()
        found.send += queue_late_received(session, _settings())
        session.commit()
        released = release_budget_holds(session, _settings())
        session.commit()
    publish_checks(found.check)
    _publish(submit_letters, found.submit + released)
    publish_mail(found.send)
    return {"check": len(found.check), "submit": len(found.submit), "send": len(found.send)}
