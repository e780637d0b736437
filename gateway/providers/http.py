"""The `http` adapter: speaks the contract in provider-api.md (and so the simulator).

Spoken with urllib3: a pool of keep-alive connections bound to the provider's one origin.
It took ~40% less CPU a request than httpx (bench/README.md, run 14) on the submission hot
path, where the call was the largest single cost of the worker."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

import certifi
import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, SSLError
from urllib3.util.ssl_match_hostname import CertificateError

from gateway.mail.transport import is_loopback
from gateway.providers.base import (
    Accepted,
    Facility,
    LetterStatus,
    PaymentRequired,
    PermanentError,
    RefusedPage,
    RemoteReply,
    ReplyPageRef,
    Submission,
    TransientError,
)
from gateway.providers.profiles import ProviderProfile, load_profiles


@dataclass(frozen=True, slots=True)
class Answer:
    """The provider's answer, read in full (within the size limit) and its connection freed."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


def _retry_after(response: Answer) -> float | None:
    """Retry-After in seconds, or as an HTTP date (RFC 9110 allows both)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# Statuses by which the contract says "not processed, come back later": rate limit and
# maintenance. Any other 5xx may come after the letter was taken (and charged).
NOT_PROCESSED = frozenset({408, 429, 503})


# The provider is an adversary in our threat model: whatever it answers is read only up to
# these sizes (the settings override them).
MAX_RESPONSE_BYTES = 5 * 1024 * 1024
MAX_SCAN_BYTES = 20 * 1024 * 1024
_CHUNK = 64 * 1024


class ResponseTooLarge(TransientError):
    pass


def _origin(url: str, scheme: str = "") -> tuple[str, str, int | None]:
    """(scheme, host, port) of a URL; `scheme` for a scheme-relative one ("//host/x")."""
    parts = urlsplit(url)
    scheme = parts.scheme or scheme
    try:
        port = parts.port
    except ValueError:
        port = -1  # not a port: no origin of ours
    return scheme, parts.hostname or "", port or {"http": 80, "https": 443}.get(scheme)


@contextmanager
def _malformed(what: str):
    """An answer that is not the JSON the contract describes is the provider failing, like
    a 5xx: the callers (polls) log it and go on with their other work."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise TransientError(f"the provider's {what} answer is malformed "
                             f"({type(exc).__name__})") from exc


