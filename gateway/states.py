"""The letter's one state machine. Every change goes through `transition`, which
checks the state it expects and appends to the event log in the same transaction."""

from __future__ import annotations

from enum import StrEnum


class LetterState(StrEnum):
    RECEIVED = "RECEIVED"        # raw mail stored, not yet read
    AWAITING_SENDER = "AWAITING_SENDER"  # the writer must confirm their address first
    AWAITING_CHOICE = "AWAITING_CHOICE"  # several prisoners fit: the writer says which one
    HELD = "HELD"                # a person must weigh it (moderation)
    READY = "READY"              # checked and rendered, waiting to be submitted
    DESK = "DESK"                # waiting for an organizer to type it into a service with no API
    SUBMITTING = "SUBMITTING"    # claimed by one worker; the attempt row exists
    UNKNOWN = "UNKNOWN"          # the request may have reached the provider: resolve, never blindly retry
    SUBMITTED = "SUBMITTED"      # the provider accepted it and gave a number
    DELIVERED = "DELIVERED"
    CENSORED = "CENSORED"
    REJECTED = "REJECTED"        # returned to the writer with reasons (unknown prisoner, rules)
    DISCARDED = "DISCARDED"      # an organizer dropped it
    FAILED = "FAILED"            # the provider refused it for good; re-drivable by a person
    QUARANTINED = "QUARANTINED"  # could not be understood; a person looks
    IGNORED = "IGNORED"          # robot mail (auto-replies, bounces, lists): recorded, never answered


S = LetterState

ALLOWED: dict[LetterState, frozenset[LetterState]] = {
    S.RECEIVED: frozenset({S.HELD, S.READY, S.DESK, S.REJECTED, S.QUARANTINED, S.IGNORED,
                           S.AWAITING_SENDER, S.AWAITING_CHOICE}),
    # Confirmed: back to the start of the checks. Opted out or never confirmed: a person.
    S.AWAITING_SENDER: frozenset({S.RECEIVED, S.HELD, S.DISCARDED}),
    # The writer named the prisoner: back to the checks with that prisoner. Never answered:
    # discarded (nothing was paid); an organizer may also choose.
    S.AWAITING_CHOICE: frozenset({S.RECEIVED, S.HELD, S.DISCARDED}),
    S.HELD: frozenset({S.READY, S.DESK, S.REJECTED, S.DISCARDED, S.HELD}),
    # DESK: desk and post adapters. REJECTED: a freshly synced catalogue shows, before any
    # call, that the facility cannot take the letter as it is (pages, photos).
    S.READY: frozenset({S.SUBMITTING, S.DESK, S.HELD, S.DISCARDED, S.REJECTED}),
    S.DESK: frozenset({S.SUBMITTED, S.DISCARDED, S.HELD}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.READY, S.UNKNOWN, S.FAILED, S.HELD}),
    S.UNKNOWN: frozenset({S.SUBMITTING, S.SUBMITTED, S.READY, S.FAILED}),
    S.SUBMITTED: frozenset({S.DELIVERED, S.CENSORED}),
    S.DELIVERED: frozenset(),
    S.CENSORED: frozenset(),
    S.REJECTED: frozenset(),
    S.DISCARDED: frozenset(),
    S.FAILED: frozenset({S.READY, S.REJECTED, S.DISCARDED}),
    S.QUARANTINED: frozenset({S.RECEIVED, S.REJECTED, S.DISCARDED}),
    S.IGNORED: frozenset({S.RECEIVED}),
}

TERMINAL = frozenset({S.DELIVERED, S.CENSORED, S.REJECTED, S.DISCARDED, S.IGNORED})
# States where the letter waits for a person, not for a worker: the sweeper leaves them be.
WAITING_FOR_PERSON = frozenset({S.HELD, S.DESK, S.FAILED, S.QUARANTINED})
# Waiting for the writer (to confirm their address, to say which prisoner they mean): nobody
# re-drives it but their answer.
WAITING_FOR_WRITER = frozenset({S.AWAITING_SENDER, S.AWAITING_CHOICE})


class IllegalTransition(Exception):
    pass


def check_transition(current: LetterState, target: LetterState) -> None:
    if target not in ALLOWED[current]:
        raise IllegalTransition(f"{current} -> {target}")
