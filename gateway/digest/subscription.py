"""An organizer's digest address (sealed, as writers' addresses are) and their opt-in."""

from __future__ import annotations

from email.headerregistry import Address

from gateway.crypto import Keyring, mask
from gateway.models import User


def valid_address(value: str) -> str:
    """The address as one bare addr-spec, or ValueError (a display name, a list, or a
    header-breaking character are refused)."""
    value = value.strip()
    try:
        parsed = Address(addr_spec=value)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"not an e-mail address: {exc}") from None
    if not parsed.username or "." not in parsed.domain or parsed.addr_spec != value:
        raise ValueError("not an e-mail address")
    return value


def set_digest(user: User, keys: Keyring, *, email: str | None, opt_in: bool) -> None:
    """Set the address (None or "" keeps the stored one) and the opt-in; opting in without
    any address is refused, since the digest would have nowhere to go."""
    if email:
        user.email_sealed = keys.seal(valid_address(email))
    if opt_in and user.email_sealed is None:
        raise ValueError("an e-mail address is needed for the digest")
    user.digest_opt_in = opt_in


def masked_email(user: User, keys: Keyring) -> str:
    """What the dashboard shows: never the whole address."""
    return mask(keys.unseal(user.email_sealed)) if user.email_sealed else ""
