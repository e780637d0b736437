"""Opening SMTP and IMAP connections safely: certificates and host names are verified,
implicit TLS (465 / 993) and STARTTLS are both offered, and a password never travels in
plain text except to this machine. A server that fails any of this raises TransportError
with a sentence an organizer can act on; there is no fallback to an unencrypted session.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from pathlib import Path

from imapclient import IMAPClient

SECURITY_MODES = ("auto", "none", "starttls", "tls")
IMPLICIT_TLS_PORTS = {"SMTP": 465, "IMAP": 993}


class TransportError(OSError):
    """The connection is refused on security grounds (or the server fails TLS). An OSError,
    so callers that retry on network trouble retry on this too, and log it."""


class _NoStartTLS(Exception):
    pass


def is_loopback(host: str) -> bool:
    """Only literal loopback: a name is not resolved, so DNS cannot make a host "local"."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_security(security: str, host: str, port: int, protocol: str,
                     legacy: str | None = None) -> str:
    """none | starttls | tls. `auto` picks implicit TLS on the well-known TLS port, plain
    text only on loopback, and STARTTLS (required, never optional) everywhere else. `legacy`
    is what an old boolean setting (GATEWAY_SMTP_STARTTLS, GATEWAY_IMAP_SSL) asked for."""
    if security not in SECURITY_MODES:
        raise ValueError(f"{protocol} security must be one of {', '.join(SECURITY_MODES)}")
    if security != "auto":
        return security
    if legacy:
        return legacy
    if port == IMPLICIT_TLS_PORTS[protocol]:
        return "tls"
    return "none" if is_loopback(host) else "starttls"


def tls_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """Certificate and host name checks on, TLS 1.2 or newer. With a CA file, only that
    CA is trusted (a private CA), not the system's."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def refuse_plain_login(protocol: str, host: str, port: int, security: str,
                       has_password: bool) -> None:
    """Before any connection is made: a password over plain text goes to loopback only."""
    if security == "none" and has_password and not is_loopback(host):
        raise TransportError(
            f"{protocol} {host}:{port}: refusing to send the password in plain text to a host "
            f"that is not this machine; set GATEWAY_{protocol}_SECURITY to starttls or tls")


def explain(protocol: str, host: str, port: int, exc: BaseException) -> TransportError:
    """A TLS failure as one clear sentence (what failed, and what to check)."""
    where = f"{protocol} {host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or str(exc)
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return TransportError(f"{where}: the server's certificate is not valid for this "
                                  f"host name ({why}); refusing to connect")
        return TransportError(f"{where}: the server's certificate is not trusted ({why}); "
                              "refusing to connect (a private CA goes in GATEWAY_TLS_CA_FILE)")
    if isinstance(exc, (smtplib.SMTPNotSupportedError, _NoStartTLS)):
        return TransportError(f"{where}: the server does not offer STARTTLS; refusing to "
                              "continue without encryption")
    return TransportError(f"{where}: TLS failed ({exc}); refusing to connect")


def open_smtp(host: str, port: int, *, security: str, timeout: float,
              user: str | None = None, password: str | None = None,
              ca_file: str | Path | None = None) -> smtplib.SMTP:
    refuse_plain_login("SMTP", host, port, security, bool(user))
    smtp: smtplib.SMTP | None = None
    try:
        if security == "tls":
            smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context(ca_file))
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout)
            if security == "starttls":
                smtp.starttls(context=tls_context(ca_file))
    except (ssl.SSLError, ssl.CertificateError, smtplib.SMTPNotSupportedError) as exc:
        if smtp is not None:
            smtp.close()
        raise explain("SMTP", host, port, exc) from exc
    if user:
        smtp.login(user, password or "")
    return smtp


def open_imap(host: str, port: int, *, security: str, timeout: float, user: str,
              password: str, ca_file: str | Path | None = None) -> IMAPClient:
    refuse_plain_login("IMAP", host, port, security, True)
    client: IMAPClient | None = None
    try:
        if security == "tls":
            client = IMAPClient(host, port=port, ssl=True, ssl_context=tls_context(ca_file),
                                timeout=timeout, use_uid=True)
        else:
            client = IMAPClient(host, port=port, ssl=False, timeout=timeout, use_uid=True)
            if security == "starttls":
                if not client.has_capability("STARTTLS"):
                    raise _NoStartTLS("STARTTLS")
                client.starttls(tls_context(ca_file))
    except (ssl.SSLError, ssl.CertificateError, _NoStartTLS) as exc:
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001
                pass
        raise explain("IMAP", host, port, exc) from exc
    client.login(user, password)
    return client
