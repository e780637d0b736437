"""The dashboard overview with a million letters: rows made directly in SQL (generate_series),
then `/` and the live fragment requested through the app's test client, logged in.

The history is plausible for two years of a busy group: letters spread evenly over 730
days, old ones finished (mostly DELIVERED, some REJECTED/IGNORED/...), the newest two
thousand still on their way; every letter has the events its state implies (RECEIVED,
READY, SUBMITTING, SUBMITTED, DELIVERED...), so the event log holds ~4 rows a letter.

`add_campaign` then runs a campaign and an evening over those rows: a campaign for all 200
prisoners holding a third of the last 30,000 letters (10,000) and tonight's evening holding
half of the newest 2,000 (1,000, some still moving), so their pages are timed at the same
scale as the overview, and the overview itself with both running."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, select, text

from bench.letters import directory

IN_FLIGHT_TAIL = 2000
# (share in 1000, state) for finished letters and for the newest ones still moving.
OLD_MIX = ((760, "DELIVERED"), (800, "SUBMITTED"), (830, "CENSORED"), (930, "REJECTED"),
           (975, "IGNORED"), (990, "DISCARDED"), (994, "HELD"), (997, "FAILED"),
           (1000, "QUARANTINED"))
NEW_MIX = ((300, "SUBMITTED"), (450, "DELIVERED"), (550, "READY"), (600, "SUBMITTING"),
           (700, "RECEIVED"), (800, "HELD"), (850, "DESK"), (880, "UNKNOWN"), (920, "FAILED"),
           (950, "QUARANTINED"), (1000, "REJECTED"))
SPENT = ("SUBMITTED", "DELIVERED", "CENSORED")
# The events each final state implies, in order (after RECEIVED).
PATHS = {
    "DELIVERED": ("READY", "SUBMITTING", "SUBMITTED", "DELIVERED"),
    "CENSORED": ("READY", "SUBMITTING", "SUBMITTED", "CENSORED"),
    "SUBMITTED": ("READY", "SUBMITTING", "SUBMITTED"),
    "SUBMITTING": ("READY", "SUBMITTING"),
    "UNKNOWN": ("READY", "SUBMITTING", "UNKNOWN"),
    "FAILED": ("READY", "SUBMITTING", "FAILED"),
    "READY": ("READY",), "HELD": ("HELD",), "DESK": ("DESK",), "REJECTED": ("REJECTED",),
    "IGNORED": ("IGNORED",), "DISCARDED": ("HELD", "DISCARDED"), "QUARANTINED": ("QUARANTINED",),
    "RECEIVED": (),
}


def _case(mix, expr: str) -> str:
    whens = " ".join(f"WHEN {expr} < {upper} THEN '{state}'" for upper, state in mix)
    return f"CASE {whens} END"


def populate(url: str, n: int, log=print) -> dict[str, float]:
    """Fill a migrated, empty PostgreSQL database. Returns seconds per step."""
    engine = create_engine(url)
    took: dict[str, float] = {}
    bucket = "((g::bigint * 7919) % 1000)"
    state = (f"CASE WHEN g > {n - IN_FLIGHT_TAIL} THEN {_case(NEW_MIX, bucket)} "
             f"ELSE {_case(OLD_MIX, bucket)} END")
    spent = ", ".join(f"'{s}'" for s in SPENT)
    steps = [
        ("prisoners", "INSERT INTO prisoners (code, last_name, first_name, middle_name, birth_year,"
         " region, facility_name, facility_id, provider, status, can_receive, created_at,"
         " updated_at) VALUES " + ", ".join(
             f"('{p.code}', '{p.last_name}', '{p.first_name}', '{p.middle_name}', {p.birth_year},"
             f" '{p.region}', '{p.facility_name}', '{p.facility_id}', 'http', 'in_custody', true,"
             " now(), now())" for p in directory())),
        ("inbound_messages", f"""
         INSERT INTO inbound_messages (id, mailbox, uidvalidity, uid, content_hash, size, raw,
                                       received_at)
         SELECT g, 'letters@127.0.0.1/INBOX', 1, g, md5(g::text) || md5((-g)::text),
                2400 + g % 3000, convert_to('raw message ' || g, 'UTF8'),
                now() - interval '730 days' * ({n} - g) / {n}
         FROM generate_series(1, {n}) g"""),
        ("letters", f"""
         INSERT INTO letters (id, public_id, inbound_id, state, prisoner_id, sender_sealed,
                              sender_hash, writer_name, subject, body, rendered, provider, pages,
                              photos, price, currency, provider_number, provider_status,
                              attempts, next_attempt_at, created_at, updated_at, submitted_at,
                              reason)
         SELECT g, 'L-' || substr(md5(g::text), 1, 20), g, s.state,
                (SELECT min(id) FROM prisoners) + g % 200,
                'sealed', md5('writer' || (g % 50000)), 'Анна', 'Письмо', 'Текст письма ' || g,
                'Текст письма ' || g, 'http', 1, (g % 5 = 0)::int,
                CASE WHEN s.state IN ({spent}) THEN 55 + 35 * (g % 5 = 0)::int END,
                CASE WHEN s.state IN ({spent}) THEN 'RUB' END,
                CASE WHEN s.state IN ({spent}) THEN 'FP-' || g END,
                CASE WHEN s.state IN ({spent}) THEN lower(s.state) END,
                CASE WHEN s.state IN ({spent}) THEN 1 ELSE 0 END, NULL,
                t.at, t.at + interval '3 minutes',
                CASE WHEN s.state IN ({spent}) THEN t.at + interval '2 minutes' END,
                NULL
         FROM generate_series(1, {n}) g
         CROSS JOIN LATERAL (SELECT {state} AS state) s
         CROSS JOIN LATERAL (SELECT now() - interval '730 days' * ({n} - g) / {n} AS at) t"""),
        ("letter_events", "INSERT INTO letter_events (letter_id, at, from_state, to_state, actor,"
         " note) SELECT l.id, l.created_at + interval '30 seconds' * (u.n - 1), p.path[u.n - 1],"
         " u.state, 'system', NULL FROM letters l"
         " CROSS JOIN LATERAL (SELECT ARRAY['RECEIVED'] || CASE l.state " + " ".join(
             f"WHEN '{s}' THEN ARRAY[{', '.join(repr(x) for x in path)}]::text[]"
             for s, path in PATHS.items() if path) +
         " ELSE ARRAY[]::text[] END AS path) p"
         " CROSS JOIN LATERAL unnest(p.path) WITH ORDINALITY AS u(state, n)"),
        ("sequences", "SELECT setval(pg_get_serial_sequence('letters', 'id'), max(id)) FROM letters;"
         " SELECT setval(pg_get_serial_sequence('inbound_messages', 'id'), max(id))"
         " FROM inbound_messages"),
    ]
    for name, sql in steps:
        t = time.monotonic()
        with engine.begin() as conn:
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
        took[name] = time.monotonic() - t
        log(f"  {name}: {took[name]:.1f}s")
    t = time.monotonic()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))  # what autovacuum would have done by now
    took["vacuum_analyze"] = time.monotonic() - t
    log(f"  vacuum analyze: {took['vacuum_analyze']:.1f}s")
    engine.dispose()
    return took


CAMPAIGN_WINDOW = 30_000  # the newest letters a running campaign spans


def add_campaign(url: str, n: int, log=print) -> tuple[int, int]:
    """A campaign and a letter evening running over a populated database; their ids."""
    from datetime import date

    from sqlalchemy.orm import Session

    from gateway.models import Campaign, Evening

    engine = create_engine(url)
    t = time.monotonic()
    with Session(engine) as session:
        campaign = Campaign(tag="bench-spring", title="Весна", created_by="bench")
        session.add(campaign)
        session.flush()
        evening = Evening(code="bench-eve", city="Берлин", held_on=date.today(),
                          campaign_id=campaign.id, created_by="bench")
        session.add(evening)
        session.flush()
        ids = (campaign.id, evening.id)
        session.commit()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO campaign_prisoners (campaign_id, prisoner_id) "
                          "SELECT :c, id FROM prisoners"), {"c": ids[0]})
        conn.execute(text("UPDATE letters SET campaign_id = :c WHERE id > :lo AND id % 3 = 0"),
                     {"c": ids[0], "lo": n - CAMPAIGN_WINDOW})
        conn.execute(text("UPDATE letters SET campaign_id = :c, evening_id = :e "
                          "WHERE id > :lo AND id % 2 = 0"),
                     {"c": ids[0], "e": ids[1], "lo": n - IN_FLIGHT_TAIL})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE letters"))
    engine.dispose()
    log(f"  a campaign and an evening over the newest letters: {time.monotonic() - t:.1f}s")
    return ids


def campaign_paths(campaign_id: int, evening_id: int) -> tuple[str, ...]:
    return (f"/campaigns/{campaign_id}", f"/campaigns/{campaign_id}/live",
            f"/evenings/{evening_id}", f"/evenings/{evening_id}/live")


@dataclass(frozen=True)
class Timing:
    path: str
    cached: bool
    samples_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)


def percentile(values, pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


OVERVIEW_PATHS = ("/", "/overview/live")


def measure(url: str, requests: int = 40, log=print, extra_paths: tuple[str, ...] = (),
            paths: tuple[str, ...] = OVERVIEW_PATHS) -> list[Timing]:
    """Time the overview's `paths`, logged in, in two configurations: "cache off" computes
    every figure on every request (the settled counts too: the first view after a start),
    "cache on" is the default (settled counts and spend from the once-a-minute background
    cache, everything in flight read fresh: what every refresh of a watching organizer
    costs). `extra_paths` (a campaign's and an evening's pages, which have no cache) are
    timed once, in the default configuration."""
    out: list[Timing] = []
    for cached in (False, True):
        client = _client(url, cached)
        for path in (*paths, *(extra_paths if cached else ())):
            headers = {"HX-Request": "true"} if path.endswith("/live") else {}
            for _ in range(3):  # warm: templates compiled, connections open, cache filled
                client.get(path, headers=headers)
            samples = []
            # The cold pass waits ~0.5 s a request on the settled counts: fewer suffice.
            for _ in range(requests if cached else max(requests // 4, 5)):
                t = time.perf_counter()
                r = client.get(path, headers=headers)
                samples.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"GET {path}: {r.status_code}")
            timing = Timing(path, cached, tuple(samples))
            out.append(timing)
            log(f"  GET {path} ({'cache on' if cached else 'cache off'}): "
                f"p50 {timing.p50:.1f} ms, p95 {timing.p95:.1f} ms")
    return out


# -- alone: python -m bench.overview ---------------------------------------------------------

def explain(url: str, paths: tuple[str, ...], log=print) -> None:
    """Every statement each page runs, with EXPLAIN (ANALYZE, BUFFERS): what the plans show
    is what to fix. The statements are caught by an engine hook during one logged-in GET."""
    from sqlalchemy import event

    from gateway.db import engine_for

    client = _client(url, cached=True)
    engine = engine_for(url)
    for path in paths:
        headers = {"HX-Request": "true"} if path.endswith("/live") else {}
        client.get(path, headers=headers)  # warm: the settled cache filled, templates built
        seen: list[tuple[str, object]] = []

        def hook(conn, cursor, statement, params, context, executemany, seen=seen):
            seen.append((statement, params))

        event.listen(engine, "before_cursor_execute", hook)
        try:
            client.get(path, headers=headers)
        finally:
            event.remove(engine, "before_cursor_execute", hook)
        log(f"\n=== GET {path}: {len(seen)} statements")
        with engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            for statement, params in seen:
                if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                    log(f"--- (not explained) {statement.split(chr(10))[0][:100]}")
                    continue
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                log(f"--- {' '.join(statement.split())[:300]}\n{plan}")
            conn.rollback()


def _client(url: str, cached: bool):
    """A logged-in test client of a fresh app; `cached` False computes every figure on
    every request (the settled counts too)."""
    from gateway.config import Settings
    from gateway.db import session_factory
    from gateway.models import User
    from gateway.web.accounts import create_user
    from gateway.web.app import create_app

    settings = Settings(database_url=url, secret_key="bench-secret-0123456789abcdef0123456789")
    with session_factory(url)() as session:
        if session.scalar(select(User.id).where(User.username == "bench")) is None:
            create_user(session, "bench", "bench-password", "admin")
            session.commit()
    app = create_app(settings)
    if not cached:
        app.config["OVERVIEW_SETTLED_SECONDS"] = 0.0
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = client.post("/login", data={"username": "bench", "password": "bench-password",
                                    "csrf_token": token})
    if r.status_code != 302:
        raise RuntimeError(f"login failed: {r.status_code}")
    return client


@contextmanager
def kept_database(name: str, rows: int, log=print) -> Iterator[tuple[str, tuple[int, int]]]:
    """A named database on the test server, made and populated once and kept: the next run
    with the same name and --rows reuses it (a 1M database takes ~3 minutes to make). Its
    rows and the campaign's and evening's ids are kept as the database's comment."""
    from sqlalchemy import make_url

    from gateway.devstack.postgres import DEFAULT_ADMIN_URL
    from gateway.migrate import upgrade

    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", name):
        raise SystemExit(f"--keep {name!r}: lowercase letters, digits and _ only")
    admin = make_url(DEFAULT_ADMIN_URL)
    url = admin.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        note = conn.scalar(text("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                "WHERE datname = :n"), {"n": name})
        exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
        made = re.fullmatch(r"bench.overview rows=(\d+) campaign=(\d+) evening=(\d+)", note or "")
        if made and int(made[1]) == rows:
            ids = (int(made[2]), int(made[3]))
            log(f"reusing database {name} ({rows:,} letters)")
            upgrade(url)  # a new migration of this branch applies to the kept rows
        else:
            if exists:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            log(f"making database {name} ({rows:,} letters), kept after the run")
            upgrade(url)
            populate(url, rows, log=log)
            ids = add_campaign(url, rows, log=log)
            conn.execute(text(f"COMMENT ON DATABASE \"{name}\" IS "
                              f"'bench.overview rows={rows} campaign={ids[0]} evening={ids[1]}'"))
    engine.dispose()
    yield url, ids


@contextmanager
def fresh_database(rows: int, log=print) -> Iterator[tuple[str, tuple[int, int]]]:
    from gateway.devstack.postgres import throwaway_database
    from gateway.migrate import upgrade

    with throwaway_database() as url:
        upgrade(url)
        populate(url, rows, log=log)
        yield url, add_campaign(url, rows, log=log)


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m bench.overview",
                                 description="The dashboard's pages over many letters "
                                             "(part 8 of the benchmark, alone).")
    ap.add_argument("--rows", type=int, default=1_000_000, help="letters (default 1,000,000)")
    ap.add_argument("--keep", metavar="NAME",
                    help="make the database under this name once and keep it; later runs "
                         "with the same name and --rows reuse it (drop it by hand when done)")
    ap.add_argument("--requests", type=int, default=40, help="timed requests a page")
    ap.add_argument("--explain", action="store_true",
                    help="print EXPLAIN (ANALYZE, BUFFERS) of every statement of every page "
                         "instead of timing")
    ap.add_argument("--paths", help="comma-separated paths (default: every page)")
    args = ap.parse_args(argv)
    with (kept_database(args.keep, args.rows) if args.keep else fresh_database(args.rows)) \
            as (url, ids):
        paths = tuple(args.paths.split(",")) if args.paths else \
            ("/", "/overview/live", *campaign_paths(*ids))
        if args.explain:
            explain(url, paths)
            return
        ours = tuple(p for p in paths if p in OVERVIEW_PATHS)
        timings = measure(url, requests=args.requests, paths=ours,
                          extra_paths=tuple(p for p in paths if p not in OVERVIEW_PATHS))
        for t in timings:
            print(f"{t.path} {'cache on ' if t.cached else 'cache off'} "
                  f"p50 {t.p50:6.1f} ms  p95 {t.p95:6.1f} ms")


if __name__ == "__main__":
    main()
