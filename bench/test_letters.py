"""The benchmark's letters are what it claims: deterministic, mixed as described, and clean
enough that the real parser, addressing and rules send every one on to submission.

Run with `.venv/bin/pytest bench/test_letters.py` (bench/ is outside the default testpaths)."""

from __future__ import annotations

from collections import Counter

from bench.letters import directory, letters
from gateway.intake.addressing import Candidate, resolve_recipient
from gateway.mail.parse import parse_message
from gateway.rules import run_rules
from gateway.rules.base import LetterDraft

PRISONERS = directory(200)
SAMPLE = letters(0, 200, PRISONERS)


def test_the_same_seed_gives_the_same_bytes():
    assert [x.raw for x in letters(0, 20, directory(200))] == [x.raw for x in SAMPLE[:20]]
    assert letters(0, 1, PRISONERS, seed=9)[0].raw != SAMPLE[0].raw


def test_the_directory_has_distinct_surnames_and_catalogue_facilities():
    assert len({p.last_name for p in PRISONERS}) == 200
    assert {p.facility_id for p in PRISONERS} == {
        "78-sizo-1", "78-sizo-6", "77-sizo-1", "77-sizo-2", "77-sizo-5", "16-ik-2", "59-ik-9"}


def test_the_mix_is_as_described():
    kinds = Counter(x.kind for x in SAMPLE)
    charsets = Counter(x.charset for x in SAMPLE)
    assert kinds["plain"] > kinds["alternative"] > kinds["html"] > 20
    assert charsets["utf-8"] > charsets["koi8-r"] > charsets["cp1251"] > 10
    photos = [x for x in SAMPLE if x.photo]
    assert 25 <= len(photos) <= 60
    assert all(x.prisoner.takes_photos for x in photos)


def test_every_letter_reaches_its_prisoner_and_passes_the_rules():
    candidates = [Candidate(id=i, last_name=p.last_name, first_name=p.first_name,
                            middle_name=p.middle_name, birth_year=p.birth_year,
                            facility_name=p.facility_name, code=p.code)
                  for i, p in enumerate(PRISONERS)]
    for letter in SAMPLE:
        parsed = parse_message(letter.raw)
        assert parsed.sender and not parsed.automated
        found = resolve_recipient(parsed.subject, parsed.text, parsed.recipients, candidates)
        assert found.kind == "found" and PRISONERS[found.prisoner_id] == letter.prisoner, \
            (letter.index, parsed.subject)
        decision = run_rules(LetterDraft(
            text=found.text, sender=parsed.sender,
            photos=tuple((a.content_type, len(a.data)) for a in parsed.attachments)))
        assert decision.outcome == "pass", (letter.index, decision.findings)
        assert 1000 <= len(found.text.encode()) <= 3600  # 1-3 KB of Russian text
        assert len(parsed.attachments) == int(letter.photo)
