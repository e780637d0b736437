"""Did the writer's domain vouch for this message? Read from Authentication-Results (RFC 8601)
added by our own MTA, and from nobody else's.

Anyone can write an Authentication-Results header into a message, so only the topmost one
carrying our configured authserv-id counts (our MTA prepends its header; RFC 8601 §5 has
it delete forged copies bearing its id further down, and the topmost is the one it wrote
last). "pass" means DMARC passed, or DKIM passed for the From domain (aligned, relaxed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import authres

Verdict = Literal["pass", "fail", "unknown"]


@dataclass(frozen=True)
class Authentication:
    verdict: Verdict  # unknown: no authserv-id configured, so nothing can be trusted
    detail: str  # for the organizer: what our MTA said, or why nothing counted


def _aligned(domain: str, from_domain: str) -> bool:
    domain, from_domain = domain.lower().rstrip("."), from_domain.lower().rstrip(".")
    return domain == from_domain or from_domain.endswith("." + domain) or \
        domain.endswith("." + from_domain)


def authenticate(headers: Iterable[str], *, own_authserv_id: str | None,
                 from_domain: str | None) -> Authentication:
    """Judge a message by the raw values of its Authentication-Results headers, top first."""
    if not own_authserv_id:
        return Authentication("unknown", "no authserv-id configured")
    for value in headers:
        try:
            parsed = authres.AuthenticationResultsHeader.parse_value(
                " ".join(str(value).split()))
        except Exception:  # noqa: BLE001 - a broken header is not ours to trust
            continue
        if str(parsed.authserv_id).lower() != own_authserv_id.lower():
            continue
        results = [(str(r.method).lower(), str(r.result).lower(), r) for r in parsed.results]
        summary = "; ".join(f"{m}={res}" for m, res, _ in results) or "none"
        if any(m == "dmarc" and res == "pass" for m, res, _ in results):
            return Authentication("pass", summary)
        for method, result, r in results:
            if method != "dkim" or result != "pass" or not from_domain:
                continue
            signer = next((p.value for p in r.properties
                           if str(p.type) == "header" and str(p.name) in ("d", "i")), "")
            if signer and _aligned(str(signer).rpartition("@")[2], from_domain):
                return Authentication("pass", summary)
        return Authentication("fail", summary)
    return Authentication("fail", f"no Authentication-Results from {own_authserv_id}")
