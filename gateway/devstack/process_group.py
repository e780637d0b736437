"""A server process started in its own process group, so it and every child it forks
can be paused, resumed and stopped together, and none outlives the test run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.devstack.startable import Startable


def _die_with_parent(argv: list[str]) -> list[str]:
    """Prefix argv so the server gets SIGTERM when this process dies: a killed pytest
    or demo then leaves no servers behind.

    setpriv (util-linux, always on Debian) sets PR_SET_PDEATHSIG and execs; a
    preexec_fn doing the same is unsafe once other threads run (the SMTP sink's).
    Linux sends the signal when the *thread* that started the child exits: start
    servers from the main thread.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


class ProcessGroup:
    """One leader process (plus whatever it forks) sharing a process group."""

    def __init__(self, argv: Sequence[str], log_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self._popen: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        if self._popen is not None:
            raise RuntimeError(f"{self.argv[0]} already started")
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                _die_with_parent(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # own process group, for pause/resume/stop
            )

    def exited(self) -> int | None:
        """The leader's exit code, or None while it runs."""
        return self._popen.poll() if self._popen else None

    def pids(self) -> list[int]:
        """Every live process of the group (the leader and its children)."""
        if self._popen is None:
            return []
        return pids_in_group(self._popen.pid)

    def pause(self) -> None:
        """SIGSTOP the group; returns once every process is stopped (signals are async)."""
        self._signal(signal.SIGSTOP)
        self.paused = True
        self._await_states(lambda states: states <= {"T"})

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False
        self._await_states(lambda states: "T" not in states)

    def states(self) -> set[str]:
        """The /proc state letters of the group's processes (T = stopped)."""
        return {state for _pid, state in _group_members(self._popen.pid)} if self._popen else set()

    def _await_states(self, done: Callable[[set[str]], bool], timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.states()) and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM the leader, wait up to `grace` seconds, then SIGKILL the whole group.

        Servers here keep nothing worth a slow shutdown; a Dovecot stopped right after
        start can otherwise hang 5 s (imap-login waiting on the already stopped stats).
        """
        if self._popen is None:
            return
        popen, self._popen = self._popen, None
        self.paused = False
        group = popen.pid
        _killpg(group, signal.SIGCONT)  # in case it is paused
        # Only the leader: Dovecot's master shuts its children down in order.
        popen.terminate()
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        if popen.poll() is None or pids_in_group(group):
            _killpg(group, signal.SIGKILL)  # the leader if stuck, and children it left
        popen.wait()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, sig: signal.Signals) -> None:
        if self._popen is None:
            raise RuntimeError(f"{self.argv[0]} is not running")
        _killpg(self._popen.pid, sig)


def _killpg(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        pass


def pids_in_group(group: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `group`, read from /proc."""
    return [pid for pid, _state in _group_members(group)]


def _group_members(group: int) -> list[tuple[int, str]]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        state, _ppid, pgrp = stat.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) == group and state != "Z":
            members.append((int(entry.name), state))
    return members


class GroupServer(Startable):
    """What a server run as one ProcessGroup offers the tests: freeze, thaw, look.
    Subclasses set `_process` (None when stopped) and `label`."""

    label = "server"
    _process: ProcessGroup | None = None

    def pause(self) -> None:
        """Freeze every process of the server: connections hang instead of failing."""
        self._running().pause()

    def resume(self) -> None:
        self._running().resume()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.exited() is None

    @property
    def paused(self) -> bool:
        return self._process is not None and self._process.paused

    def pids(self) -> list[int]:
        return self._process.pids() if self._process else []

    def _running(self) -> ProcessGroup:
        if self._process is None:
            raise RuntimeError(f"{self.label} is not running")
        return self._process
