"""Peak memory of the gateway's processes, sampled with psutil while the benchmark runs.

Each role (worker, beat, watch, web) is a process tree: the Celery parent, its prefork
children and their parse subprocesses; gunicorn's master and workers. RSS counts pages
shared after fork once per process, so the RSS sum overstates what the stack needs; PSS
(proportional set size) splits shared pages between their users and is the footprint a
small server actually has to hold. Both are reported; the headline is the RSS sum."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

MB = 1024 * 1024


@dataclass
class Peaks:
    role_rss: dict[str, float] = field(default_factory=dict)  # MB, peak of the role's tree sum
    role_pss: dict[str, float] = field(default_factory=dict)
    role_procs: dict[str, int] = field(default_factory=dict)  # most processes seen at once
    process_rss: dict[str, float] = field(default_factory=dict)  # "role:name" -> peak MB
    process_pss: dict[str, float] = field(default_factory=dict)  # "role:name" -> peak MB
    process_uss: dict[str, float] = field(default_factory=dict)  # private pages, peak MB
    total_rss: float = 0.0  # peak of the sum over every role at one instant
    total_pss: float = 0.0
    samples: int = 0


GATEWAY_ROLES = frozenset({"worker", "beat", "watch", "web"})


class Sampler:
    """Samples the trees of the watched roles. Only GATEWAY_ROLES count towards the totals;
    other roles (the simulator, the naive script) are watched for their CPU and own peaks."""

    def __init__(self, interval: float = 1.0, pss_every: int = 5) -> None:
        # RSS is cheap to read; PSS walks the page tables (smaps_rollup), so it is read
        # every `pss_every` samples only: the sampler must not load the machine it measures.
        self.interval = interval
        self.pss_every = pss_every
        self.roots: dict[str, int] = {}
        # Roles counted for CPU only, by a function giving their pids at each sample (not
        # their children): the servers beside the gateway, which the ratio's CPU shares.
        self.others: dict[str, Callable[[], list[int]]] = {}
        self._cpu: dict[int, tuple[str, float]] = {}  # pid -> (role, last cumulative CPU s)
        self.peaks = Peaks()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._lock = threading.Lock()
        self._sampling = threading.Lock()  # the thread and cpu() both sample

    def watch(self, role: str, pid: int) -> None:
        with self._lock:
            self.roots[role] = pid

    def watch_cpu(self, role: str, pids: Callable[[], list[int]]) -> None:
        """Count the CPU of the processes `pids()` names at each sample under `role`."""
        with self._lock:
            self.others[role] = pids

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each role's processes (alive or gone), as last sampled."""
        self.sample()
        out: dict[str, float] = {}
        with self._lock:
            for role, seconds in self._cpu.values():
                out[role] = out.get(role, 0.0) + seconds
        return out

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> Peaks:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.peaks

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        with self._sampling:
            self._sample()

    def _sample(self) -> None:
        with self._lock:
            roots = dict(self.roots)
        total_rss = total_pss = 0.0
        p = self.peaks
        with_pss = p.samples % self.pss_every == 0
        for role, pid in roots.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            rss = pss = 0.0
            alive = 0
            for proc in procs:
                try:
                    info = proc.memory_full_info() if with_pss else proc.memory_info()
                    name = " ".join(proc.cmdline()[1:4])[:60] or proc.name()
                    times = proc.cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                with self._lock:
                    self._cpu[proc.pid] = (role, times.user + times.system)
                alive += 1
                rss += info.rss / MB
                pss += getattr(info, "pss", info.rss) / MB
                key = f"{role}:{proc.pid}:{name}"
                p.process_rss[key] = max(p.process_rss.get(key, 0.0), info.rss / MB)
                if with_pss:
                    p.process_pss[key] = max(p.process_pss.get(key, 0.0), info.pss / MB)
                    p.process_uss[key] = max(p.process_uss.get(key, 0.0), info.uss / MB)
            p.role_rss[role] = max(p.role_rss.get(role, 0.0), rss)
            if with_pss:
                p.role_pss[role] = max(p.role_pss.get(role, 0.0), pss)
            p.role_procs[role] = max(p.role_procs.get(role, 0), alive)
            if role in GATEWAY_ROLES:
                total_rss += rss
                total_pss += pss
        self._sample_others()
        p.total_rss = max(p.total_rss, total_rss)
        if with_pss:
            p.total_pss = max(p.total_pss, total_pss)
        p.samples += 1

    def _sample_others(self) -> None:
        with self._lock:
            others = dict(self.others)
        for role, pids in others.items():
            for pid in pids():
                try:
                    times = psutil.Process(pid).cpu_times()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                with self._lock:
                    self._cpu[pid] = (role, times.user + times.system)


