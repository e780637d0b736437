"""The one call the checks make: a request for guidance gets the guide, once a day."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.guidance.content import current_guide
from gateway.guidance.picks import who_needs_letters
from gateway.lifecycle import move
from gateway.models import Letter, utcnow
from gateway.notices import queue_notice
from gateway.states import LetterState as S

SENT = "guidance sent: the writer asked how to write, not a letter"
NOT_AGAIN = ("guidance asked for, not a letter; no guide sent (one a day, or the writer "
             "asked for no mail)")


def answer_guidance_request(session: Session, settings, letter: Letter, parsed) -> list[int]:
    """Queue the guide (the daily per-writer key in notices makes a second one today a
    no-op; robots never reach here) and end the letter in IGNORED with a visible reason."""
    guide = current_guide(session, settings, who_needs_letters(session, utcnow().date()))
    queued = queue_notice(session, settings, letter, "guidance", parsed=parsed,
                          guide=guide)
    move(session, letter, S.IGNORED, note=SENT if queued else NOT_AGAIN)
    return queued
