"""The simulator over real HTTP: the contract of provider-api.md and its controls."""

from __future__ import annotations

import base64
import copy
import email
import email.policy
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from PIL import Image

from gateway.simulator.server import SimulatorServer

pytestmark = pytest.mark.providers

TOKEN = "test-token"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Collector:
    """An aiosmtpd handler keeping every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd hook)
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Controller, Collector]]:
    collector = Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, collector
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, smtp) -> Iterator[SimulatorServer]:
    controller, _ = smtp
    state = tmp_path_factory.mktemp("sim") / "sim.db"
    with SimulatorServer(
        str(state),
        token=TOKEN,
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        reply_from="noreply@fsin-pismo.example",
    ) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatorServer, smtp) -> Iterator[httpx.Client]:
    """A client with the right token on a simulator emptied for this test."""
    smtp[1].envelopes.clear()
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    ) as client:
        assert client.post("/_sim/reset").status_code == 200
        yield client


def letter(**overrides) -> dict:
    body = {
        "facility_id": "78-sizo-1",
        "recipient": {
            "last_name": "Иванов",
            "first_name": "Иван",
            "middle_name": "Иванович",
            "birth_year": 1985,
        },
        "author": {"name": "Мария", "email": "replies@example.org", "phone": "+70000000000"},
        "text": "Здравствуйте, Иван! Держитесь.",
        "photos": [],
        "reply_ordered": False,
        "client_ref": "letter-1",
    }
    body.update(overrides)
    return body


def submit(client: httpx.Client, body: dict, key: str = "key-1") -> httpx.Response:
    return client.post("/v1/letters", json=body, headers={"Idempotency-Key": key})


def sim_letters(client: httpx.Client) -> list[dict]:
    return client.get("/_sim/letters").json()["letters"]


def balance(client: httpx.Client) -> str:
    return client.get("/v1/balance").json()["amount"]


# -- auth and catalogue --------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN, "Bearer"])
@pytest.mark.parametrize(
    "method,path", [("GET", "/v1/balance"), ("GET", "/v1/facilities"), ("GET", "/v1/replies")]
)
def test_every_v1_call_needs_the_bearer_token(sim, header, method, path):
    headers = {} if header is None else {"Authorization": header}
    with httpx.Client(base_url=str(sim.base_url)) as anonymous:
        r = anonymous.request(method, path, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert sim.request(method, path).status_code == 200


def test_an_unauthorized_submission_creates_nothing(sim):
    with httpx.Client(base_url=str(sim.base_url)) as anonymous:
        r = anonymous.post("/v1/letters", json=letter(), headers={"Idempotency-Key": "k"})
    assert r.status_code == 401
    assert sim_letters(sim) == []


def test_catalogue_has_the_demo_facilities(sim):
    regions = sim.get("/v1/facilities").json()["regions"]
    by_id = {f["id"]: (region["name"], f) for region in regions for f in region["facilities"]}
    region, kresty = by_id["78-sizo-1"]
    assert region == "Санкт-Петербург и Ленинградская область"
    assert kresty == {
        "id": "78-sizo-1",
        "name": "СИЗО-1 «Кресты»",
        "accepts_photos": True,
        "max_pages": None,
        "max_photos": 1,
    }
    assert by_id["77-sizo-2"][0] == "Москва" and by_id["77-sizo-2"][1]["max_photos"] == 2
    assert by_id["77-sizo-1"][1]["accepts_photos"] is False
    assert by_id["16-ik-2"][1]["max_pages"] == 3 and by_id["16-ik-2"][1]["max_photos"] == 10
    assert by_id["59-ik-9"][0] == "Пермский край"


# -- submission and idempotency --------------------------------------------------------


def test_submission_is_accepted_numbered_and_charged(sim):
    r = submit(sim, letter(reply_ordered=True))
    assert r.status_code == 201
    body = r.json()
    assert body["number"].startswith("FP-") and body["number"].endswith("-000001")
    assert body["status"] == "accepted"
    assert body["pages"] == 1
    assert body["price"] == {"amount": "110.00", "currency": "RUB"}
    assert body["created_at"].endswith("Z")
    assert balance(sim) == "99890.00"

    second = submit(sim, letter(client_ref="letter-2"), key="key-2").json()
    assert second["number"].endswith("-000002")

    status = sim.get(f"/v1/letters/{body['number']}").json()
    assert status["status"] == "accepted" and status["reason"] is None


def test_the_same_key_and_payload_is_answered_again_without_a_second_charge(sim):
    first = submit(sim, letter(reply_ordered=True))
    assert first.status_code == 201
    # The same JSON value, serialized differently: still the same payload.
    shuffled = json.dumps(dict(reversed(list(letter(reply_ordered=True).items()))), indent=2)
    again = sim.post(
        "/v1/letters",
        content=shuffled.encode(),
        headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"},
    )
    assert again.status_code == 200
    assert again.json() == first.json()
    [stored] = sim_letters(sim)
    assert stored["charges"] == 1
    assert balance(sim) == "99890.00"
    assert len(sim.get("/_sim/ledger").json()["charges"]) == 1


def test_the_same_key_with_another_payload_is_a_conflict(sim):
    assert submit(sim, letter()).status_code == 201
    r = submit(sim, letter(text="Другой текст"))
    assert r.status_code == 409
    assert r.json()["error"] == "idempotency_conflict"
    [stored] = sim_letters(sim)
    assert stored["text"] == letter()["text"] and stored["charges"] == 1


def test_concurrent_submissions_with_one_key_charge_once(sim):
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: submit(sim, letter()).status_code, range(16)))
    assert sorted(codes) == [200] * 15 + [201]
    [stored] = sim_letters(sim)
    assert stored["charges"] == 1
    assert balance(sim) == "99945.00"


@pytest.mark.parametrize(
    "key,status",
    [(None, 400), ("", 400), ("k" * 129, 422), ("ключ".encode(), 422), ("tab\there", 422)],
)
def test_a_bad_idempotency_key_is_refused(sim, key, status):
    headers = {} if key is None else {"Idempotency-Key": key}
    r = sim.post("/v1/letters", json=letter(), headers=headers)
    assert r.status_code == status
    assert sim_letters(sim) == []


def test_the_longest_and_oddest_printable_keys_are_accepted(sim):
    assert submit(sim, letter(), key="k" * 128).status_code == 201
    assert submit(sim, letter(client_ref="2"), key="~!@#$%^&*() {}").status_code == 201


# -- validation --------------------------------------------------------------------------


def photo(data: bytes = JPEG, content_type: str = "image/jpeg") -> dict:
    return {
        "filename": "cat.jpg",
        "content_type": content_type,
        "data": base64.b64encode(data).decode(),
    }


def without(path: str) -> dict:
    body = copy.deepcopy(letter())
    section, _, field = path.partition(".")
    del body[section][field]
    return body


@pytest.mark.parametrize(
    "body,field",
    [
        (letter(facility_id="00-nowhere"), "facility_id"),
        (without("recipient.last_name"), "recipient.last_name"),
        (without("recipient.first_name"), "recipient.first_name"),
        (without("recipient.birth_year"), "recipient.birth_year"),
        (letter(recipient={**letter()["recipient"], "birth_year": "1985"}), "recipient.birth_year"),
        (letter(recipient={**letter()["recipient"], "last_name": "  "}), "recipient.last_name"),
        (without("author.email"), "author.email"),
        (letter(text=None), "text"),
        (letter(facility_id="16-ik-2", text="а" * 7501), "text"),
        (letter(photos=[photo(b"%PDF-1.4 not a photo")]), "photos[0].data"),
        (letter(photos=[photo(content_type="application/pdf")]), "photos[0].content_type"),
        (letter(photos=[photo(JPEG + b"\x00" * (5 * 1024 * 1024))]), "photos[0].data"),
        (letter(photos=[photo(), photo(PNG, "image/png")]), "photos"),
        (letter(facility_id="77-sizo-1", photos=[photo()]), "photos"),
        (letter(reply_ordered="yes"), "reply_ordered"),
    ],
)
def test_an_invalid_letter_is_refused_with_the_field_and_not_charged(sim, body, field):
    r = submit(sim, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "validation"
    assert field in r.json()["fields"]
    assert sim_letters(sim) == []
    assert balance(sim) == "100000.00"


def test_a_body_that_is_not_json_is_refused(sim):
    r = sim.post("/v1/letters", content=b"{not json", headers={"Idempotency-Key": "k"})
    assert r.status_code == 422
    assert "body" in r.json()["fields"]


def test_a_refused_key_can_be_used_again_once_the_letter_is_fixed(sim):
    assert submit(sim, letter(facility_id="00-nowhere")).status_code == 422
    assert submit(sim, letter()).status_code == 201


def test_photos_within_the_facility_limit_are_accepted_and_priced(sim):
    r = submit(sim, letter(facility_id="77-sizo-2", photos=[photo(), photo(PNG, "image/png")]))
    assert r.status_code == 201, r.text
    assert r.json()["price"]["amount"] == "125.00"  # 55 + 2 x 35
    [stored] = sim_letters(sim)
    assert stored["photos"] == 2


# -- pages and price ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,pages",
    [
        ("", 1),
        ("а", 1),
        ("строка\n" * 357 + "x", 1),  # 2500 code points, newlines included
        ("строка\n" * 357 + "xy", 2),  # 2501
        ("ё" * 2500, 1),  # code points, not UTF-8 bytes
        ("\U0001f600" * 2501, 2),
        ("я" * 5000, 2),
        ("я" * 5001, 3),
    ],
)
def test_pages_are_counted_in_code_points_of_2500(sim, text, pages):
    r = submit(sim, letter(text=text))
    assert r.status_code == 201, r.text
    assert r.json()["pages"] == pages
    assert r.json()["price"]["amount"] == f"{55 * pages}.00"
    assert sim_letters(sim)[0]["text"] == text


def test_the_page_limit_of_a_facility_is_inclusive(sim):
    r = submit(sim, letter(facility_id="16-ik-2", text="я" * 7500, reply_ordered=True))
    assert r.status_code == 201
    assert r.json()["pages"] == 3 and r.json()["price"]["amount"] == "220.00"


def test_a_letter_the_balance_does_not_cover_is_refused_with_402(sim):
    assert sim.post("/_sim/balance", json={"amount": "109.99"}).json()["amount"] == "109.99"
    body = letter(text="я" * 2501)  # 110.00
    r = submit(sim, body)
    assert r.status_code == 402
    assert r.json()["error"] == "insufficient_funds"
    assert sim_letters(sim) == [] and balance(sim) == "109.99"

    sim.post("/_sim/balance", json={"amount": "110.00"})
    assert submit(sim, body).status_code == 201  # the same key, now affordable
    assert balance(sim) == "0.00"


@pytest.mark.parametrize("amount", ["-1", "abc", "1.001", None])
def test_a_bad_balance_is_refused(sim, amount):
    assert sim.post("/_sim/balance", json={"amount": amount}).status_code == 422
    assert balance(sim) == "100000.00"


# -- statuses ------------------------------------------------------------------------------


def test_letters_move_through_statuses_without_refunds(sim):
    number = submit(sim, letter()).json()["number"]
    assert sim.get("/v1/letters/FP-2000-999999").status_code == 404
    r = sim.post(f"/_sim/letters/{number}/status", json={"status": "in_censorship"})
    assert r.status_code == 200 and r.json()["status"] == "in_censorship"
    r = sim.post(
        f"/_sim/letters/{number}/status", json={"status": "rejected", "reason": "запрещённый текст"}
    )
    status = sim.get(f"/v1/letters/{number}").json()
    assert status["status"] == "rejected" and status["reason"] == "запрещённый текст"
    assert balance(sim) == "99945.00"
    assert sim.post(f"/_sim/letters/{number}/status", json={"status": "eaten"}).status_code == 422
    assert sim.post("/_sim/letters/FP-1/status", json={"status": "delivered"}).status_code == 404


def test_sim_letters_lists_every_letter_as_received(sim):
    submit(sim, letter(facility_id="77-sizo-2", photos=[photo()], reply_ordered=True), key="abc")
    [item] = sim_letters(sim)
    assert item["idempotency_key"] == "abc"
    assert item["client_ref"] == "letter-1"
    assert item["facility_id"] == "77-sizo-2"
    assert item["recipient"] == letter()["recipient"]
    assert item["author"] == letter()["author"]
    assert item["text"] == letter()["text"]
    assert item["photos"] == 1 and item["pages"] == 1
    assert item["price"]["amount"] == "145.00"
    assert item["status"] == "accepted" and item["charges"] == 1


# -- replies -------------------------------------------------------------------------------


def make_reply(sim, number: str, **body) -> dict:
    r = sim.post(f"/_sim/letters/{number}/reply", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def test_replies_are_paged_oldest_first_by_cursor(sim):
    number = submit(sim, letter(reply_ordered=True)).json()["number"]
    made = [make_reply(sim, number)["id"] for _ in range(5)]
    assert made == [f"R-00000{i}" for i in range(1, 6)]

    seen, cursor = [], None
    for expected in (made[0:2], made[2:4], made[4:5]):
        params = {"limit": 2} | ({"after": cursor} if cursor else {})
        page = sim.get("/v1/replies", params=params).json()
        assert [r["id"] for r in page["replies"]] == expected
        assert page["next"] == expected[-1]
        cursor = page["next"]
        seen += expected
    empty = sim.get("/v1/replies", params={"after": cursor}).json()
    assert empty == {"replies": [], "next": None}
    assert seen == made
    # A new reply shows up after the kept cursor.
    newest = make_reply(sim, number)["id"]
    assert [
        r["id"] for r in sim.get("/v1/replies", params={"after": cursor}).json()["replies"]
    ] == [newest]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "x"}, {"after": "zzz"}])
def test_bad_reply_queries_are_refused(sim, params):
    assert sim.get("/v1/replies", params=params).status_code == 422


def test_a_reply_carries_the_number_as_the_prisoner_wrote_it(sim):
    number = submit(sim, letter()).json()["number"]
    right = make_reply(sim, number)
    blank = make_reply(sim, number, letter_number=None)
    wrong = make_reply(sim, number, letter_number="FP-2O26-0000l")
    listed = sim.get("/v1/replies").json()["replies"]
    assert [r["letter_number"] for r in listed] == [number, None, "FP-2O26-0000l"]
    assert [right["real_letter_number"], blank["real_letter_number"]] == [number, number]
    assert wrong["letter_number"] == "FP-2O26-0000l"
    assert sim.post("/_sim/letters/FP-0/reply", json={}).status_code == 404


def test_reply_pages_are_jpeg_scans(sim):
    number = submit(sim, letter()).json()["number"]
    reply = make_reply(sim, number, pages=2)
    [listed] = sim.get("/v1/replies").json()["replies"]
    assert listed["pages"] == reply["pages"]
    for page in listed["pages"]:
        assert page["url"] == f"/v1/replies/{listed['id']}/pages/{page['n']}"
        r = sim.get(page["url"])
        assert r.status_code == 200
        assert r.headers["content-type"] == "image/jpeg" == page["content_type"]
        assert r.content[:3] == b"\xff\xd8\xff"
        assert len(r.content) == page["size"]
        image = Image.open(io.BytesIO(r.content))
        assert image.format == "JPEG" and image.width > 1000 and image.height > image.width
        # Not a blank sheet: there is ink on it.
        assert image.convert("L").getextrema()[0] < 100
    assert sim.get(f"/v1/replies/{listed['id']}/pages/3").status_code == 404
    with httpx.Client(base_url=str(sim.base_url)) as anonymous:
        assert anonymous.get(listed["pages"][0]["url"]).status_code == 401


def test_a_reply_is_mailed_to_the_author_when_asked(sim, smtp):
    _, collector = smtp
    number = submit(sim, letter(reply_ordered=True)).json()["number"]
    reply = make_reply(sim, number, pages=2, by_email=True)
    assert reply["emailed"] is True, reply
    [envelope] = collector.envelopes
    assert envelope.mail_from == "noreply@fsin-pismo.example"
    assert envelope.rcpt_tos == ["replies@example.org"]
    msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert msg["Subject"] == f"Ответ на письмо № {number}"
    assert msg["From"] == "noreply@fsin-pismo.example"
    assert msg["To"] == "replies@example.org"
    assert number in msg.get_body(("plain",)).get_content()
    attachments = list(msg.iter_attachments())
    assert [a.get_content_type() for a in attachments] == ["image/jpeg", "image/jpeg"]
    first = attachments[0].get_content()
    assert first[:3] == b"\xff\xd8\xff"
    # The same scan both ways: the API serves the bytes that were mailed.
    assert sim.get(reply["pages"][0]["url"]).content == first


def test_a_mailed_reply_has_the_number_as_written(sim, smtp):
    _, collector = smtp
    number = submit(sim, letter()).json()["number"]
    make_reply(sim, number, letter_number="FP-2026-00001", by_email=True)
    make_reply(sim, number, letter_number=None, by_email=True)
    make_reply(sim, number)  # not by e-mail
    subjects = [
        email.message_from_bytes(e.original_content, policy=email.policy.default)["Subject"]
        for e in collector.envelopes
    ]
    assert subjects == ["Ответ на письмо № FP-2026-00001", "Ответ на письмо"]


def test_a_reply_by_email_without_smtp_is_still_served_by_the_api(tmp_path):
    with SimulatorServer(str(tmp_path / "s.db"), token=TOKEN) as sim_server:
        client = httpx.Client(base_url=sim_server.url, headers={"Authorization": f"Bearer {TOKEN}"})
        number = submit(client, letter()).json()["number"]
        reply = make_reply(client, number, by_email=True)
        assert reply["emailed"] is False and reply["email_error"]
        assert len(client.get("/v1/replies").json()["replies"]) == 1


# -- faults --------------------------------------------------------------------------------


def test_faults_before_processing_answer_503_with_retry_after_and_charge_nothing(sim):
    r = sim.post("/_sim/faults", json={"error_rate": 1.0, "status": 503, "retry_after": 7})
    assert r.status_code == 200
    r = submit(sim, letter())
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "7"
    assert r.json()["error"] == "unavailable"
    assert sim.get("/v1/balance").status_code == 503
    assert sim.get("/_sim/health").status_code == 200  # controls are never faulted
    assert sim_letters(sim) == []
    sim.post("/_sim/faults", json={})
    assert submit(sim, letter()).status_code == 201


def test_a_counted_fault_fails_that_many_requests_then_passes(sim):
    sim.post("/_sim/faults", json={"error_rate": 1, "status": 429, "count": 2, "method": "POST"})
    assert sim.get("/v1/balance").status_code == 200  # only POSTs are faulted
    first, second = submit(sim, letter()), submit(sim, letter())
    assert [first.status_code, second.status_code] == [429, 429]
    assert first.headers["Retry-After"] == "1"
    assert submit(sim, letter()).status_code == 201
    assert sim.get("/_sim/faults").json()["count"] == 0


def test_a_fault_after_processing_charges_once_and_the_replay_finds_the_letter(sim):
    sim.post("/_sim/faults", json={"error_rate": 1, "status": 503, "mode": "after", "count": 1})
    lost = submit(sim, letter(reply_ordered=True))
    assert lost.status_code == 503 and "Retry-After" in lost.headers
    [stored] = sim_letters(sim)
    assert stored["charges"] == 1

    replay = submit(sim, letter(reply_ordered=True))
    assert replay.status_code == 200
    assert replay.json()["number"] == stored["number"]
    [stored] = sim_letters(sim)
    assert stored["charges"] == 1
    assert balance(sim) == "99890.00"


def test_a_reset_connection_after_processing_loses_only_the_answer(sim):
    sim.post("/_sim/faults", json={"error_rate": 1, "status": "reset", "mode": "after", "count": 1})
    with pytest.raises(httpx.TransportError):
        submit(sim, letter())
    [stored] = sim_letters(sim)
    assert stored["charges"] == 1
    replay = submit(sim, letter())
    assert replay.status_code == 200 and replay.json()["number"] == stored["number"]
    assert sim_letters(sim)[0]["charges"] == 1


def test_latency_after_processing_times_the_client_out_but_the_letter_is_accepted(sim):
    sim.post("/_sim/faults", json={"latency_ms": 600, "mode": "after"})
    with pytest.raises(httpx.ReadTimeout):
        sim.post("/v1/letters", json=letter(), headers={"Idempotency-Key": "slow"}, timeout=0.2)
    deadline = time.monotonic() + 5
    while not sim_letters(sim) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [item["idempotency_key"] for item in sim_letters(sim)] == ["slow"]


def test_latency_before_processing_delays_the_answer(sim):
    sim.post("/_sim/faults", json={"latency_ms": 300})
    start = time.monotonic()
    assert sim.get("/v1/balance").status_code == 200
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize(
    "plan",
    [{"error_rate": 2}, {"status": 404}, {"mode": "during"}, {"latency_ms": -1}, {"bogus": 1}],
)
def test_a_bad_fault_plan_is_refused(sim, plan):
    assert sim.post("/_sim/faults", json=plan).status_code == 422
    assert sim.get("/_sim/faults").json()["error_rate"] == 0


def test_a_partial_error_rate_fails_some_requests(sim):
    sim.post("/_sim/faults", json={"error_rate": 0.5, "status": 500})
    codes = [sim.get("/v1/balance").status_code for _ in range(60)]
    assert 0 < codes.count(500) < 60 and set(codes) == {200, 500}


# -- persistence and the command line ------------------------------------------------------


def test_state_survives_a_restart(tmp_path):
    state = str(tmp_path / "sim.db")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    sim_server = SimulatorServer(state, token=TOKEN).start()
    url = sim_server.url
    with httpx.Client(base_url=url, headers=headers) as client:
        first = submit(client, letter(reply_ordered=True))
        number = first.json()["number"]
        client.post(f"/_sim/letters/{number}/status", json={"status": "delivered"})
        make_reply(client, number)
        client.post("/_sim/faults", json={"latency_ms": 1})
    sim_server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_sim/health")

    sim_server.start()
    assert sim_server.url == url
    with httpx.Client(base_url=url, headers=headers) as client:
        assert client.get(f"/v1/letters/{number}").json()["status"] == "delivered"
        assert client.get("/v1/balance").json()["amount"] == "99890.00"
        assert [r["id"] for r in client.get("/v1/replies").json()["replies"]] == ["R-000001"]
        assert client.get("/v1/replies/R-000001/pages/1").content[:3] == b"\xff\xd8\xff"
        assert client.get("/_sim/faults").json()["latency_ms"] == 1
        replay = submit(client, letter(reply_ordered=True))
        assert replay.status_code == 200 and replay.json() == first.json()
        assert submit(client, letter(), key="key-2").json()["number"].endswith("-000002")
    sim_server.stop()

    # A new server process on the same file sees the same state.
    with SimulatorServer(state, token=TOKEN) as other:
        with httpx.Client(base_url=other.url, headers=headers) as client:
            assert [i["charges"] for i in sim_letters(client)] == [1, 1]


def test_stop_cuts_requests_in_flight(tmp_path):
    sim_server = SimulatorServer(str(tmp_path / "k.db"), token=TOKEN).start()
    httpx.post(f"{sim_server.url}/_sim/faults", json={"latency_ms": 3000})
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            httpx.get, f"{sim_server.url}/v1/balance", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        time.sleep(0.3)
        started = time.monotonic()
        sim_server.stop()
        with pytest.raises(httpx.TransportError):
            slow.result()
        assert time.monotonic() - started < 2  # cut, not answered after the latency


def test_reset_clears_everything(sim):
    number = submit(sim, letter()).json()["number"]
    make_reply(sim, number)
    sim.post("/_sim/balance", json={"amount": "5"})
    sim.post("/_sim/faults", json={"latency_ms": 5})
    sim.post("/_sim/reset")
    assert sim_letters(sim) == []
    assert sim.get("/v1/replies").json()["replies"] == []
    assert balance(sim) == "100000.00"
    assert sim.get("/_sim/faults").json()["latency_ms"] == 0


def test_the_module_runs_from_the_command_line(tmp_path: Path):
    port = free_port()
    state = tmp_path / "var" / "sim.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.simulator", "--port", str(port), "--state", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_sim/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stdout
            time.sleep(0.1)
        headers = {"Authorization": "Bearer sim-token"}
        assert httpx.get(f"http://127.0.0.1:{port}/v1/balance", headers=headers).status_code == 200
        assert state.exists()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # SIGTERM is a clean stop


# -- robustness ----------------------------------------------------------------------------


def test_concurrent_distinct_letters_get_distinct_numbers_and_one_charge_each(sim):
    def send(i: int) -> str:
        r = submit(sim, letter(client_ref=f"c{i}", text="я" * (i * 100)), key=f"k{i}")
        assert r.status_code == 201, r.text
        return r.json()["number"]

    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(send, range(40)))
    assert len(set(numbers)) == 40
    items = sim_letters(sim)
    assert {i["number"] for i in items} == set(numbers)
    assert all(i["charges"] == 1 for i in items)
    spent = sum(int(i["price"]["amount"].split(".")[0]) for i in items)
    assert balance(sim) == f"{100000 - spent}.00"


def test_unknown_routes_and_oversized_bodies_answer_json_errors(sim):
    r = sim.get("/v1/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert sim.get("/v1/letters/FP-2026-424242").json()["error"] == "not_found"
    r = sim.post(
        "/v1/letters",
        content=b"x" * (81 * 1024 * 1024),
        headers={"Idempotency-Key": "big", "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "error" in r.json()


def test_a_custom_catalogue_replaces_the_default(tmp_path):
    facilities = [
        {"id": "99-ik-1", "name": "ИК-1", "region": "Тестовая область", "accepts_photos": False},
    ]
    with SimulatorServer(str(tmp_path / "c.db"), token=TOKEN, facilities=facilities) as other:
        client = httpx.Client(base_url=other.url, headers={"Authorization": f"Bearer {TOKEN}"})
        regions = client.get("/v1/facilities").json()["regions"]
        assert regions == [
            {
                "name": "Тестовая область",
                "facilities": [
                    {
                        "id": "99-ik-1",
                        "name": "ИК-1",
                        "accepts_photos": False,
                        "max_pages": None,
                        "max_photos": 0,
                    }
                ],
            }
        ]
        assert submit(client, letter()).status_code == 422
        assert submit(client, letter(facility_id="99-ik-1")).status_code == 201