def backends_of(database_url: str) -> Callable[[], list[int]]:
    """The PostgreSQL backends serving this database (their titles name it) and the server's
    own helpers (WAL writer, checkpointer: they write what these backends commit)."""
    name = database_url.rsplit("/", 1)[-1].split("?")[0]

    def pids() -> list[int]:
        out = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            title = cmdline[0] if cmdline else ""
            if title.startswith("postgres:") and (f" {name} " in title or "(" not in title):
                out.append(proc.pid)
        return out
    return pids


# -- `python -m bench.footprint`: the memory part alone -------------------------------------

def main(argv: list[str] | None = None) -> int:
    """Start the gateway's four roles as the benchmark does, push `--n` letters through,
    use the dashboard, and print each process's peak RSS and peak PSS. Minutes, not the
    whole benchmark: for measuring a memory change."""
    import argparse
    import shutil
    import tempfile
    import time
    from contextlib import ExitStack
    from pathlib import Path

    from bench.letters import WRITERS, directory, directory_csv, letters, writer
    from bench.run import use_web, wait_settled
    from bench.stack import Gateway, deliver_maildir, prime_index, start_servers

    ap = argparse.ArgumentParser(prog="python -m bench.footprint", description=main.__doc__)
    ap.add_argument("--n", type=int, default=300, help="letters to push through (300)")
    ap.add_argument("--worker-args", default="",
                    help='extra `gateway worker` options to try, e.g. "--pool threads"')
    ap.add_argument("--beat-watches-inbox", action="store_true",
                    help="the small-server shape: `gateway beat --watch-inbox`, no imap-watch")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="gw-footprint-"))
    sampler = Sampler(interval=0.5, pss_every=2)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, True)
        servers = start_servers(stack, root)
        dovecot = servers.dovecot
        gw = Gateway(root, database_url=servers.database_url, redis_url=servers.redis_url,
                     dovecot=dovecot, sink=servers.sink, simulator=servers.simulator)
        gw.COMMANDS = {**gw.COMMANDS, "worker": [*gw.COMMANDS["worker"], *args.worker_args.split()]}
        gw.on_start = lambda name, proc: sampler.watch(name, proc.pid)
        stack.callback(gw.stop_all)
        prisoners = directory(200)
        gw.cli("db", "upgrade")
        gw.cli("prisoners", "import", str(directory_csv(prisoners, root / "prisoners.csv")))
        gw.seed_writers([writer(i)[2] for i in range(WRITERS)])
        sampler.start()
        roles = ("worker", "beat", "web", "watch")
        if args.beat_watches_inbox:
            gw.COMMANDS = {**gw.COMMANDS, "beat": [*gw.COMMANDS["beat"], "--watch-inbox"]}
            roles = ("worker", "beat", "web")
        for role in roles:
            gw.start(role)
        gw.wait_worker_ready()
        gw.wait_web_ready()
        time.sleep(3)
        deliver_maildir(dovecot, "letters", [x.raw for x in letters(0, args.n, prisoners)])
        prime_index(dovecot, "letters")
        t0 = time.monotonic()
        gw.send_task("workers.tasks.fetch_inbox", "intake")
        states = wait_settled(gw, args.n, "letters")
        seconds = time.monotonic() - t0  # CPU-bound and noisy on a shared machine
        use_web(gw)
        time.sleep(1)
        sampler.sample()
        peaks = sampler.stop()
        print(report(peaks))
        print(f"{states.get('SUBMITTED', 0)}/{args.n} submitted, settled after {seconds:.1f}s")
    return 0


def report(p: Peaks) -> str:
    lines = [f"{'process':<64} {'peak RSS':>9} {'PSS':>7} {'USS':>7}"]
    for key in sorted(p.process_rss):
        lines.append(f"{key[:64]:<64} {p.process_rss[key]:9.1f} {p.process_pss.get(key, 0):7.1f}"
                     f" {p.process_uss.get(key, 0):7.1f}")
    lines.append("")
    for role in sorted(p.role_rss):
        lines.append(f"{role:<10} peak RSS {p.role_rss[role]:7.1f}  peak PSS "
                     f"{p.role_pss.get(role, 0):7.1f}  processes {p.role_procs.get(role, 0)}")
    lines.append(f"stack_rss_mb={p.total_rss:.0f} stack_pss_mb={p.total_pss:.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
