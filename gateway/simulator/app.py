"""The simulated prison e-mail service: the HTTP contract of provider-api.md, plus controls."""

from __future__ import annotations

import hmac
import json
import random
import re
import smtplib
import socket
import struct
import time
from dataclasses import asdict
from typing import Any

import flask
from flask import g, request
from werkzeug.exceptions import HTTPException

from . import reply_mail
from .catalogue import Catalogue
from .faults import RESET, FaultDraw, FaultPlan, InvalidFaults
from .money import money_json, parse_amount
from .scans import render_reply_page
from .store import (
    LETTER_STATUSES,
    IdempotencyConflict,
    InsufficientFunds,
    ReplyPage,
    SimulatorStore,
)
from .submission import ValidationFailed, payload_fingerprint, validate_letter

IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,128}")
REPLY_ID = re.compile(r"R-(\d+)")
MAX_REPLY_PAGES = 20
DEFAULT_REPLIES_LIMIT = 50
# Base64 makes photos a third larger; leave room for the most photos a facility takes.
MAX_REQUEST_BYTES = 80 * 1024 * 1024


def create_app(
    state_path: str,
    token: str = "sim-token",
    *,
    smtp_host: str | None = None,
    smtp_port: int = 25,
    reply_from: str = "noreply@fsin-pismo.example",
    facilities: list[dict] | None = None,
) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    store = SimulatorStore(state_path)
    catalogue = Catalogue.from_dicts(facilities) if facilities else Catalogue.default()
    app.extensions["simulator_store"] = store

    # -- cross-cutting: auth on /v1, injected faults ---------------------------------

    @app.before_request
    def authenticate_and_fault() -> flask.Response | None:
        if not request.path.startswith("/v1/"):
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            resp = error(401, "unauthorized", "a valid Bearer token is required")
            resp.headers["WWW-Authenticate"] = 'Bearer realm="simulator"'
            return resp
        draw = store.draw_fault(request.method, request.path, random.random())
        if draw is None:
            return None
        if draw.plan.mode == "after":
            g.fault_after = draw
            return None
        _sleep(draw.plan.latency_ms)
        return fault_response(draw) if draw.fail else None

    @app.after_request
    def fault_after_processing(response: flask.Response) -> flask.Response:
        draw: FaultDraw | None = g.pop("fault_after", None)
        if draw is None:
            return response
        _sleep(draw.plan.latency_ms)
        return fault_response(draw) if draw.fail else response

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> flask.Response:
        code = (e.name or "error").lower().replace(" ", "_")
        return error(e.code or 500, code, e.description or code)

    # -- the contract ---------------------------------------------------------------

    @app.get("/v1/facilities")
    def facilities_list() -> Any:
        return catalogue.as_json()

    @app.post("/v1/letters")
    def submit_letter() -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None or key == "":
            return error(400, "idempotency_key_required", "the Idempotency-Key header is required")
        if not IDEMPOTENCY_KEY.fullmatch(key):
            return error(
                422,
                "validation",
                "invalid Idempotency-Key",
                {"Idempotency-Key": "1 to 128 printable ASCII characters"},
            )
        body = request.get_json(force=True, silent=True)
        if body is None:
            return error(422, "validation", "the body is not JSON", {"body": "must be JSON"})
        try:
            accepted = store.submit(
                key, payload_fingerprint(body), lambda: validate_letter(body, catalogue)
            )
        except IdempotencyConflict:
            return error(
                409,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different payload",
            )
        except ValidationFailed as e:
            return error(422, "validation", "the letter is not valid", e.fields)
        except InsufficientFunds as e:
            return error(
                402,
                "insufficient_funds",
                f"the letter costs {money_json(e.price)['amount']} RUB,"
                f" the balance is {money_json(e.balance)['amount']} RUB",
            )
        resp = flask.jsonify(accepted.body)
        resp.status_code = 200 if accepted.replayed else 201
        resp.headers["Location"] = f"/v1/letters/{accepted.body['number']}"
        return resp

    @app.get("/v1/letters/<number>")
    def letter_status(number: str) -> Any:
        row = store.letter(number)
        if row is None:
            return error(404, "not_found", f"no letter {number}")
        return status_json(row)

    @app.get("/v1/replies")
    def replies() -> Any:
        after = request.args.get("after") or ""
        after_seq = 0
        if after:
            m = REPLY_ID.fullmatch(after)
            if m is None:
                return error(422, "validation", "bad cursor", {"after": "a reply id"})
            after_seq = int(m.group(1))
        try:
            limit = int(request.args.get("limit", DEFAULT_REPLIES_LIMIT))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return error(422, "validation", "bad limit", {"limit": "an integer from 1 to 100"})
        rows = store.replies_after(after_seq, limit)
        sizes = store.page_sizes([r["id"] for r in rows])
        return {
            "replies": [reply_json(r, sizes.get(r["id"], [])) for r in rows],
            "next": rows[-1]["id"] if rows else None,
        }

    @app.get("/v1/replies/<reply_id>/pages/<int:n>")
    def reply_page(reply_id: str, n: int) -> Any:
        page = store.reply_page(reply_id, n)
        if page is None:
            return error(404, "not_found", f"no page {n} of reply {reply_id}")
        return flask.Response(page.data, content_type=page.content_type)

    @app.get("/v1/balance")
    def balance() -> Any:
        return money_json(store.balance())

    # -- simulator controls ---------------------------------------------------------

    @app.get("/_sim/health")
    def health() -> Any:
        return {"status": "ok"}

    @app.post("/_sim/reset")
    def reset() -> Any:
        store.reset()
        return {"status": "reset"}

    @app.post("/_sim/letters/<number>/status")
    def move_letter(number: str) -> Any:
        body = request.get_json(force=True, silent=True) or {}
        status = body.get("status")
        reason = body.get("reason")
        if status not in LETTER_STATUSES:
            return error(422, "validation", "bad status", {"status": f"one of {LETTER_STATUSES}"})
        if reason is not None and not isinstance(reason, str):
            return error(422, "validation", "bad reason", {"reason": "a string or null"})
        row = store.set_status(number, status, reason)
        if row is None:
            return error(404, "not_found", f"no letter {number}")
        return status_json(row)

    @app.post("/_sim/letters/<number>/reply")
    def make_reply(number: str) -> Any:
        row = store.letter(number)
        if row is None:
            return error(404, "not_found", f"no letter {number}")
        body = request.get_json(force=True, silent=True) or {}
        pages = body.get("pages", 1)
        if (
            isinstance(pages, bool)
            or not isinstance(pages, int)
            or not 1 <= pages <= MAX_REPLY_PAGES
        ):
            return error(
                422, "validation", "bad pages", {"pages": f"an integer from 1 to {MAX_REPLY_PAGES}"}
            )
        # Absent means the prisoner wrote the number right; null means they left it blank.
        written = body["letter_number"] if "letter_number" in body else number
        if written is not None and not isinstance(written, str):
            return error(
                422, "validation", "bad letter_number", {"letter_number": "string or null"}
            )
        text = body.get("text")
        seed = f"{number}/{time.time_ns()}"
        scans = [
            ReplyPage(n, "image/jpeg", render_reply_page(written, n, pages, seed, text))
            for n in range(1, pages + 1)
        ]
        reply = store.add_reply(number, written, scans)
        result = reply_json(reply, [(p.n, p.content_type, len(p.data)) for p in scans])
        result["real_letter_number"] = number
        result["emailed"] = False
        if body.get("by_email"):
            result["emailed"], result["email_error"] = mail_reply(row, reply["id"], written, scans)
            if result["emailed"]:
                store.mark_emailed(reply["id"])
        return flask.jsonify(result), 201

    def mail_reply(
        letter: Any, reply_id: str, written: str | None, scans: list[ReplyPage]
    ) -> tuple[bool, str | None]:
        if smtp_host is None:
            return False, "the simulator has no SMTP server configured"
        to = json.loads(letter["author"]).get("email")
        msg = reply_mail.build_reply_message(
            sender=reply_from, to=to, reply_id=reply_id, written_number=written, pages=scans
        )
        try:
            reply_mail.send_message(smtp_host, smtp_port, msg)
        except (OSError, smtplib.SMTPException) as e:
            return False, f"{type(e).__name__}: {e}"
        return True, None

    @app.get("/_sim/faults")
    def faults_get() -> Any:
        return _plan_json(store.faults())

    @app.post("/_sim/faults")
    def faults_set() -> Any:
        try:
            plan = FaultPlan.from_json(request.get_json(force=True, silent=True) or {})
        except InvalidFaults as e:
            return error(422, "validation", "bad fault plan", e.fields)
        store.set_faults(plan)
        return _plan_json(plan)

    @app.post("/_sim/balance")
    def balance_set() -> Any:
        body = request.get_json(force=True, silent=True) or {}
        try:
            amount = parse_amount(body.get("amount"))
        except ValueError as e:
            return error(422, "validation", str(e), {"amount": "a non-negative decimal string"})
        store.set_balance(amount)
        return money_json(amount)

    @app.get("/_sim/letters")
    def letters_dump() -> Any:
        return {"letters": [letter_json(*item) for item in store.letters_with_charges()]}

    @app.get("/_sim/ledger")
    def ledger_dump() -> Any:
        return {
            "charges": [
                {
                    "letter_number": r["letter_number"],
                    "idempotency_key": r["idempotency_key"],
                    "amount": money_json(r["amount"]),
                    "created_at": r["created_at"],
                }
                for r in store.ledger()
            ]
        }

    return app


