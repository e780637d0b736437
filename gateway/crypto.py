"""Every key the gateway uses, derived from the one GATEWAY_SECRET_KEY.

A seized database alone must not list who wrote to whom: writers' addresses and raw mail
are stored encrypted (Fernet: AES-CBC with an HMAC, so a changed byte fails to decrypt),
and equality look-ups (rate limits, opt-outs, de-duplication) use keyed hashes that do not
let anyone confirm a guess without the secret.

Each purpose has its own key, derived with HKDF, so a key leaked or misused for one purpose
(a session cookie, say) says nothing about the others. Old secrets
(GATEWAY_OLD_SECRET_KEYS) still decrypt and still verify tags and confirmation codes while
`gateway keys rotate` re-encrypts everything under the current one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FERNET_PREFIX = b"gAAAAA"  # version byte 0x80 and a timestamp, in url-safe base64
PURPOSES = ("sessions", "address-encryption", "raw-mail-encryption", "address-index",
            "content-index", "verp", "confirmation-codes")


def derive(secret: str, purpose: str) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown key purpose {purpose!r}")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"prison-letters-gateway",
                info=f"gateway:{purpose}".encode()).derive(secret.encode())


def _legacy_fernet(secret: str) -> Fernet:
    # Before per-purpose keys (up to 0.x): addresses were sealed under sha256(label+secret).
    # Read-only, so an upgraded installation keeps working until `gateway keys rotate`.
    key = hashlib.sha256(b"gateway-address-key:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


class Keyring:
    """The current secret's keys for writing, the current and old ones for reading."""

    def __init__(self, secret: str, old: tuple[str, ...] = ()) -> None:
        self.secret, self.old = secret, tuple(s for s in old if s and s != secret)
        every = (secret, *self.old)
        self._current = {p: derive(secret, p) for p in PURPOSES}
        self._all = [{p: derive(s, p) for p in PURPOSES} for s in every]
        self._address_now = Fernet(base64.urlsafe_b64encode(self._current["address-encryption"]))
        self._raw_now = Fernet(base64.urlsafe_b64encode(self._current["raw-mail-encryption"]))
        self._address = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(k["address-encryption"])) for k in self._all]
            + [_legacy_fernet(s) for s in every])
        self._raw = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(k["raw-mail-encryption"])) for k in self._all])

    # -- sealing -------------------------------------------------------------------------

    def seal(self, value: str) -> str:
        """An address (or a name) encrypted for storage."""
        return self._address.encrypt(value.encode()).decode()

    def unseal(self, token: str) -> str:
        return self._address.decrypt(token.encode()).decode()

    def seal_bytes(self, data: bytes) -> bytes:
        """Raw mail, composed mail: encrypted under their own key."""
        return self._raw.encrypt(data)

    def unseal_bytes(self, token: bytes) -> bytes:
        token = bytes(token)
        if not token.startswith(FERNET_PREFIX):
            # Stored in clear before encryption at rest (an upgraded installation):
            # readable until `gateway keys rotate` seals it.
            return token
        return self._raw.decrypt(token)

    def is_current(self, token: str | bytes, *, raw: bool = False) -> bool:
        """Sealed under the current secret already (rotation skips it: resumable)."""
        fernet = self._raw_now if raw else self._address_now
        try:
            fernet.decrypt(token if isinstance(token, bytes) else token.encode())
        except InvalidToken:
            return False
        return True

    # -- keyed hashes ------------------------------------------------------------------

    def address_hash(self, address: str) -> str:
        """The blind index of an address: equal addresses, equal hashes; no guessing."""
        return _mac(self._current["address-index"], address.strip().lower().encode())

    def old_address_hashes(self, address: str) -> set[str]:
        """What this address's blind index was under the old secrets (and before
        per-purpose keys, a bare HMAC under the secret): rotation maps them to the new."""
        norm = address.strip().lower().encode()
        return ({_mac(k["address-index"], norm) for k in self._all[1:]}
                | {_mac(s.encode(), norm) for s in (self.secret, *self.old)})

    def content_hash(self, raw: bytes) -> str:
        """De-duplication of raw mail, without letting anyone confirm a guessed message."""
        return _mac(self._current["content-index"], raw)

    def verp_tag(self, outbound_id: int) -> str:
        return _mac(self._current["verp"], f"verp:{outbound_id}".encode())[:12]

    def verp_tag_matches(self, outbound_id: int, tag: str) -> bool:
        # Old secrets too: a bounce for mail sent before a rotation still finds its row.
        return any(hmac.compare_digest(_mac(k["verp"], f"verp:{outbound_id}".encode())[:12],
                                       tag) for k in self._all)

    def code_digest(self, code: str) -> str:
        return _mac(self._current["confirmation-codes"], b"confirm-token:" + code.encode())

    def code_matches(self, code: str, digest: str) -> bool:
        return any(hmac.compare_digest(
            _mac(k["confirmation-codes"], b"confirm-token:" + code.encode()), digest)
            for k in self._all)

    # -- sessions ----------------------------------------------------------------------

    @property
    def session_key(self) -> str:
        return self._current["sessions"].hex()

    @property
    def session_fallbacks(self) -> list[str]:
        return [k["sessions"].hex() for k in self._all[1:]]


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def _keyring(secret: str, old: tuple[str, ...]) -> Keyring:
    return Keyring(secret, old)


def keyring(settings) -> Keyring:
    """The keys of these settings (cached: HKDF runs once per secret)."""
    return _keyring(settings.secret_key.get_secret_value(), settings.old_secrets())


def mask(address: str) -> str:
    """m***@e***.org: enough for an organizer to tell writers apart, not to write to them."""
    local, _, domain = address.partition("@")
    host, _, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***.{tld}" if domain else f"{local[:1]}***"


# Shorthands for one secret alone (tests, scripts): the same keys as keyring(settings).
def seal(secret: str, value: str) -> str:
    return _keyring(secret, ()).seal(value)


def unseal(secret: str, token: str) -> str:
    return _keyring(secret, ()).unseal(token)


def unseal_bytes(secret: str, token: bytes) -> bytes:
    return _keyring(secret, ()).unseal_bytes(token)


def address_hash(secret: str, address: str) -> str:
    return _keyring(secret, ()).address_hash(address)
