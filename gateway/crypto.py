"""Writers' addresses are encrypted at rest and looked up by a keyed hash.

A seized database alone must not list who wrote to whom: the address is stored
Fernet-encrypted, and the equality look-ups (rate limits, opt-outs) use an HMAC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet


@lru_cache
def _fernet(secret: str) -> Fernet:
    key = hashlib.sha256(b"gateway-address-key:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, value: str) -> str:
    return _fernet(secret).encrypt(value.encode()).decode()


def unseal(secret: str, token: str) -> str:
    return _fernet(secret).decrypt(token.encode()).decode()


def address_hash(secret: str, address: str) -> str:
    return hmac.new(secret.encode(), address.strip().lower().encode(), hashlib.sha256).hexdigest()


def mask(address: str) -> str:
    """m***@e***.org: enough for an organizer to tell writers apart, not to write to them."""
    local, _, domain = address.partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***.{tld}" if domain else f"{local[:1]}***"
