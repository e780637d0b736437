"""Named crash points for the chaos suite.

`GATEWAY_CRASH_AT=intake.after_commit` makes the process exit at once (os._exit, no
cleanup, like SIGKILL) the first time it reaches that point. Off unless the variable is set."""

from __future__ import annotations

import os


def point(name: str) -> None:
    wanted = os.environ.get("GATEWAY_CRASH_AT")
    if wanted and name in wanted.split(","):
        marker = os.environ.get("GATEWAY_CRASH_MARKER")
        if marker:  # crash only once across restarts: the marker file records that we did
            if os.path.exists(marker):
                return
            with open(marker, "w") as fh:
                fh.write(name)
        os._exit(137)
