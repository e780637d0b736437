"""Run the same work in several threads at once, as a threaded worker's tasks do."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


def run_together(target: Callable[..., object], arg_sets: Iterable[tuple],
                 timeout: float = 30.0) -> list[BaseException]:
    """target(*args) for each args in a thread of its own, started together; waits for all
    (up to `timeout` each) and returns what they raised, so a test can assert none did (a
    thread's exception would otherwise only be a warning)."""
    failed: list[BaseException] = []

    def run(*args) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test to assert on
            failed.append(exc)

    threads = [threading.Thread(target=run, args=args) for args in arg_sets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    if any(t.is_alive() for t in threads):
        failed.append(TimeoutError(f"a thread still ran after {timeout} s"))
    return failed
