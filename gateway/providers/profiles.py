"""Provider profiles: page size, prices and photo limits of each service, loaded from data."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(__file__).with_name("profiles.toml")
# What a service's form may ask, as gateway.human.desk fills it in.
FORM_FIELDS = frozenset({
    "region", "facility", "last_name", "first_name", "middle_name", "birth_year",
    "author_name", "author_phone", "author_email", "author_email2", "text", "photos",
    "reply_form"})


@dataclass(frozen=True)
class ProviderProfile:
    name: str
    page_chars: int
    page_price: Decimal
    reply_price: Decimal
    photo_price: Decimal
    max_pages: int | None
    max_photos: int
    photo_types: frozenset[str]
    photo_max_bytes: int
    currency: str = "RUB"
    # The service's web form, field by field in its order (the desk shows exactly these),
    # and the reasons it gives when the censor stops a letter (the desk offers them).
    form: tuple[str, ...] = ()
    censor_reasons: tuple[str, ...] = ()


class ProfileError(ValueError):
    """A profiles file that cannot be trusted to price letters."""


def load_profiles(path: Path | None = None) -> dict[str, ProviderProfile]:
    """Profiles by name from a TOML file (the shipped one by default); cached per path."""
    return dict(_load(Path(path) if path else DEFAULT_PATH))


@cache
def _load(path: Path) -> tuple[tuple[str, ProviderProfile], ...]:
    with path.open("rb") as fh:
        raw: dict[str, dict[str, Any]] = tomllib.load(fh)
    return tuple((name, _build(name, _resolve(name, raw, ()))) for name in raw)


def _resolve(name: str, raw: dict[str, dict[str, Any]], seen: tuple[str, ...]) -> dict[str, Any]:
    if name in seen:
        raise ProfileError(f"profile inheritance loop: {' -> '.join((*seen, name))}")
    if name not in raw:
        raise ProfileError(f"profile {seen[-1]!r} inherits unknown profile {name!r}")
    own = dict(raw[name])
    parent = own.pop("inherits", None)
    return {**_resolve(parent, raw, (*seen, name)), **own} if parent else own


def _build(name: str, data: dict[str, Any]) -> ProviderProfile:
    try:
        profile = ProviderProfile(
            name=name,
            page_chars=int(data["page_chars"]),
            # Prices are strings in the file so no float ever touches money.
            page_price=Decimal(str(data["page_price"])),
            reply_price=Decimal(str(data["reply_price"])),
            photo_price=Decimal(str(data["photo_price"])),
            max_pages=int(data["max_pages"]) if data.get("max_pages") is not None else None,
            max_photos=int(data.get("max_photos", 0)),
            photo_types=frozenset(t.lower() for t in data.get("photo_types", ())),
            photo_max_bytes=int(data.get("photo_max_bytes", 0)),
            currency=str(data.get("currency", "RUB")),
            form=tuple(str(f) for f in data.get("form", ())),
            censor_reasons=tuple(str(r) for r in data.get("censor_reasons", ())),
        )
    except KeyError as exc:
        raise ProfileError(f"profile {name!r} lacks {exc.args[0]!r}") from None
    if profile.page_chars <= 0:
        raise ProfileError(f"profile {name!r}: page_chars must be positive")
    unknown = set(profile.form) - FORM_FIELDS
    if unknown:
        raise ProfileError(f"profile {name!r}: unknown form fields {sorted(unknown)}")
    return profile
