"""Logs: one set-up for every process, and no e-mail address in any line, not even in
the exception texts libraries write (smtplib repeats the refused recipient)."""

from __future__ import annotations

import io
import json
import logging
import smtplib

import pytest

from gateway.devstack.smtp import SmtpSink
from gateway.logging_setup import REDACTED, RedactAddresses, configure

pytestmark = pytest.mark.privacy

WRITERS = ["anna.petrova@example.org", "анна@пример.рф"]


@pytest.fixture
def log_lines():
    """The root logger configured as every process configures it, into a buffer."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure("INFO", fmt="json", stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_real_smtp_refusal_is_logged_without_the_address(log_lines):
    refusals = {w: f"550 5.1.1 <{w}>: Recipient address rejected: User unknown"
                for w in WRITERS}
    log = logging.getLogger("gateway.pipeline.outbox")
    with SmtpSink(fail_codes=refusals) as sink:
        for writer in WRITERS:
            with smtplib.SMTP(sink.host, sink.port, timeout=5) as smtp:
                try:
                    smtp.sendmail("letters@gateway.local", [writer],
                                  b"Subject: hi\r\n\r\nhello\r\n",
                                  mail_options=[] if writer.isascii() else ["SMTPUTF8"])
                except smtplib.SMTPRecipientsRefused as exc:
                    assert writer in str(exc)  # the library's text does carry it
                    log.exception("sending to %s failed: %s", writer, exc)
                    log.warning("refused", extra={"recipient": writer, "error": repr(exc)})
    every = log_lines()  # the SMTP server in this process logged its side too (mail.log)
    lines = [line for line in every if line["logger"] == log.name]
    assert len(lines) == 4
    text = "\n".join(str(v) for line in every for v in line.values())
    for writer in WRITERS:
        local, domain = writer.split("@")
        as_bytes = str(local.encode())[2:-1]  # how a bytes repr shows it: \xd0\xb0…
        assert local not in text and domain not in text and as_bytes not in text, text
    # The exception is still there to debug with, the address replaced.
    assert "SMTPRecipientsRefused" in lines[0]["exc_info"] and REDACTED in lines[0]["exc_info"]
    assert "Recipient address rejected" in lines[0]["message"]
    assert lines[1]["recipient"] == REDACTED and REDACTED in lines[1]["error"]
    assert {"time", "level", "logger", "pid", "message"} <= set(lines[0])


def test_celery_and_gunicorn_use_the_same_set_up():
    """The worker and beat set logging up through Celery's signal; the dashboard through
    gunicorn's logger class: both end with the redaction filter on every handler."""
    from gunicorn.config import Config

    from gateway.web.gunicorn_logging import GatewayLogger
    from workers.sender import app
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        app.log.setup(loglevel="INFO")  # what `celery worker` and `celery beat` call
        ours = [h for h in root.handlers if getattr(h, "_gateway", False)]
        assert len(ours) == 1 and any(isinstance(f, RedactAddresses) for f in ours[0].filters)
        cfg = Config()
        cfg.set("accesslog", "-")
        glog = GatewayLogger(cfg)
        handlers = [*glog.error_log.handlers, *glog.access_log.handlers]
        assert len(handlers) >= 2 and all(
            any(isinstance(f, RedactAddresses) for f in h.filters) for h in handlers)
    finally:
        root.handlers[:] = saved


@pytest.mark.parametrize("argv,expect", [
    (["-m", "celery", "-A", "workers.celery_app", "worker", "-c", "1", "--without-gossip",
      "--without-mingle", "-l", "INFO"], "Cannot connect"),
    (["-m", "gateway.cli", "imap-watch"], "inbox watcher lost"),
], ids=["worker", "imap-watch"])
def test_a_real_process_logs_json_lines_without_addresses(tmp_path, argv, expect):
    """The worker and the watcher, started as in production, against servers that are not
    there: their complaints name the mailbox login (an address) and the broker URL."""
    import os
    import subprocess
    import sys
    import time

    from gateway.devstack.ports import free_port
    env = {**os.environ, "GATEWAY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
           "GATEWAY_IMAP_PORT": str(free_port()), "GATEWAY_IMAP_USER": "anna@example.org",
           "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gw.db'}"}
    err = tmp_path / "stderr"
    with open(err, "wb") as sink:
        proc = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL,
                                stderr=sink, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while expect not in err.read_text(errors="replace") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    [first, *_] = [line for line in lines if expect in line["message"]]
    assert first["level"] in ("ERROR", "WARNING") and first["pid"] > 0
    assert "anna@example.org" not in err.read_text()
