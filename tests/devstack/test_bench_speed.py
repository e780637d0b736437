"""The benchmark takes the machine's speed around its naive and throughput parts, so a
ratio measured while a cloud machine changed speed under it says so (bench/README.md)."""

from __future__ import annotations

import pytest

from bench.machine import speed
from bench.run import naive_rate, speed_drift, summary

pytestmark = pytest.mark.perf

MESSAGE = (b"From: a@example.org\nTo: letters@example.org\nSubject: =?utf-8?b?0J/RgNC40LLQtdGC?=\n"
           b"Content-Type: text/plain; charset=utf-8\n\n" + "Здравствуйте!\n".encode() * 20)


def test_the_speed_is_messages_parsed_a_second_on_this_machine():
    measured = speed([MESSAGE], seconds=0.2)
    assert measured > 50  # a message of this size parses in well under 20 ms anywhere
    assert speed([], seconds=0.2) == 0.0


def test_a_drift_is_reported_only_past_a_tenth():
    assert speed_drift({"before naive": 1000.0, "before throughput": 1050.0}) is None
    assert speed_drift({"before naive": 1000.0, "after throughput": 800.0}) == pytest.approx(0.25)
    assert speed_drift({"before naive": 1000.0}) is None  # nothing to compare with
    assert speed_drift({"a": 0.0, "b": 900.0}) is None  # a part that did not run


def test_the_ratio_takes_the_naive_runs_before_and_after_the_gateway():
    both = {"throughput": {"lps": 120.0}, "naive": {"lps": 100.0}, "naive_after": {"lps": 140.0}}
    assert naive_rate(both) == pytest.approx(120.0)
    assert "ratio_vs_naive=1.00" in summary(both)
    before_only = {"throughput": {"lps": 120.0}, "naive": {"lps": 100.0}}  # runs 1-17
    assert "ratio_vs_naive=1.20" in summary(before_only)
    assert naive_rate({}) is None and "ratio_vs_naive=n/a" in summary({})