# -- JSON shapes ---------------------------------------------------------------------


def error(status: int, code: str, message: str, fields: dict | None = None) -> flask.Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields:
        body["fields"] = fields
    resp = flask.jsonify(body)
    resp.status_code = status
    return resp


def status_json(row: Any) -> dict:
    return {
        "number": row["number"],
        "status": row["status"],
        "reason": row["reason"],
        "updated_at": row["updated_at"],
    }


def reply_json(row: Any, pages: list[tuple[int, str, int]]) -> dict:
    return {
        "id": row["id"],
        "letter_number": row["letter_number"],
        "received_at": row["received_at"],
        "pages": [
            {
                "n": n,
                "content_type": content_type,
                "size": size,
                "url": f"/v1/replies/{row['id']}/pages/{n}",
            }
            for n, content_type, size in pages
        ],
    }


def letter_json(row: Any, charges: int, charged: int) -> dict:
    photos = json.loads(row["photos"])
    return {
        "number": row["number"],
        "idempotency_key": row["idempotency_key"],
        "client_ref": row["client_ref"],
        "facility_id": row["facility_id"],
        "recipient": json.loads(row["recipient"]),
        "author": json.loads(row["author"]),
        "text": row["text"],
        "photos": len(photos),
        "photo_files": photos,
        "reply_ordered": bool(row["reply_ordered"]),
        "pages": row["pages"],
        "price": money_json(row["price"]),
        "status": row["status"],
        "reason": row["reason"],
        "charges": charges,
        "charged": money_json(charged),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _plan_json(plan: FaultPlan) -> dict:
    return asdict(plan)


# -- faults --------------------------------------------------------------------------


def fault_response(draw: FaultDraw) -> flask.Response:
    plan = draw.plan
    if plan.status == RESET:
        _drop_connection()
        return flask.Response(b"", status=500)  # never reaches the client
    code = {429: "rate_limited", 503: "unavailable"}.get(int(plan.status), "server_error")
    resp = error(int(plan.status), code, f"simulated fault ({plan.mode} processing)")
    if plan.status in (429, 503):
        resp.headers["Retry-After"] = str(plan.retry_after)
    return resp


def _drop_connection() -> None:
    """Reset the client's connection: linger 0 turns the close into a TCP RST."""
    sock: socket.socket | None = request.environ.get("werkzeug.socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _sleep(ms: int) -> None:
    if ms > 0:
        time.sleep(ms / 1000)
