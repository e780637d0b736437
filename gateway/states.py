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
    # A short greeting, checked like any letter, waiting for its postcard (gateway/postcards.py):
    # it is sent, once, as part of that one letter.
    GATHERED = "GATHERED"
    DESK = "DESK"                # human-carried: waits for a volunteer at the desk or the post
    SUBMITTING = "SUBMITTING"    # claimed by one worker; the attempt row exists
    UNKNOWN = "UNKNOWN"          # the request may have reached the provider: resolve, never blindly retry
    SUBMITTED = "SUBMITTED"      # the provider accepted it and gave a number
    DELIVERED = "DELIVERED"
    CENSORED = "CENSORED"
    UNDELIVERED = "UNDELIVERED"  # not accepted by the service after all, or returned by post
    REJECTED = "REJECTED"        # returned to the writer with reasons (unknown prisoner, rules)
    DISCARDED = "DISCARDED"      # an organizer dropped it
    FAILED = "FAILED"            # the provider refused it for good; re-drivable by a person
    QUARANTINED = "QUARANTINED"  # could not be understood; a person looks
    IGNORED = "IGNORED"          # robot mail (auto-replies, bounces, lists): recorded, never answered


S = LetterState

ALLOWED: dict[LetterState, frozenset[LetterState]] = {
    S.RECEIVED: frozenset({S.HELD, S.READY, S.DESK, S.REJECTED, S.QUARANTINED, S.IGNORED,
                           S.AWAITING_SENDER, S.AWAITING_CHOICE, S.GATHERED}),
    # Confirmed: back to the start of the checks. Opted out or never confirmed: a person.
    S.AWAITING_SENDER: frozenset({S.RECEIVED, S.HELD, S.DISCARDED}),
    # The writer named the prisoner: back to the checks with that prisoner. Never answered:
    # discarded (nothing was paid); an organizer may also choose.
    S.AWAITING_CHOICE: frozenset({S.RECEIVED, S.HELD, S.DISCARDED}),
    S.HELD: frozenset({S.READY, S.DESK, S.REJECTED, S.DISCARDED, S.HELD, S.GATHERED}),
    # SUBMITTED with its postcard; FAILED when the service refused the postcard for good;
    # HELD or DISCARDED by an organizer before the postcard closes.
    S.GATHERED: frozenset({S.SUBMITTED, S.FAILED, S.HELD, S.DISCARDED}),
    # DESK: a changed route (desk and post). REJECTED: a freshly synced catalogue shows, before any
    # call, that the facility cannot take the letter as it is (pages, photos).
    S.READY: frozenset({S.SUBMITTING, S.DESK, S.HELD, S.DISCARDED, S.REJECTED}),
    S.DESK: frozenset({S.SUBMITTED, S.DISCARDED, S.HELD}),
    S.SUBMITTING: frozenset({S.SUBMITTED, S.READY, S.UNKNOWN, S.FAILED, S.HELD}),
    S.UNKNOWN: frozenset({S.SUBMITTING, S.SUBMITTED, S.READY, S.FAILED}),
    S.SUBMITTED: frozenset({S.DELIVERED, S.CENSORED, S.UNDELIVERED}),
    S.DELIVERED: frozenset(),
    S.CENSORED: frozenset(),
    S.UNDELIVERED: frozenset(),
    S.REJECTED: frozenset(),
    S.DISCARDED: frozenset(),
    # GATHERED: a refused postcard's greeting, its postcard retried by a person.
    S.FAILED: frozenset({S.READY, S.REJECTED, S.DISCARDED, S.GATHERED}),
    S.QUARANTINED: frozenset({S.RECEIVED, S.REJECTED, S.DISCARDED}),
    S.IGNORED: frozenset({S.RECEIVED}),
}

TERMINAL = frozenset({S.DELIVERED, S.CENSORED, S.UNDELIVERED, S.REJECTED, S.DISCARDED,
                      S.IGNORED})
# States where the letter waits for a person, not for a worker: the sweeper leaves them be.
WAITING_FOR_PERSON = frozenset({S.HELD, S.DESK, S.FAILED, S.QUARANTINED})
# Waiting for its postcard to close (a beat task, or an organizer): no worker re-drives it.
WAITING_FOR_POSTCARD = frozenset({S.GATHERED})
# Waiting for the writer (to confirm their address, to say which prisoner they mean): nobody
# re-drives it but their answer.
WAITING_FOR_WRITER = frozenset({S.AWAITING_SENDER, S.AWAITING_CHOICE})


class IllegalTransition(Exception):
    pass


def check_transition(current: LetterState, target: LetterState) -> None:
    if target not in ALLOWED[current]:
        raise IllegalTransition(f"{current} -> {target}")


# -- named outcomes: StrEnum, so the strings stored in SQL stay exactly what they were ------

