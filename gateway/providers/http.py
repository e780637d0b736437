"""The `http` adapter: speaks the contract in provider-api.md (and so the simulator)."""

from __future__ import annotations

import base64
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime

import httpx

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


def _retry_after(response: httpx.Response) -> float | None:
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


class ResponseTooLarge(TransientError):
    pass


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


class _OriginBearer(httpx.Auth):
    """The token rides only on requests to the provider's own origin (scheme, host, port):
    a URL the provider hands us elsewhere never receives it."""

    def __init__(self, token: str, origin: tuple[str, str, int | None]) -> None:
        self._header = f"Bearer {token}"
        self.origin = origin

    def auth_flow(self, request: httpx.Request):
        if _origin(request.url) == self.origin:
            request.headers["Authorization"] = self._header
        yield request


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
                 max_scan_bytes: int = MAX_SCAN_BYTES):
        self.base_url = base_url.rstrip("/")
        self.profile_name = profile_name
        self.max_response_bytes, self.max_scan_bytes = max_response_bytes, max_scan_bytes
        self.origin = _origin(httpx.URL(self.base_url))
        if self.origin[0] != "https" and not is_loopback(self.origin[1]):
            # The token (and every letter) would cross the network readable by anyone on it.
            raise ValueError(f"refusing to talk to the provider at {self.base_url} without "
                             "TLS: use an https:// URL (plain http only on this machine)")
        # One keep-alive client per adapter: a new connection per letter costs more than the
        # POST. Redirects are not followed (httpx's default): the provider cannot send us on.
        self.client = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            auth=_OriginBearer(token, self.origin), follow_redirects=False,
            # Uncompressed, so the size limit counts what arrives (a compressed bomb from a
            # server that ignores this is still cut off at the limit once decoded).
            headers={"Accept-Encoding": "identity"},
        )

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
        self.client.close()

    # -- the calls -------------------------------------------------------------
    def _request(self, method: str, path: str, *, may_have_effect: bool,
                 limit: int | None = None, **kw) -> httpx.Response:
        try:
            response = self._bounded(method, path, limit or self.max_response_bytes,
                                     may_have_effect, **kw)
        except httpx.ConnectError as exc:  # never reached the provider
            raise TransientError(f"cannot connect: {exc}") from exc
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            # Connect timeouts are safe; a read timeout or a reset may come after the
            # provider acted on the request.
            sent = may_have_effect and not isinstance(exc, httpx.ConnectTimeout)
            raise TransientError(f"{type(exc).__name__}: {exc}", maybe_sent=sent) from exc
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
                body = response.json()
            except ValueError:
                body = {}
            raise PermanentError(
                body.get("message") or f"HTTP {response.status_code}",
                code=body.get("error", ""), fields=body.get("fields") or {},
                status=response.status_code,
            )
        return response

    def _bounded(self, method: str, path: str, limit: int, may_have_effect: bool,
                 **kw) -> httpx.Response:
        """The response, read in chunks and given up past `limit` bytes (decoded, so a
        compressed bomb stops too). Returned as a plain response holding the bytes read."""
        request = self.client.build_request(method, path, **kw)
        response = self.client.send(request, stream=True)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise ResponseTooLarge(f"the provider's answer is {int(declared):,} bytes "
                                       f"(at most {limit:,})", maybe_sent=may_have_effect)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ResponseTooLarge(f"the provider's answer is over {limit:,} bytes",
                                           maybe_sent=may_have_effect)
        finally:
            response.close()
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length",
                                        "transfer-encoding")]
        return httpx.Response(response.status_code, headers=headers, content=bytes(body),
                              request=request)

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
        response = self._request("POST", "/v1/letters", json=payload, may_have_effect=True,
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
        url = httpx.URL(page.url)
        if url.host:  # absolute (or scheme-relative): it must be the provider's own origin
            scheme = url.scheme or self.origin[0]
            where = (scheme, url.host, url.port or {"http": 80, "https": 443}.get(scheme))
            if where != self.origin:
                raise RefusedPage(f"the page is on another origin ({scheme}://{url.host}), "
                                  "not the provider's; not fetched", code="foreign_origin")
        try:
            response = self._request("GET", page.url, may_have_effect=False,
                                     limit=self.max_scan_bytes)
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
