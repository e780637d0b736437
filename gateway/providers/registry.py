"""Adapters are found through the `gateway.providers` entry point group, so one can
live in its own package: `[project.entry-points."gateway.providers"] mine = "pkg:Cls"`."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from gateway.providers.base import Provider


@cache  # entry points do not change while a process runs; reading them is slow
def adapter_class(name: str) -> type:
    for ep in entry_points(group="gateway.providers"):
        if ep.name == name:
            return ep.load()
    raise LookupError(f"no provider adapter named {name!r} (entry point group gateway.providers)")


def open_provider(name: str, settings) -> Provider:
    return adapter_class(name).from_settings(settings)


@cache
def _names() -> tuple[str, ...]:
    return tuple(sorted({ep.name for ep in entry_points(group="gateway.providers")}))


def adapter_names() -> list[str]:
    return list(_names())


def profile_name_for(adapter: str) -> str:
    """The pricing and limits profile (profiles.toml) of the letters an adapter carries:
    the desk types into FSIN-Pismo's form, so its letters are priced as FSIN-Pismo's."""
    try:
        return getattr(adapter_class(adapter), "default_profile", adapter)
    except LookupError:
        return adapter
