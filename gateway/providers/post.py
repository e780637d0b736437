"""The `post` adapter: facilities with no e-mail service get printed letters, mailed by
volunteers. It takes no call (`assisted`): checked letters wait in DESK for a batch
(gateway/human/post.py). Its catalogue is the postal addresses file."""

from __future__ import annotations

import csv
from pathlib import Path

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

DEFAULT_ADDRESSES = Path(__file__).with_name("post_addresses.csv")


def load_addresses(path: Path) -> list[Facility]:
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        return [Facility(id=row["facility_id"].strip(), name=row.get("name", "").strip(),
                         region=(row.get("region") or "").strip(), accepts_photos=True,
                         max_photos=load_profiles()["post"].max_photos,
                         postal_address=(row.get("postal_address") or "").strip() or None)
                for row in csv.DictReader(fh) if (row.get("facility_id") or "").strip()]


class PostProvider:
    """Registered as the `post` entry point."""

    name = "post"
    assisted = True
    default_profile = "post"

    def __init__(self, addresses: Path = DEFAULT_ADDRESSES):
        self.addresses = Path(addresses)

    @classmethod
    def from_settings(cls, settings) -> PostProvider:
        return cls(settings.post_addresses or DEFAULT_ADDRESSES)

    @property
    def profile(self) -> ProviderProfile:
        return load_profiles()[self.default_profile]

    def submit(self, submission: Submission, idempotency_key: str) -> Accepted:
        raise PermanentError("the post is carried by volunteers: build a batch", code="assisted")

    def status(self, number: str) -> LetterStatus:
        raise PermanentError("the post has no status to ask for", code="assisted")

    def replies(self, after: str | None, limit: int = 100) -> tuple[list[RemoteReply], str | None]:
        return [], after

    def reply_page(self, page: ReplyPageRef) -> tuple[str, bytes]:
        raise PermanentError("the post has no reply pages to fetch", code="assisted")

    def facilities(self) -> list[Facility]:
        return load_addresses(self.addresses)

    def close(self) -> None:
        pass
