"""Gunicorn's own loggers (errors, access lines) in the gateway's one logging set-up:
the same format and the same address redaction (an access line can carry a query string
with an address in it). `gateway web` passes this class as --logger-class."""

from __future__ import annotations

from gunicorn.glogging import Logger

from gateway.logging_setup import configure, protect


class GatewayLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        handler = configure()  # the root logger: the dashboard's own records
        for own in (*self.error_log.handlers, *self.access_log.handlers):
            protect(own, None).setFormatter(handler.formatter)
