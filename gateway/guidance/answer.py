"""The one call the checks make: a request for guidance gets the guide, once a day."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway import actions
from gateway.guidance.content import current_guide
from gateway.guidance.picks import who_needs_letters
from gateway.models import Letter, utcnow


def answer_guidance_request(session: Session, settings, letter: Letter, parsed) -> list[int]:
    """Queue the guide (the daily per-writer key in notices makes a second one today a
    no-op; robots never reach here) and end the letter in IGNORED with a visible reason."""
    guide = current_guide(session, settings, who_needs_letters(session, utcnow().date()))
    return actions.send_guidance(session, settings, letter, parsed, guide)
