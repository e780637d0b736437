"""One logging set-up for every process (worker, beat, watcher, dashboard, CLI): the
standard library, one line per record (JSON by default), and a filter on every handler
that takes e-mail addresses out of the record before anything formats it: the message,
its arguments, extra fields, stack and exception texts. Libraries repeat addresses in
their errors (smtplib's SMTPRecipientsRefused, a server's "550 <anna@…>: unknown"), so
redacting only our own messages would not be enough.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import IO

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[address]"
# Whatever surrounds an "@" (or its URL form %40) up to a delimiter, with a dot after it.
# Backslashes are allowed inside: a bytes repr shows a Cyrillic address as \xd0\xb0…
_ATOM = r"""[^\s<>"'(),;:\[\]@%]"""
ADDRESS = re.compile(rf"""(?:"[^"\n]{{0,64}}"|{_ATOM}+)(?:@|%40){_ATOM}+\.{_ATOM}+""")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def redact(text: str) -> str:
    return ADDRESS.sub(REDACTED, text)


class RedactAddresses(logging.Filter):
    """Rewrites the record in place (it never drops one). The exception is formatted here
    and kept only as redacted text: formatters use `exc_text` when `exc_info` is gone."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info:
            if not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def formatter(fmt: str = "json") -> logging.Formatter:
    if fmt == "text":
        return logging.Formatter(TEXT_FORMAT)
    # Not ASCII-escaped: a Cyrillic word stays searchable in the log as written.
    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level",
                                        "name": "logger", "process": "pid"},
                         json_ensure_ascii=False)


def protect(handler: logging.Handler, fmt: str | None = None) -> logging.Handler:
    """Give a handler (ours, or one a library made) the filter and, if asked, our format."""
    if not any(isinstance(f, RedactAddresses) for f in handler.filters):
        handler.addFilter(RedactAddresses())
    if fmt is not None:
        handler.setFormatter(formatter(fmt))
    return handler


def configure(level: str | int | None = None, *, fmt: str | None = None,
              logfile: str | None = None, stream: IO[str] | None = None) -> logging.Handler:
    """Give the root logger one protected handler (stderr by default), replacing the one
    an earlier call added: safe to call again (Celery calls it in each pool process). The
    process's real stderr: Celery replaces sys.stderr by a proxy that logs what it gets."""
    if level is None or fmt is None:
        from gateway.config import get_settings
        settings = get_settings()
        level = level if level is not None else settings.log_level
        fmt = fmt or settings.log_format
    handler = (logging.FileHandler(logfile, encoding="utf-8") if logfile
               else logging.StreamHandler(stream or sys.__stderr__))
    handler._gateway = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in root.handlers[:]:
        if getattr(old, "_gateway", False):  # ours from an earlier call; others stay
            root.removeHandler(old)
            old.close()
    root.addHandler(protect(handler, fmt))
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx and httpcore log every request at INFO: one line a letter, and on the CLI a
    # JSON line between the command's own words. Our own events say what was sent.
    for chatty in ("httpx", "httpcore"):
        if logging.getLogger(chatty).level == logging.NOTSET:
            logging.getLogger(chatty).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    # Loggers with handlers of their own (gunicorn's, a library's) get the filter too.
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            for own in logger.handlers:
                protect(own)
    return handler
