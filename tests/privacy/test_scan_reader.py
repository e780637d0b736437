"""The scan reader is one long-lived, limited child: reused from scan to scan, killed and
replaced when it hangs, dies or breaks a limit, and only that scan is refused."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest
from PIL import Image

from gateway.replies.scan_safety import ScanReader, UnsafeScan, reencode_scan

pytestmark = pytest.mark.privacy


def _page(size=(600, 800)) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 200).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def reader():
    reader = ScanReader()
    yield reader
    reader.close()


def test_one_child_serves_scan_after_scan(reader):
    page = _page()
    assert reader.reencode(page) == reencode_scan(page)
    [pid] = reader.pids()
    assert reader.reencode(page) == reencode_scan(page)
    with pytest.raises(UnsafeScan, match="looks like: HTML"):  # a refusal keeps it too
        reader.reencode(b"<!DOCTYPE html><html></html>")
    reader.reencode(page)
    assert reader.pids() == {pid}


def test_the_child_runs_under_memory_and_cpu_limits(reader):
    reader.reencode(_page())
    [pid] = reader.pids()
    with open(f"/proc/{pid}/limits") as f:
        limits = {line[:26].strip(): line[26:].split() for line in f}
    assert int(limits["Max address space"][0]) == reader.memory_bytes
    assert limits["Max cpu time"][0] != "unlimited"
    assert int(limits["Max core file size"][0]) == 0


def test_a_child_killed_between_scans_is_replaced(reader):
    page = _page()
    reader.reencode(page)
    [pid] = reader.pids()
    os.kill(pid, signal.SIGKILL)
    assert reader.reencode(page) == reencode_scan(page)
    [new] = reader.pids()
    assert new != pid


def test_a_child_dying_mid_scan_refuses_that_scan_only(reader, monkeypatch, tmp_path):
    monkeypatch.setenv("GATEWAY_CRASH_AT", "replies.scan_child")
    monkeypatch.setenv("GATEWAY_CRASH_MARKER", str(tmp_path / "crashed-once"))
    page = _page()
    with pytest.raises(UnsafeScan, match=r"failed within the limits \(exit 137\)"):
        reader.reencode(page)
    assert reader.pids() == set()
    assert reader.reencode(page) == reencode_scan(page)  # a fresh child; the marker holds it


def test_a_scan_past_its_wall_time_kills_the_child_and_the_next_one_reads(reader):
    page = _page()
    reader.reencode(page)
    [pid] = reader.pids()
    big = _page((6000, 6000))  # ~0.2 s of work at least: far past 1 ms
    with pytest.raises(UnsafeScan, match="took longer than"):
        reader.reencode(big, timeout_s=0.001)
    assert pid not in reader.pids()
    assert reader.reencode(page) == reencode_scan(page)
    assert reader.pids() and pid not in reader.pids()


def test_a_decompression_bomb_and_a_scan_too_big_for_the_memory_limit_are_refused(reader):
    huge = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(huge, "PNG")  # 100 M pixels in a few kB
    with pytest.raises(UnsafeScan, match="pixels"):
        reader.reencode(huge.getvalue())
    small = ScanReader(memory_bytes=64 * 1024 * 1024)
    try:
        with pytest.raises(UnsafeScan, match="memory|limits"):
            small.reencode(_page((6000, 6000)))
        assert small.pids() == set()  # that child is not trusted with another scan
    finally:
        small.close()
    assert reader.reencode(_page())  # the other reader goes on


def test_a_child_is_replaced_after_its_scans_and_leaves_when_idle():
    page = _page()
    reader = ScanReader(scans_per_child=2, idle_s=0.3)
    try:
        reader.reencode(page)
        [first] = reader.pids()
        reader.reencode(page)
        assert reader.pids() == set()  # its two scans done, it was stopped
        reader.reencode(page)
        [second] = reader.pids()
        assert second != first
        deadline = time.monotonic() + 10  # idle past idle_s: it leaves by itself
        while reader.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.pids() == set()
        assert reader.reencode(page) == reencode_scan(page)
    finally:
        reader.close()


def test_a_forked_process_starts_its_own_child_and_leaves_its_parents_alone():
    from gateway.replies import scan_safety
    page = _page()
    parent_reader = scan_safety.reader()
    parent_reader.reencode(page)
    before = parent_reader.pids()
    pid = os.fork()
    if pid == 0:  # a Celery pool child, say
        ok = scan_safety._readers == {}
        parent_reader.close()  # its inherited copy: must not stop the parent's children
        mine = scan_safety.reader()
        ok = ok and mine is not parent_reader and mine.reencode(page) == reencode_scan(page)
        ok = ok and not mine.pids() & before
        mine.close()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_reader.pids() == before  # still there, still serving
    assert parent_reader.reencode(page) == reencode_scan(page)
    assert parent_reader.pids() == before
