"""parse_message_bounded: a hostile message costs at most one worker process, never the caller."""

from __future__ import annotations

import base64
import threading
import time

import pytest

from gateway.mail.bounded import BoundedParser
from gateway.mail.parse import ParseLimits, UnparseableMessage, parse_message

pytestmark = pytest.mark.intake

GOOD = (b"From: Nina <nina@example.org>\nSubject: hi\nContent-Type: text/plain; charset=utf-8\n\n"
        + "Кому: Петровой Марии\nПривет!\n".encode())


def slow_message(words: int = 60000) -> bytes:
    # Tens of thousands of encoded words on one Subject line take seconds to decode.
    subject = "Subject: " + " ".join(["=?utf-8?q?=D0=B0?="] * words)
    return b"From: a@example.org\n" + subject.encode() + b"\n\nbody\n"


SLOW_LIMITS = ParseLimits(wall_seconds=0.5, max_header_bytes=10**7, max_header_line_bytes=10**7, max_line_bytes=10**7)


@pytest.fixture
def parser():
    pool = BoundedParser(workers=1)
    yield pool
    pool.close()


def test_same_result_as_in_process(parser: BoundedParser) -> None:
    assert parser.parse(GOOD) == parse_message(GOOD)


def test_timeout_kills_the_worker_and_the_next_letter_goes_through(parser: BoundedParser) -> None:
    started = time.monotonic()
    with pytest.raises(UnparseableMessage, match="longer than 0.5 s"):
        parser.parse(slow_message(), limits=SLOW_LIMITS)
    assert time.monotonic() - started < 3
    assert parser.parse(GOOD).text == "Кому: Петровой Марии\nПривет!"


def test_a_worker_that_dies_is_replaced(parser: BoundedParser) -> None:
    parser.parse(GOOD)  # start the worker
    (worker,) = list(parser.workers)
    result: list[object] = []

    def parse_slow() -> None:
        try:
            parser.parse(slow_message(), limits=ParseLimits(wall_seconds=30, max_header_bytes=10**7,
                                                            max_header_line_bytes=10**7, max_line_bytes=10**7))
        except UnparseableMessage as exc:
            result.append(exc.reason)

    thread = threading.Thread(target=parse_slow)
    thread.start()
    time.sleep(0.3)
    worker.process.kill()  # as a segfault or an os._exit in the parser would
    thread.join(timeout=10)
    assert result and "died" in str(result[0])
    assert parser.parse(GOOD).sender == "nina@example.org"


def _huge_attachment() -> bytes:
    """A message with 24 MiB of zeros as a base64 attachment."""
    blob = base64.encodebytes(b"\x00" * (24 * 1024 * 1024))
    return (b"From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
            b"Content-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\n"
            b"Content-Transfer-Encoding: base64\n\n" + blob + b"\n--b--\n")


def test_memory_limit_turns_a_huge_attachment_into_unparseable() -> None:
    pool = BoundedParser(workers=1, memory_bytes=400 * 1024 * 1024)
    try:
        raw = _huge_attachment()
        limits = ParseLimits(max_bytes=10**9, max_decoded_bytes=10**9,
                             max_attachment_bytes=10**9, wall_seconds=20)
        with pytest.raises(UnparseableMessage):
            pool.parse(raw * 4, limits=limits)
        assert pool.parse(GOOD).text.endswith("Привет!")
    finally:
        pool.close()


def test_size_limit_is_checked_before_shipping(parser: BoundedParser) -> None:
    with pytest.raises(UnparseableMessage, match="MB"):
        parser.parse(GOOD + b"x" * 2_000_000, limits=ParseLimits(max_bytes=1_000_000))
    assert not parser.workers  # no worker was needed


@pytest.mark.perf
def test_line_and_header_limits_are_the_workers_to_check(parser: BoundedParser) -> None:
    """Only the size is checked before shipping (off the caller's GIL the rest costs it
    nothing): a message over a line or header limit is refused by the worker with the
    reason it has in process, and the messages around it are read."""
    long_line = GOOD + b"y" * 2000 + b"\n"
    big_header = b"X-Pad: " + b"z" * 900 + b"\n" + GOOD
    limits = ParseLimits(max_line_bytes=1024, max_header_line_bytes=1024, max_header_bytes=512)
    results = parser.parse_many([GOOD, long_line, big_header, OTHER], limits=limits)
    reasons = [r.reason if isinstance(r, UnparseableMessage) else r.sender for r in results]
    expected = []
    for raw in (long_line, big_header):
        with pytest.raises(UnparseableMessage) as refused:
            parse_message(raw, limits=limits)
        expected.append(refused.value.reason)
    assert reasons == ["nina@example.org", *expected, "olga@example.org"]
    assert "line is longer" in expected[0] and "header block is larger" in expected[1]
    (worker,) = list(parser.workers)
    assert worker.used == 4  # the refused two were shipped and refused there


