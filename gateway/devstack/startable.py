"""One way for every local server to be used in a `with` block."""

from __future__ import annotations

from typing import Self


class Startable:
    """`with Server(...) as server:` starts it and stops it, whatever happens inside."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
