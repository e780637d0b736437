"""The simulator's state in its own SQLite file, so that a restart loses nothing.

Each operation opens its own connection (the server is threaded); writers take the
database lock up front (`BEGIN IMMEDIATE`), which serializes concurrent submissions with
one idempotency key without any in-process lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from .faults import FaultDraw, FaultPlan
from .money import Kopecks, money_json
from .submission import LetterDraft

DEFAULT_BALANCE: Kopecks = 100_000_00
LETTER_STATUSES = ("accepted", "in_censorship", "delivered", "rejected")

SCHEMA = """
CREATE TABLE IF NOT EXISTS letters (
    seq INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    response TEXT NOT NULL,
    client_ref TEXT,
    facility_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    photos TEXT NOT NULL,
    reply_ordered INTEGER NOT NULL,
    pages INTEGER NOT NULL,
    price INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    letter_number TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_letter ON ledger (letter_number);
CREATE TABLE IF NOT EXISTS replies (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    letter_number TEXT,
    real_letter_number TEXT NOT NULL,
    received_at TEXT NOT NULL,
    emailed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reply_pages (
    reply_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (reply_id, n)
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Accepted:
    """The outcome of a submission: the body to answer and whether it was a replay."""

    body: dict
    replayed: bool


class IdempotencyConflict(Exception):
    pass


class InsufficientFunds(Exception):
    def __init__(self, price: Kopecks, balance: Kopecks) -> None:
        super().__init__(f"price {price} > balance {balance}")
        self.price = price
        self.balance = balance


@dataclass(frozen=True)
class ReplyPage:
    n: int
    content_type: str
    data: bytes


class SimulatorStore:
    def __init__(self, path: str) -> None:
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        # WAL with NORMAL survives a killed process; only power loss could drop the last commit.
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    # -- settings -------------------------------------------------------------------

    @staticmethod
    def _setting(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else row["value"]

    @staticmethod
    def _set(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def balance(self) -> Kopecks:
        with self._read() as db:
            return self._balance(db)

    def _balance(self, db: sqlite3.Connection) -> Kopecks:
        value = self._setting(db, "balance")
        return DEFAULT_BALANCE if value is None else int(value)

    def set_balance(self, amount: Kopecks) -> None:
        with self._write() as db:
            self._set(db, "balance", str(amount))

    def faults(self) -> FaultPlan:
        with self._read() as db:
            value = self._setting(db, "faults")
        return FaultPlan() if value is None else FaultPlan(**json.loads(value))

    def set_faults(self, plan: FaultPlan) -> None:
        with self._write() as db:
            self._set(db, "faults", json.dumps(asdict(plan)))

    def draw_fault(self, method: str, path: str, roll: float) -> FaultDraw | None:
        """Decide whether this request fails; a plan with a `count` is used up atomically."""
        plan = self.faults()
        if plan.inert or not plan.applies_to(method, path):
            return None  # the common case takes no write lock
        with self._write() as db:
            value = self._setting(db, "faults")
            if value is None:
                return None
            plan = FaultPlan(**json.loads(value))
            fail = plan.fires(roll)
            if fail and plan.count is not None:
                self._set(db, "faults", json.dumps(asdict(plan.used_once())))
            return FaultDraw(plan, fail)

    # -- letters --------------------------------------------------------------------

    def submit(self, key: str, fingerprint: str, draft_or_error) -> Accepted:
        """Accept a letter exactly once per idempotency key.

        `draft_or_error` is called only when the key is new, so a replay is answered
        from what was stored even if validation rules or the catalogue changed since.
        """
        with self._write() as db:
            row = db.execute(
                "SELECT fingerprint, response FROM letters WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyConflict(key)
                return Accepted(json.loads(row["response"]), replayed=True)

            draft: LetterDraft = draft_or_error()
            balance = self._balance(db)
            if draft.price > balance:
                raise InsufficientFunds(draft.price, balance)

            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM letters").fetchone()[0]
            created = now_rfc3339()
            number = f"FP-{created[:4]}-{seq:06d}"
            body = {
                "number": number,
                "status": "accepted",
                "pages": draft.pages,
                "price": money_json(draft.price),
                "created_at": created,
            }
            db.execute(
                "INSERT INTO letters (seq, number, idempotency_key, fingerprint, response,"
                " client_ref, facility_id, recipient, author, text, photos, reply_ordered,"
                " pages, price, status, reason, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'accepted', NULL, ?, ?)",
                (
                    seq,
                    number,
                    key,
                    fingerprint,
                    json.dumps(body, ensure_ascii=False),
                    draft.client_ref,
                    draft.facility_id,
                    json.dumps(draft.recipient, ensure_ascii=False),
                    json.dumps(draft.author, ensure_ascii=False),
                    draft.text,
                    json.dumps([asdict(p) for p in draft.photos]),
                    int(draft.reply_ordered),
                    draft.pages,
                    draft.price,
                    created,
                    created,
                ),
            )
            db.execute(
                "INSERT INTO ledger (letter_number, idempotency_key, amount, created_at)"
                " VALUES (?, ?, ?, ?)",
                (number, key, draft.price, created),
            )
            self._set(db, "balance", str(balance - draft.price))
            return Accepted(body, replayed=False)

    def letter(self, number: str) -> sqlite3.Row | None:
        with self._read() as db:
            return db.execute("SELECT * FROM letters WHERE number = ?", (number,)).fetchone()

    def set_status(self, number: str, status: str, reason: str | None) -> sqlite3.Row | None:
        with self._write() as db:
            db.execute(
                "UPDATE letters SET status = ?, reason = ?, updated_at = ? WHERE number = ?",
                (status, reason, now_rfc3339(), number),
            )
            return db.execute("SELECT * FROM letters WHERE number = ?", (number,)).fetchone()

    def letters_with_charges(self) -> list[tuple[sqlite3.Row, int, Kopecks]]:
        with self._read() as db:
            rows = db.execute("SELECT * FROM letters ORDER BY seq").fetchall()
            charges = {
                r["letter_number"]: (r["n"], r["total"])
                for r in db.execute(
                    "SELECT letter_number, COUNT(*) AS n, SUM(amount) AS total"
                    " FROM ledger GROUP BY letter_number"
                )
            }
        return [(row, *charges.get(row["number"], (0, 0))) for row in rows]

    def ledger(self) -> list[sqlite3.Row]:
        with self._read() as db:
            return db.execute("SELECT * FROM ledger ORDER BY id").fetchall()

    # -- replies --------------------------------------------------------------------

    def add_reply(
        self, real_number: str, written_number: str | None, pages: list[ReplyPage]
    ) -> sqlite3.Row:
        with self._write() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM replies").fetchone()[0]
            reply_id = f"R-{seq:06d}"
            db.execute(
                "INSERT INTO replies (seq, id, letter_number, real_letter_number, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (seq, reply_id, written_number, real_number, now_rfc3339()),
            )
            db.executemany(
                "INSERT INTO reply_pages (reply_id, n, content_type, data) VALUES (?, ?, ?, ?)",
                [(reply_id, p.n, p.content_type, p.data) for p in pages],
            )
            return db.execute("SELECT * FROM replies WHERE seq = ?", (seq,)).fetchone()

    def mark_emailed(self, reply_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE replies SET emailed = 1 WHERE id = ?", (reply_id,))

    def replies_after(self, after_seq: int, limit: int) -> list[sqlite3.Row]:
        with self._read() as db:
            return db.execute(
                "SELECT * FROM replies WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            ).fetchall()

    def page_sizes(self, reply_ids: list[str]) -> dict[str, list[tuple[int, str, int]]]:
        if not reply_ids:
            return {}
        marks = ",".join("?" * len(reply_ids))
        with self._read() as db:
            rows = db.execute(
                "SELECT reply_id, n, content_type, LENGTH(data) AS size FROM reply_pages"
                f" WHERE reply_id IN ({marks}) ORDER BY reply_id, n",
                reply_ids,
            ).fetchall()
        sizes: dict[str, list[tuple[int, str, int]]] = {}
        for r in rows:
            sizes.setdefault(r["reply_id"], []).append((r["n"], r["content_type"], r["size"]))
        return sizes

    def reply_page(self, reply_id: str, n: int) -> ReplyPage | None:
        with self._read() as db:
            row = db.execute(
                "SELECT n, content_type, data FROM reply_pages WHERE reply_id = ? AND n = ?",
                (reply_id, n),
            ).fetchone()
        return None if row is None else ReplyPage(row["n"], row["content_type"], bytes(row["data"]))

    # -- housekeeping ---------------------------------------------------------------

    def reset(self) -> None:
        with self._write() as db:
            for table in ("letters", "ledger", "replies", "reply_pages", "settings"):
                db.execute(f"DELETE FROM {table}")
