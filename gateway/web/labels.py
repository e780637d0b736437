"""The one place where the dashboard turns stored codes into words a person reads.

States, reasons, roles and notice kinds are stored as codes (SQL, logs, metrics keep them);
a Russian page shows their label and keeps the code in a title for support. A code with no
label shows as itself, so a new state is visible at once (and the i18n crawl catches it)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

LETTER_STATES = {
    "RECEIVED": _l("Received"),
    "AWAITING_SENDER": _l("Waiting for the writer to confirm"),
    "AWAITING_CHOICE": _l("Waiting for the writer to choose"),
    "HELD": _l("In moderation"),
    "READY": _l("Ready to send"),
    "DESK": _l("At the letter desk"),
    "SUBMITTING": _l("Sending"),
    "UNKNOWN": _l("Outcome unknown"),
    "SUBMITTED": _l("Sent"),
    "DELIVERED": _l("Delivered"),
    "CENSORED": _l("Stopped by the censor"),
    "UNDELIVERED": _l("Not delivered"),
    "REJECTED": _l("Returned to the writer"),
    "DISCARDED": _l("Discarded"),
    "FAILED": _l("Failed"),
    "QUARANTINED": _l("Quarantined"),
    "GATHERED": _l("Waiting for its postcard"),
    "IGNORED": _l("Robot mail, ignored"),
}

REPLY_STATES = {
    "RECEIVED": _l("Received"),
    "FORWARDED": _l("Forwarded to the writer"),
    "DUPLICATE": _l("Duplicate"),
    "UNMATCHED": _l("Not matched"),
    "KEPT": _l("Kept here"),
}

MAIL_STATES = {
    "PENDING": _l("Queued"),
    "SENT": _l("Sent"),
    "FAILED": _l("Failed"),
    "SUPERSEDED": _l("Replaced"),
}

ROLES = {
    "admin": _l("admin"),
    "moderator": _l("moderator"),
    "viewer": _l("viewer"),
    "volunteer": _l("volunteer"),
}

NOTICE_KINDS = {
    "received": _l("letter received"),
    "confirm": _l("address confirmation"),
    "unknown_recipient": _l("prisoner not found"),
    "ambiguous_recipient": _l("which prisoner?"),
    "document_unreadable": _l("file could not be read"),
    "returned": _l("letter returned"),
    "held": _l("letter in moderation"),
    "sent": _l("letter sent"),
    "delivered": _l("letter delivered"),
    "censored": _l("stopped by the censor"),
    "undelivered": _l("letter not delivered"),
    "refused": _l("service refused the letter"),
    "split": _l("letter sent in parts"),
    "reply": _l("reply"),
    "guidance": _l("guide for writers"),
}

REASONS = {
    "received": _l("received"),
    "unreadable": _l("could not be read"),
    "automated": _l("robot mail"),
    "no_sender": _l("no sender address"),
    "writer_stopped": _l("the writer opted out"),
    "confirmation_only": _l("only a confirmation"),
    "writer_command": _l("a command from the writer"),
    "recipient_not_found": _l("prisoner not found"),
    "recipient_ambiguous": _l("several prisoners fit"),
    "nobody_can_receive": _l("the prisoner cannot receive letters"),
    "awaiting_confirmation": _l("waiting for the address to be confirmed"),
    "unconfirmed_no_mail": _l("address not confirmed"),
    "writer_confirmed": _l("the writer confirmed"),
    "confirmation_expired": _l("confirmation expired"),
    "rules_return": _l("returned by the checks"),
    "rules_hold": _l("held by the checks"),
    "checked": _l("checked"),
    "to_desk": _l("to the letter desk"),
    "to_post": _l("to the post"),
    "not_in_catalogue": _l("facility not in the service's list"),
    "gated": _l("waiting (pause, limit or budget)"),
    "approved": _l("approved"),
    "deferred": _l("deferred"),
    "returned_by_person": _l("returned by a person"),
    "discarded_by_person": _l("discarded by a person"),
    "retry_by_person": _l("retried by a person"),
    "checked_not_submitted": _l("checked: not submitted"),
    "attempt": _l("attempt"),
    "given_back": _l("given back"),
    "submitted": _l("submitted"),
    "provider_paused": _l("service paused"),
    "key_conflict": _l("duplicate submission key"),
    "provider_refused": _l("the service refused"),
    "gave_up": _l("gave up"),
    "maybe_sent": _l("may have been sent"),
    "provider_unavailable": _l("service unavailable"),
    "unexpected_error": _l("unexpected error"),
    "interrupted": _l("interrupted"),
    "internal_error": _l("internal error"),
    "delivered": _l("delivered"),
    "delivered_by_reply": _l("delivered (a reply came)"),
    "censored": _l("stopped by the censor"),
    "not_accepted": _l("not accepted by the service"),
    "returned_by_post": _l("returned by post"),
    "replay_asked": _l("asked to check again"),
    "price_differs": _l("the price differs"),
    "desk_taken": _l("taken at the desk"),
    "desk_released": _l("released at the desk"),
    "facility_limits": _l("over the facility's limits"),
    "awaiting_choice": _l("the writer is asked which prisoner"),
    "choice_made": _l("the writer chose"),
    "choice_expired": _l("no choice in time"),
    "document_unreadable": _l("file could not be read"),
    "budget_released": _l("budget hold released"),
    "campaign_budget_hold": _l("the campaign's budget is spent"),
    "campaign_budget_released": _l("the campaign's budget allows it now"),
    "gathered": _l("joined the prisoner's postcard"),
    "postcard_closed": _l("postcard made, to be sent"),
    "postcard_sent": _l("sent with its postcard"),
    "postcard_refused": _l("the service refused the postcard"),
    "split": _l("split into several letters"),
    "writer_confirmed_by_organizer": _l("confirmed by an organizer"),
    "birthday_subscription": _l("birthday reminders"),
    "prisoner_moved": _l("the prisoner was moved"),
    "guidance_asked": _l("asked for the guide"),
    "unproven_own_domain": _l("our own domain, not proven"),
}

SEVERITIES = {
    "info": _l("note"),
    "hold": _l("hold"),
    "return": _l("return"),
}

FIELDS = {
    "code": _l("code"),
    "last_name": _l("last name"),
    "first_name": _l("first name"),
    "middle_name": _l("middle name"),
    "birth_year": _l("birth year"),
    "birth_date": _l("birth date"),
    "region": _l("region"),
    "facility_name": _l("facility name"),
    "facility_id": _l("facility id"),
    "provider": _l("provider"),
    "status": _l("status"),
    "full_name": _l("full name"),
    "gender": _l("gender"),
    "facility": _l("facility"),
    "interests": _l("interests"),
    "interest_tags": _l("interest tags"),
    "writer_note": _l("writer note"),
    "wants_letters": _l("wants letters"),
}

PRISONER_STATUSES = {
    "in_custody": _l("in custody"),
    "moved": _l("moved"),
    "released": _l("released"),
    "house_arrest": _l("house arrest"),
    "deceased": _l("deceased"),
    "unknown": _l("unknown"),
    "retired": _l("retired"),
}

CAMPAIGN_FILTERS = {
    "region": _l("region contains"),
    "birthday_within_days": _l("birthday within (days)"),
    "quiet_days": _l("no letter for (days)"),
    "gender": _l("gender"),
}

FILTER_VALUES = {"f": _l("women"), "m": _l("men")}


def N_(message: str) -> str:
    """Marks an English string for the catalogue where it is stored or logged as is and
    translated only when shown (Babel's extractor knows N_)."""
    return message


REPLY_SOURCES = {
    "email": _l("by e-mail"),
    "api": _l("from the service"),
    "upload": _l("uploaded at the desk"),
}

ACTORS = {"system": _l("the gateway")}

BREAKER_STATES = {"open": _l("open"), "half_open": _l("half-open")}

_TABLES = {"breaker": BREAKER_STATES, "reply_source": REPLY_SOURCES, "actor": ACTORS, "filter": CAMPAIGN_FILTERS, "filter_value": FILTER_VALUES, "field": FIELDS, "prisoner_status": PRISONER_STATUSES, "severity": SEVERITIES, "letter": LETTER_STATES, "reply": REPLY_STATES, "mail": MAIL_STATES,
           "role": ROLES, "notice": NOTICE_KINDS, "reason": REASONS}


def label(code: str | None, kind: str = "letter") -> str:
    """The words for a stored code; the code itself when there are none yet."""
    if code is None:
        return ""
    found = _TABLES[kind].get(str(code))
    return str(found) if found is not None else str(code)
