"""The inbox watcher as its own small process (`gateway imap-watch` runs this): IMAP IDLE
on the shared inbox, a bell (`fetch_inbox`, sent by name) when mail arrives, a heartbeat
row. It loads neither the command line (typer, rich) nor the pipeline, its ORM models or
the ORM itself (gateway/db.py imports it only for sessions): ~60 MB PSS at its peak
(bench/README.md, run 14: 65 with the ORM); it needs only imapclient, the settings, the slim
Celery app and SQLAlchemy Core for the heartbeat."""

from __future__ import annotations

import logging

log = logging.getLogger("gateway.imap-watch")


def main() -> None:
    from gateway.config import get_settings
    from gateway.db import engine_for
    from gateway.heartbeat import Throttled
    from gateway.logging_setup import configure
    from gateway.mail.imap import Mailbox
    from gateway.pipeline.watcher import watch
    from workers.sender import send

    configure()
    settings = get_settings()
    mailbox = Mailbox.inbox(settings)
    log.info("watching %s", mailbox.label)
    watch(mailbox, on_new=lambda: send("workers.tasks.fetch_inbox"),
          on_heartbeat=Throttled(engine_for(settings.database_url), "imap-watch"))


if __name__ == "__main__":
    main()