class HttpProvider:
    name = "http"
    assisted = False
    default_profile = "http"

    def __init__(self, base_url: str, token: str, timeout: float = 10.0,
                 profile_name: str = default_profile, *,
                 max_response_bytes: int = MAX_RESPONSE_BYTES,
                 max_scan_bytes: int = MAX_SCAN_BYTES, connections: int = 16):
        self.base_url = base_url.rstrip("/")
        self.profile_name = profile_name
        self.max_response_bytes, self.max_scan_bytes = max_response_bytes, max_scan_bytes
        self.origin = _origin(self.base_url)
        if self.origin[0] not in ("http", "https") or not self.origin[1]:
            raise ValueError(f"the provider's URL {self.base_url!r} is not an http(s) URL")
        if self.origin[0] != "https" and not is_loopback(self.origin[1]):
            # The token (and every letter) would cross the network readable by anyone on it.
            raise ValueError(f"refusing to talk to the provider at {self.base_url} without "
                             "TLS: use an https:// URL (plain http only on this machine)")
        self._prefix = urlsplit(self.base_url).path.rstrip("/")
        self.timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        # One pool of keep-alive connections for the adapter's threads (a new connection a
        # letter costs more than the POST), bound to the provider's origin: a request for
        # any other host is refused by the pool itself (HostChangedError), so the token it
        # carries never leaves. Redirects are not followed: the provider cannot send us on.
        # Uncompressed is asked for, so the size limit counts what arrives (a compressed
        # bomb from a server that ignores this is still cut off at the limit once decoded).
        pool_kw = {"ca_certs": certifi.where()} if self.origin[0] == "https" else {}
        self.pool = urllib3.connection_from_url(
            self.base_url, maxsize=connections, block=False, retries=False,
            # The library's own User-Agent, as before with httpx: nothing that names this
            # software or the organization's setup goes to an adversary who needs not know.
            headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"},
            **pool_kw)

    @classmethod
    def from_settings(cls, settings) -> HttpProvider:
        return cls(settings.provider_url, settings.provider_token.get_secret_value(),
                   settings.provider_timeout,
                   max_response_bytes=settings.provider_max_response_bytes,
                   max_scan_bytes=settings.provider_max_scan_bytes)

    @property
    def profile(self) -> ProviderProfile:
        return load_profiles()[self.profile_name]

    def close(self) -> None:
        self.pool.close()

    # -- the calls -------------------------------------------------------------
    def _request(self, method: str, path: str, *, may_have_effect: bool,
                 limit: int | None = None, json_body=None, params: dict | None = None,
                 headers: dict | None = None, from_root: bool = False) -> Answer:
        """`path` is under the base URL's path, or with `from_root` the origin's own path."""
        url = path if path.startswith("/") else "/" + path
        url = url if from_root else self._prefix + url
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        body = None
        headers = dict(self.pool.headers, **(headers or {}))
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        try:
            response = self._bounded(method, url, body, headers,
                                     limit or self.max_response_bytes, may_have_effect)
        except ConnectTimeoutError as exc:  # never reached the provider (refused, unresolved, slow)
            raise TransientError(f"cannot connect: {exc}") from exc
        except SSLError as exc:
            # A certificate refused is refused in the handshake, before any byte of the
            # request; another TLS failure may come after the provider acted on it.
            refused = isinstance(exc.args[0] if exc.args else None,
                                 (ssl.SSLCertVerificationError, CertificateError))
            raise TransientError(f"TLS: {exc}", maybe_sent=may_have_effect and not refused) \
                from exc
        except (HTTPError, OSError) as exc:
            # A read timeout or a reset may come after the provider acted on the request.
            raise TransientError(f"{type(exc).__name__}: {exc}",
                                 maybe_sent=may_have_effect) from exc
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise TransientError(
                f"HTTP {response.status_code}: {response.text[:200]}",
                retry_after=_retry_after(response),
                maybe_sent=may_have_effect and response.status_code not in NOT_PROCESSED,
                status=response.status_code,
            )
        if response.status_code == 402:
            raise PaymentRequired("insufficient funds at the provider", code="insufficient_funds",
                                  status=402)
        if response.status_code >= 400:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            raise PermanentError(
                answer.get("message") or f"HTTP {response.status_code}",
                code=answer.get("error", ""), fields=answer.get("fields") or {},
                status=response.status_code,
            )
        return response

    def _bounded(self, method: str, url: str, body: bytes | None, headers: dict, limit: int,
                 may_have_effect: bool) -> Answer:
        """The answer, read in chunks and given up past `limit` bytes (decoded, so a
        compressed bomb stops too)."""
        response = self.pool.urlopen(method, url, body=body, headers=headers,
                                     timeout=self.timeout, redirect=False, retries=False,
                                     preload_content=False, decode_content=True)
        whole = False
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ResponseTooLarge(f"the provider's answer is {int(declared):,} bytes "
                                       f"(at most {limit:,})", maybe_sent=may_have_effect)
            content = bytearray()
            while chunk := response.read(_CHUNK):
                content += chunk
                if len(content) > limit:
                    raise ResponseTooLarge(f"the provider's answer is over {limit:,} bytes",
                                           maybe_sent=may_have_effect)
            whole = True
        finally:
            if not whole:  # the rest is never read: the connection cannot be used again
                response.close()
            response.release_conn()
        return Answer(response.status, response.headers, bytes(content))

    def submit(self, submission: Submission, idempotency_key: str) -> Accepted:
        r = submission.recipient
        payload = {
            "facility_id": submission.facility_id,
            "recipient": {"last_name": r.last_name, "first_name": r.first_name,
                          "middle_name": r.middle_name, "birth_year": r.birth_year},
            "author": {"name": submission.author_name, "email": submission.author_email,
                       "phone": submission.author_phone},
            "text": submission.text,
            "photos": [{"filename": p.filename, "content_type": p.content_type,
                        "data": base64.b64encode(p.data).decode()} for p in submission.photos],
            "reply_ordered": submission.reply_ordered,
            "client_ref": submission.client_ref,
        }
        response = self._request("POST", "/v1/letters", json_body=payload, may_have_effect=True,
                                 headers={"Idempotency-Key": idempotency_key})
        body = response.json()
        return Accepted(
            number=body["number"], status=body.get("status", "accepted"),
            pages=int(body.get("pages") or 0),
            amount=Decimal(body["price"]["amount"]), currency=body["price"]["currency"],
            replayed=response.status_code == 200,
        )

    def status(self, number: str) -> LetterStatus:
        with _malformed("letter status"):
            body = self._request("GET", f"/v1/letters/{number}", may_have_effect=False).json()
            return LetterStatus(number=body["number"], status=body["status"],
                                reason=body.get("reason"), updated_at=_when(body.get("updated_at")))

    def replies(self, after: str | None, limit: int = 100) -> tuple[list[RemoteReply], str | None]:
        params = {"limit": limit}
        if after:
            params["after"] = after
        with _malformed("replies"):
            body = self._request("GET", "/v1/replies", params=params,
                                 may_have_effect=False).json()
            replies = [
                RemoteReply(
                    id=str(item["id"]), letter_number=item.get("letter_number"),
                    received_at=_when(item.get("received_at")),
                    pages=tuple(ReplyPageRef(n=int(p["n"]), content_type=str(p["content_type"]),
                                             url=str(p["url"]))
                                for p in item.get("pages", [])),
                )
                for item in body.get("replies", [])
            ]
            return replies, body.get("next")

    def reply_page(self, page: ReplyPageRef) -> tuple[str, bytes]:
        """The page's bytes, from the provider's own origin only. The declared type is
        returned for the record; the bytes are re-encoded before anyone sees them
        (gateway.replies.scan_safety)."""
        where = urlsplit(page.url)
        if where.netloc:  # absolute (or scheme-relative): it must be the provider's own origin
            scheme, host, _port = origin = _origin(page.url, self.origin[0])
            if origin != self.origin:
                raise RefusedPage(f"the page is on another origin ({scheme}://{host}), "
                                  "not the provider's; not fetched", code="foreign_origin")
            page_path, from_root = urlunsplit(("", "", where.path, where.query, "")), True
        else:
            page_path, from_root = page.url, False
        try:
            response = self._request("GET", page_path, may_have_effect=False,
                                     limit=self.max_scan_bytes, from_root=from_root)
        except ResponseTooLarge as exc:
            raise RefusedPage(f"too large: {exc}", code="too_large") from exc
        return response.headers.get("Content-Type", page.content_type), response.content

    def facilities(self) -> list[Facility]:
        with _malformed("facilities"):
            body = self._request("GET", "/v1/facilities", may_have_effect=False).json()
            return [Facility(id=f["id"], name=f.get("name", f["id"]),
                             region=region.get("name", ""),
                             accepts_photos=bool(f.get("accepts_photos", True)),
                             max_pages=f.get("max_pages"),
                             max_photos=int(f.get("max_photos") or 0))
                    for region in body.get("regions", []) for f in region.get("facilities", [])]

    def balance(self) -> tuple[Decimal, str]:
        with _malformed("balance"):
            body = self._request("GET", "/v1/balance", may_have_effect=False).json()
            return Decimal(body["amount"]), body["currency"]