class Reason(StrEnum):
    """Why a letter moved: the machine-readable code on every event, beside its text."""
    RECEIVED = "received"
    UNREADABLE = "unreadable"
    AUTOMATED = "automated"
    NO_SENDER = "no_sender"
    WRITER_STOPPED = "writer_stopped"
    CONFIRMATION_ONLY = "confirmation_only"
    WRITER_COMMAND = "writer_command"
    RECIPIENT_NOT_FOUND = "recipient_not_found"
    RECIPIENT_AMBIGUOUS = "recipient_ambiguous"
    NOBODY_CAN_RECEIVE = "nobody_can_receive"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    UNCONFIRMED_NO_MAIL = "unconfirmed_no_mail"
    WRITER_CONFIRMED = "writer_confirmed"
    CONFIRMATION_EXPIRED = "confirmation_expired"
    RULES_RETURN = "rules_return"
    RULES_HOLD = "rules_hold"
    CHECKED = "checked"
    TO_DESK = "to_desk"
    TO_POST = "to_post"
    NOT_IN_CATALOGUE = "not_in_catalogue"
    GATED = "gated"  # kept where it is by a gate (paused, cap, breaker): a time to come back
    APPROVED = "approved"
    DEFERRED = "deferred"
    RETURNED_BY_PERSON = "returned_by_person"
    DISCARDED_BY_PERSON = "discarded_by_person"
    RETRY_BY_PERSON = "retry_by_person"
    CHECKED_NOT_SUBMITTED = "checked_not_submitted"
    ATTEMPT = "attempt"
    GIVEN_BACK = "given_back"
    SUBMITTED = "submitted"
    PROVIDER_PAUSED = "provider_paused"
    KEY_CONFLICT = "key_conflict"
    PROVIDER_REFUSED = "provider_refused"
    GAVE_UP = "gave_up"
    MAYBE_SENT = "maybe_sent"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    UNEXPECTED_ERROR = "unexpected_error"
    INTERRUPTED = "interrupted"
    INTERNAL_ERROR = "internal_error"
    DELIVERED = "delivered"
    DELIVERED_BY_REPLY = "delivered_by_reply"
    CENSORED = "censored"
    NOT_ACCEPTED = "not_accepted"
    RETURNED_BY_POST = "returned_by_post"
    REPLAY_ASKED = "replay_asked"
    PRICE_DIFFERS = "price_differs"
    DESK_TAKEN = "desk_taken"
    DESK_RELEASED = "desk_released"
    FACILITY_LIMITS = "facility_limits"  # more pages or photos than the facility takes
    AWAITING_CHOICE = "awaiting_choice"  # several prisoners fit: the writer is asked
    CHOICE_MADE = "choice_made"  # the writer said which prisoner they meant
    CHOICE_EXPIRED = "choice_expired"
    DOCUMENT_UNREADABLE = "document_unreadable"
    BUDGET_RELEASED = "budget_released"  # a budget hold goes on by itself
    CAMPAIGN_BUDGET_HOLD = "campaign_budget_hold"  # the campaign's budget would be passed
    CAMPAIGN_BUDGET_RELEASED = "campaign_budget_released"  # its budget allows it now
    SPLIT = "split"  # a long letter went as several numbered letters
    WRITER_CONFIRMED_BY_ORGANIZER = "writer_confirmed_by_organizer"
    BIRTHDAY_SUBSCRIPTION = "birthday_subscription"  # asks for, or confirms, reminders
    PRISONER_MOVED = "prisoner_moved"  # a directory import shows a transfer
    GUIDANCE_ASKED = "guidance_asked"  # "помощь", "help" or an empty letter: the guide
    UNPROVEN_OWN_DOMAIN = "unproven_own_domain"  # our own domain, authentication not proven
    GATHERED = "gathered"  # a short greeting joins its prisoner's postcard
    POSTCARD_CLOSED = "postcard_closed"  # the postcard's letter is made, to be submitted
    POSTCARD_SENT = "postcard_sent"  # a greeting went with its postcard
    POSTCARD_REFUSED = "postcard_refused"  # the service refused the postcard for good


class AttemptOutcome(StrEnum):
    """SubmissionAttempt.outcome: what one call to a provider came to."""
    STARTED = "started"
    ACCEPTED = "accepted"
    NOT_SENT = "not_sent"
    LATE = "late"
    PAYMENT = "payment"
    CONFLICT = "conflict"
    REFUSED = "refused"
    UNKNOWN = "unknown"
    TRANSIENT = "transient"
    ERROR = "error"


class SubmitOutcome(StrEnum):
    """What submitting one letter came to, for the task that asked."""
    SUBMITTED = "submitted"
    RETRY = "retry"
    UNKNOWN = "unknown"
    FAILED = "failed"
    DESK = "desk"
    HELD = "held"
    DEFERRED = "deferred"
    SKIPPED = "skipped"


class ReplyState(StrEnum):
    RECEIVED = "RECEIVED"
    FORWARDED = "FORWARDED"
    DUPLICATE = "DUPLICATE"
    UNMATCHED = "UNMATCHED"
    KEPT = "KEPT"  # the writer opted out or bounced: kept for organizers


class MailState(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    SUPERSEDED = "SUPERSEDED"


class NoticeKind(StrEnum):
    RECEIVED = "received"
    CONFIRM = "confirm"
    UNKNOWN_RECIPIENT = "unknown_recipient"
    AMBIGUOUS_RECIPIENT = "ambiguous_recipient"
    DOCUMENT_UNREADABLE = "document_unreadable"  # the letter was in a file we could not read
    RETURNED = "returned"
    HELD = "held"
    SENT = "sent"
    DELIVERED = "delivered"
    CENSORED = "censored"
    UNDELIVERED = "undelivered"  # not accepted by the service, or returned by the post
    REFUSED = "refused"  # the service refused the submission (e.g. 422): what to change
    SPLIT = "split"  # a long letter went as several numbered letters
    REPLY = "reply"
    GUIDANCE = "guidance"  # how to write, and who needs letters now (the writer asked)
