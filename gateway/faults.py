"""Named crash points for the chaos suite.

`GATEWAY_CRASH_AT=intake.after_commit` makes the process exit at once (os._exit, no
cleanup, like SIGKILL) when it reaches that point; several names may be given, comma
separated, and `*` names every point. Off unless the variable is set.

`GATEWAY_CRASH_MARKER` makes each crash happen once across restarts:
- a path to a file: the first listed point reached crashes, then none ever again;
- a path ending in "/" (a directory): every listed point crashes once, each recorded by
  a file named after the point, so one run can crash at every point in turn.
"""

from __future__ import annotations

import os

EXIT_CODE = 137  # what a SIGKILLed process reports to a shell


def point(name: str) -> None:
    wanted = os.environ.get("GATEWAY_CRASH_AT")
    if not wanted:
        return
    names = {n.strip() for n in wanted.split(",")}
    if name not in names and "*" not in names:
        return
    marker = os.environ.get("GATEWAY_CRASH_MARKER")
    if marker:
        if marker.endswith("/"):
            os.makedirs(marker, exist_ok=True)
            marker = os.path.join(marker, name)
        try:  # O_EXCL: two processes reaching the point at once crash only one of them
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return
        os.write(fd, name.encode())
        os.close(fd)
    os._exit(EXIT_CODE)


def fired(marker_dir: str) -> list[str]:
    """The points that crashed, for a directory marker."""
    try:
        return sorted(os.listdir(marker_dir))
    except FileNotFoundError:
        return []
