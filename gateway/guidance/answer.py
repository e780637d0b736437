"""The one call the checks make: a request for guidance gets the guide, once a day."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway import actions, campaigns
from gateway.guidance.content import current_guide
from gateway.guidance.picks import who_needs_letters
from gateway.models import Campaign, Letter, utcnow


def answer_guidance_request(session: Session, settings, letter: Letter, parsed,
                            campaign_id: int | None = None) -> list[int]:
    """Queue the guide (the daily per-writer key in notices makes a second one today a
    no-op; robots never reach here) and end the letter in IGNORED with a visible reason.
    Asked with a campaign's tag ("[8марта] помощь", letters+8марта@…), the guide also
    carries that campaign's guidance and greeting template, unless it has ended."""
    today = utcnow().date()
    guide = current_guide(session, settings, who_needs_letters(session, today))
    return actions.send_guidance(session, settings, letter, parsed, guide,
                                 campaign=campaign_guide(session, settings, campaign_id, today))


def campaign_guide(session: Session, settings, campaign_id: int | None, today) -> dict | None:
    campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
    if campaign is None or campaigns.outside_dates(None, campaign.ends_on, today):
        return None
    return {"title": campaign.title, "tag": campaign.tag,
            "address": campaigns.plus_address(settings.gateway_address, campaign.tag),
            "guidance": (campaign.guidance or "").strip(),
            "greeting": (campaign.greeting_template or "").strip()}