def test_concurrent_callers_share_the_pool() -> None:
    pool = BoundedParser(workers=2)
    try:
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(pool.parse(GOOD).text)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(results) == 8 and len(pool.workers) <= 2
    finally:
        pool.close()


# -- parse_many: one round trip for a batch, each message still bounded on its own ----------

OTHER = GOOD.replace(b"nina@example.org", b"olga@example.org")


def test_parse_many_gives_each_message_its_own_result_in_order(parser: BoundedParser) -> None:
    raws = [GOOD, OTHER, b"   ", GOOD]
    results = parser.parse_many(raws)
    assert [r.sender if not isinstance(r, UnparseableMessage) else r.reason for r in results] \
        == ["nina@example.org", "olga@example.org", "the message is empty", "nina@example.org"]
    assert results[0] == parse_message(GOOD)
    (worker,) = list(parser.workers)
    assert worker.used == 3  # one worker, one request: the empty one never left this process


def test_parse_many_a_hanging_message_fails_alone(parser: BoundedParser) -> None:
    results = parser.parse_many([GOOD, slow_message(), OTHER], limits=SLOW_LIMITS)
    assert results[0].sender == "nina@example.org"
    assert isinstance(results[1], UnparseableMessage) and "longer than 0.5 s" in results[1].reason
    assert results[2].sender == "olga@example.org"  # parsed again by a fresh worker


def test_parse_many_a_message_that_kills_the_worker_fails_alone(parser: BoundedParser) -> None:
    parser.parse(GOOD)  # start the worker
    (worker,) = list(parser.workers)
    limits = ParseLimits(wall_seconds=30, max_header_bytes=10**7, max_header_line_bytes=10**7,
                         max_line_bytes=10**7)
    killer = threading.Timer(0.5, worker.process.kill)  # as a segfault in the parser would
    killer.start()
    try:
        results = parser.parse_many([GOOD, slow_message(), OTHER], limits=limits)
    finally:
        killer.cancel()
    assert results[0].sender == "nina@example.org"
    assert isinstance(results[1], UnparseableMessage) and "died" in results[1].reason
    assert results[2].sender == "olga@example.org"
    assert worker not in parser.workers


def test_parse_many_the_memory_limit_still_holds_per_message() -> None:
    pool = BoundedParser(workers=1, memory_bytes=400 * 1024 * 1024)
    try:
        huge = _huge_attachment() * 4
        limits = ParseLimits(max_bytes=10**9, max_decoded_bytes=10**9,
                             max_attachment_bytes=10**9, wall_seconds=20)
        results = pool.parse_many([GOOD, huge, OTHER], limits=limits)
        assert results[0].sender == "nina@example.org"
        assert isinstance(results[1], UnparseableMessage)
        assert results[2].sender == "olga@example.org"
    finally:
        pool.close()


def test_parse_many_ships_at_most_batch_bytes_at_once() -> None:
    pool = BoundedParser(workers=1, batch_bytes=len(GOOD) + len(OTHER))
    sent: list[int] = []
    try:
        pool.parse(GOOD)
        (worker,) = list(pool.workers)
        send = worker.conn.send

        def counting_send(request):
            sent.append(len(request[0]))
            send(request)

        worker.conn.send = counting_send
        results = pool.parse_many([GOOD, OTHER, GOOD, OTHER, GOOD])
        assert [r.sender for r in results] == ["nina@example.org", "olga@example.org"] * 2 \
            + ["nina@example.org"]
        assert sent == [2, 2, 1]
    finally:
        pool.close()


def test_an_idle_worker_is_stopped_and_the_next_letter_starts_another() -> None:
    pool = BoundedParser(workers=1, idle_stop_s=0.4)
    try:
        assert pool.parse(GOOD) == parse_message(GOOD)
        (first,) = pool.workers
        assert first.alive()
        deadline = time.monotonic() + 10
        while first.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not first.alive() and not pool.workers  # handed back while no mail came
        assert pool.parse(GOOD) == parse_message(GOOD)
        (second,) = pool.workers
        assert second.process.pid != first.process.pid
    finally:
        pool.close()


def test_a_busy_worker_is_not_stopped_for_idleness() -> None:
    # Gaps of a fifth of idle_stop_s: a loaded machine's slow parse cannot make one idle.
    pool = BoundedParser(workers=1, idle_stop_s=1.5)
    try:
        pool.parse(GOOD)
        (worker,) = pool.workers
        for _ in range(10):  # 3 s of work, never 1.5 s idle
            time.sleep(0.3)
            assert pool.parse(GOOD) == parse_message(GOOD)
        assert pool.workers == {worker} and worker.alive()
    finally:
        pool.close()
