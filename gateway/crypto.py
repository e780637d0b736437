"""Every key the gateway uses, derived from the one GATEWAY_SECRET_KEY.

A seized database alone must not list who wrote to whom: writers' addresses are stored
encrypted with Fernet (AES-CBC with an HMAC, so a changed byte fails to decrypt), raw and
composed mail with AES-256-GCM (authenticated too; five times faster than Fernet on a 27 MB
message and without its base64 third), and equality look-ups (rate limits, opt-outs, de-duplication) use keyed hashes that do not
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
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FERNET_PREFIX = b"gAAAAA"  # version byte 0x80 and a timestamp, in url-safe base64
# Sealed bytes: magic, the key's 4-byte id, a 12-byte nonce, then AES-GCM ciphertext+tag.
# A NUL never starts an e-mail, so clear mail stored before sealing is told apart.
BYTES_MAGIC = b"\x00gw1"
_HEADER = len(BYTES_MAGIC) + 4


def is_sealed(data: bytes | str) -> bool:
    """Ciphertext of ours (either form): what a search of a seized server may skip."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    return raw.startswith(BYTES_MAGIC) or raw.startswith(FERNET_PREFIX)


class BytesSealingError(ValueError):
    pass
PURPOSES = ("sessions", "address-encryption", "raw-mail-encryption", "address-index",
            "content-index", "verp", "confirmation-codes", "unsubscribe-links")


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
        # Raw-mail keys by their id: the id in a sealed blob picks the key (old or current).
        self._bytes_keys = {_key_id(k["raw-mail-encryption"]): AESGCM(k["raw-mail-encryption"])
                            for k in reversed(self._all)}
        self._bytes_now = _key_id(self._current["raw-mail-encryption"])
        self._address = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(k["address-encryption"])) for k in self._all]
            + [_legacy_fernet(s) for s in every])

    # -- sealing -------------------------------------------------------------------------

    def seal(self, value: str) -> str:
        """An address (or a name) encrypted for storage."""
        return self._address.encrypt(value.encode()).decode()

    def unseal(self, token: str) -> str:
        return self._address.decrypt(token.encode()).decode()

    def seal_bytes(self, data: bytes) -> bytes:
        """Raw mail, composed mail: encrypted under their own key."""
        header = BYTES_MAGIC + self._bytes_now
        nonce = os.urandom(12)
        return header + nonce + self._bytes_keys[self._bytes_now].encrypt(nonce, data, header)

    def unseal_bytes(self, token: bytes) -> bytes:
        token = bytes(token)
        if not token.startswith(BYTES_MAGIC):
            # Stored in clear before encryption at rest (an upgraded installation):
            # readable until `gateway keys rotate` seals it.
            return token
        header, nonce, sealed = token[:_HEADER], token[_HEADER:_HEADER + 12], token[_HEADER + 12:]
        key = self._bytes_keys.get(header[len(BYTES_MAGIC):])
        if key is None:
            raise BytesSealingError("sealed under a secret that is no longer given")
        try:
            return key.decrypt(nonce, sealed, header)
        except InvalidTag as exc:
            raise BytesSealingError("sealed bytes were altered") from exc

    def is_current(self, token: str | bytes, *, raw: bool = False) -> bool:
        """Sealed under the current secret already (rotation skips it: resumable)."""
        if raw:
            token = bytes(token)
            return token.startswith(BYTES_MAGIC) and token[len(BYTES_MAGIC):_HEADER] == \
                self._bytes_now
        try:
            self._address_now.decrypt(token if isinstance(token, bytes) else token.encode())
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

    def link_mac(self, what: str) -> str:
        """The signature of a link in mail a writer may follow without logging in (the
        one-click unsubscribe): it names no address, only what it signs."""
        return _mac(self._current["unsubscribe-links"], b"link:" + what.encode())[:32]

    def link_mac_matches(self, what: str, mac: str) -> bool:
        # Old secrets too: a link in a mail sent before a rotation still works.
        return any(hmac.compare_digest(
            _mac(k["unsubscribe-links"], b"link:" + what.encode())[:32], mac)
            for k in self._all)

    # -- sessions ----------------------------------------------------------------------

    @property
    def session_key(self) -> str:
        return self._current["sessions"].hex()

    @property
    def session_fallbacks(self) -> list[str]:
        return [k["sessions"].hex() for k in self._all[1:]]


def _key_id(key: bytes) -> bytes:
    return hmac.new(key, b"key-id", hashlib.sha256).digest()[:4]


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
