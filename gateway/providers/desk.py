"""The `desk` adapter: services with no API (FSIN-Pismo and Zonatelecom today). It takes
no call (`assisted`): checked letters wait in DESK for a volunteer who types them into the
service's web form (gateway/human/desk.py)."""

from __future__ import annotations

from gateway.providers.base import (
    Accepted,
    Facility,
    LetterStatus,
    PermanentError,
    RemoteReply,
    ReplyPageRef,
    Submission,
)
from gateway.providers.profiles import ProviderProfile, load_profiles


class DeskProvider:
    """Registered as the `desk` entry point. Submissions are typed in by a person."""

    name = "desk"
    assisted = True
    default_profile = "fsin-pismo"  # the service an organizer types letters into

    def __init__(self, profile_name: str = default_profile):
        self.profile_name = profile_name

    @classmethod
    def from_settings(cls, settings) -> DeskProvider:
        return cls()

    @property
    def profile(self) -> ProviderProfile:
        return load_profiles()[self.profile_name]

    def submit(self, submission: Submission, idempotency_key: str) -> Accepted:
        raise PermanentError("the desk has no API: an organizer submits on the service's site",
                             code="assisted")

    def status(self, number: str) -> LetterStatus:
        raise PermanentError("the desk has no API to ask for a status", code="assisted")

    def replies(self, after: str | None, limit: int = 100) -> tuple[list[RemoteReply], str | None]:
        return [], after  # desk replies come by e-mail to the reply mailbox

    def reply_page(self, page: ReplyPageRef) -> tuple[str, bytes]:
        raise PermanentError("the desk has no API for reply pages", code="assisted")

    def facilities(self) -> list[Facility]:
        return []  # the service's own site is the catalogue; the directory is trusted

    def close(self) -> None:
        pass
