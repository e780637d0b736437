"""Services and the adapters that reach them.

The directory names the *service* a prisoner is reached through (fsin-pismo, zonatelecom,
post); which adapter carries that service's letters is configuration
(GATEWAY_SERVICE_ADAPTERS): today FSIN-Pismo and Zonatelecom publish no API, so a
volunteer types their letters in at the desk, and the day one does, its line changes to an
API adapter without touching the directory. Each service is priced and limited by its own
profile (profiles.toml). `desk` and `http` still name themselves for directories written
before services had names: `desk` is FSIN-Pismo typed in by hand (the desk's default
profile), `http` the gateway's own HTTP contract.

This is the one answer to "is this letter human-carried?": the adapter's `assisted` flag."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.providers.profiles import ProviderProfile, load_profiles
from gateway.providers.registry import adapter_class, adapter_names

# The service's own name on the dashboard and in notices to organizers.
TITLES = {"fsin-pismo": "ФСИН-Письмо", "zonatelecom": "Зонателеком", "post": "Почта",
          "http": "HTTP"}


@dataclass(frozen=True)
class Route:
    service: str  # the profile's name too: one service, one profile
    adapter: str
    human_carried: bool

    @property
    def profile(self) -> ProviderProfile:
        return load_profiles()[self.service]

    @property
    def title(self) -> str:
        return TITLES.get(self.service, self.service)


class UnknownService(LookupError):
    pass


def adapters_by_service(settings) -> dict[str, str]:
    """GATEWAY_SERVICE_ADAPTERS, 'service=adapter,…', read into a mapping."""
    pairs: dict[str, str] = {}
    for item in (settings.service_adapters or "").split(","):
        service, sep, adapter = item.strip().partition("=")
        if sep and service.strip() and adapter.strip():
            pairs[service.strip().lower()] = adapter.strip().lower()
    return pairs


def route(name: str | None, settings) -> Route:
    """The service a directory entry names, and the adapter that reaches it."""
    name = (name or settings.default_provider).strip().lower()
    configured = adapters_by_service(settings)
    if name in configured:
        adapter = configured[name]
    elif name in adapter_names():
        adapter = name
    else:
        raise UnknownService(f"no service or adapter named {name!r} "
                             "(GATEWAY_SERVICE_ADAPTERS, profiles.toml)")
    cls = adapter_class(adapter)
    profiles = load_profiles()
    # An adapter named as a service (desk, post, http) is priced as its default profile.
    service = name if name in profiles and name not in ("desk",) else \
        getattr(cls, "default_profile", adapter)
    if service not in profiles:
        raise UnknownService(f"no profile for service {service!r} in profiles.toml")
    return Route(service=service, adapter=adapter, human_carried=bool(cls.assisted))


def known_services(settings) -> list[str]:
    """Names a directory may use: the configured services and the adapters themselves."""
    return sorted(set(adapters_by_service(settings)) | set(adapter_names()))


def human_carried(adapter: str) -> bool:
    try:
        return bool(adapter_class(adapter).assisted)
    except LookupError:
        return False


def human_carried_adapters() -> tuple[str, ...]:
    """Adapters whose letters a person carries (no call, no automatic spend)."""
    return tuple(name for name in adapter_names() if human_carried(name))
