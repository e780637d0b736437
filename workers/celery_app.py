"""The Celery app the worker runs: the slim app of `workers.sender` plus its tasks.
Processes that only send tasks by name (beat, the inbox watcher) import `workers.sender`."""

from __future__ import annotations

from workers.sender import app

app.conf.include = ["workers.tasks"]

__all__ = ["app"]
