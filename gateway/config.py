"""Settings: environment variables with the GATEWAY_ prefix, or a .env file.

Every field here is documented in the README's configuration table; keep them in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me-in-production"
MIN_SECRET_BYTES = 32
# Every value the repository ships as an example (.env.example, docs): known to everyone.
PLACEHOLDER_SECRETS = frozenset({
    DEFAULT_SECRET,
    'generate-with: python -c "import secrets; print(secrets.token_urlsafe(32))"',
    "<64 random characters>",
})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    # State and work
    database_url: str = "sqlite:///var/gateway.db"
    broker_url: str = "redis://127.0.0.1:6379/0"
    # Letters a pipeline task takes at once (checks, submissions, notices): each batch costs
    # its task, its claims and its commits once, so fifty carry a burst ~14% faster than
    # twenty-five (bench/README.md, run 14); memory is bounded by bytes inside the tasks.
    task_batch: int = Field(default=50, ge=1, le=500)
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    # Secrets being rotated away from, comma separated: still read, never written with
    # (gateway keys rotate re-encrypts everything under secret_key; then remove them).
    old_secret_keys: SecretStr = SecretStr("")

    # The shared inbox participants write to, and the mailbox the services send scans to
    imap_host: str = "127.0.0.1"
    imap_port: int = 1143
    # auto: TLS on 993, plain on loopback only, STARTTLS (required) anywhere else
    imap_security: Literal["auto", "none", "starttls", "tls"] = "auto"
    imap_ssl: bool = False  # old name for imap_security=tls; kept working
    imap_user: str = "letters"
    imap_password: SecretStr = SecretStr("secret")
    imap_folder: str = "INBOX"
    imap_processed_folder: str = "Processed"
    reply_imap_user: str = "replies"
    reply_imap_password: SecretStr = SecretStr("secret")
    imap_batch: int = 200

    # Outgoing mail to writers
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # auto: TLS on 465, plain on loopback only, STARTTLS (required) anywhere else
    smtp_security: Literal["auto", "none", "starttls", "tls"] = "auto"
    smtp_starttls: bool = False  # old name for smtp_security=starttls; kept working
    smtp_timeout: float = 30.0
    # A private CA's certificates (PEM) for SMTP and IMAP; then only it is trusted
    tls_ca_file: Path | None = None

    # Who we are
    gateway_address: str = "letters@gateway.local"
    org_name: str = "Письма поддержки"
    org_reply_email: str = "replies@gateway.local"
    org_phone: str = "+70000000000"
    # Trust Authentication-Results only when added by our own MTA under this authserv-id
    # (RFC 8601); unset, nobody's results are trusted and only first-time writers confirm.
    own_authserv_id: str | None = None

    # Writers: a new address confirms by answering a one-time token before a letter is paid
    # for. On in production; the e2e stack and the demo set GATEWAY_CONFIRM_SENDERS=false.
    # Organizers mark writers they know as confirmed (`gateway writers confirm`, dashboard).
    confirm_senders: bool = True
    # A separate defence: a letter whose domain did not vouch for it (DMARC/DKIM failure
    # seen by our MTA, GATEWAY_OWN_AUTHSERV_ID) waits for the writer to confirm *that*
    # letter, even from a confirmed writer and with first-letter confirmation off.
    confirm_failed_authentication: bool = True
    confirm_token_days: int = 7  # the token works this long; a new letter sends a new one
    sender_daily_limit: int = 10  # letters per writer per day; the excess is HELD, never dropped
    notices_per_writer_per_day: int = 10  # the cap over every kind of notice, loops included
    received_notice_after_s: float = 600.0  # 'received' goes out only if not sent by then

    # Services: the directory names the service reaching each prisoner; this says which
    # adapter carries each service's letters (desk: typed in by a volunteer; post: printed;
    # http: the API of provider-api.md). A prisoner imported with no service gets
    # default_provider.
    service_adapters: str = "fsin-pismo=desk,zonatelecom=desk,post=post"
    default_provider: str = "desk"
    desk_lease_minutes: int = 20  # a volunteer's hold on a letter being typed in

    # The prison e-mail service (the `http` adapter speaks provider-api.md)
    provider_url: str = "http://127.0.0.1:8025"
    provider_token: SecretStr = SecretStr("sim-token")
    provider_timeout: float = 10.0
    # The provider is not trusted: every response is cut off at these sizes
    provider_max_response_bytes: int = 5 * 1024 * 1024  # JSON answers
    provider_max_scan_bytes: int = 20 * 1024 * 1024  # one reply page (a scan)
    scan_max_pages: int = 20  # PDF pages rendered to images; a longer reply goes to triage
    reply_ordered: bool = True

    # Reliability
    sweep_interval_s: float = 15.0
    inbox_poll_s: float = 60.0  # backstop to the IDLE watcher
    reply_poll_s: float = 60.0
    status_poll_s: float = 300.0
    stuck_after_s: float = 60.0
    max_submit_attempts: int = 8
    # How hard a paid provider is pushed (gateway.providers.policy.SubmissionPolicy)
    daily_spend_cap_rub: float | None = None  # all paid providers together, per UTC day
    submit_retry_base_s: float = 5.0  # first retry delay; doubles, with jitter
    submit_retry_cap_s: float = 3600.0
    breaker_threshold: int = 5  # consecutive transient failures that open the circuit
    breaker_cooldown_s: float = 60.0  # first open period; doubles while probes fail
    breaker_max_cooldown_s: float = 1800.0
    pause_on_402_minutes: int = 30  # the account is empty: stop paying calls this long
    catalogue_max_age_h: float = 24.0
    # Letters by post: facilities' postal addresses (CSV facility_id,name,region,postal_address;
    # default: the packaged demo file) and the return address printed on every letter.
    post_addresses: Path | None = None
    org_postal_address: str = ""  # re-sync the provider's facility catalogue after
    max_send_attempts: int = 10

    # Dashboard
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    # Where writers reach the dashboard's public pages (the one-click unsubscribe link in
    # reminder mail): the address the world sees, behind the TLS proxy.
    web_public_url: str = "http://127.0.0.1:8000"
    # How many different organizers must confirm a reply match that is only a person's
    # reading (the number on the scan does not name the letter): 2 = four-eyes rule.
    reply_match_confirmations: int = Field(default=1, ge=1, le=2)
    # Queue depth (Redis LLEN of letters, intake or mail) above which the overview alerts.
    queue_alert_depth: int = 500
    # Reverse proxies in front of the dashboard whose X-Forwarded-For/-Proto/-Host are
    # trusted (1 behind one TLS proxy); 0 = none, the dashboard is reached directly.
    web_proxy_hops: int = Field(default=0, ge=0)
    # The session cookie's Secure flag; unset: on, except for plain HTTP on a loopback host.
    web_cookie_secure: bool | None = None
    # Admins must log in with a TOTP code; without one enrolled they can only enrol.
    admin_totp_required: bool = False
    # Prometheus' bearer token for /metrics; unset, only a logged-in organizer can read it.
    metrics_token: SecretStr | None = None

    # Logs: one line per record to stderr, e-mail addresses always removed
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    # A letter longer than its facility takes: split into at most this many letters, each
    # paid for (the writer is told); below 2, it is returned with a suggested split.
    split_max_parts: int = 0

    # Postcards (gateway/postcards.py): in a campaign or evening that gathers, a greeting of
    # at most this many characters to one named prisoner joins that prisoner's postcard; the
    # postcard goes when the window after its first greeting ends or its pages are full.
    postcard_max_chars: int = Field(default=600, ge=1)
    postcard_window_minutes: float = Field(default=120.0, gt=0)
    postcard_max_pages: int = Field(default=2, ge=1)  # the facility's own limit may be lower

    # Checks: names of rules to switch off, comma separated
    rules_disabled: str = Field(default="")
    monthly_budget_rub: float | None = None

    # Retention: days after a letter's end (delivered, censored, rejected, ...) before its
    # raw mail, text, photos, reply scans and writer's address are purged (events and
    # counts stay). Writers seen within writer_retention_days keep their sealed address.
    retention_days: int = Field(default=60, ge=0)
    writer_retention_days: int = Field(default=180, ge=0)
    purge_batch: int = Field(default=500, ge=1)

    # Campaigns: a birthday campaign makes itself this many days before a known birthday.
    birthday_campaign_days: int = Field(default=14, ge=0, le=60)

    def old_secrets(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.old_secret_keys.get_secret_value().split(",")
                     if s.strip())


    def smtp_mode(self) -> str:
        from gateway.mail.transport import resolve_security
        return resolve_security(self.smtp_security, self.smtp_host, self.smtp_port, "SMTP",
                                "starttls" if self.smtp_starttls else None)

    def imap_mode(self) -> str:
        from gateway.mail.transport import resolve_security
        return resolve_security(self.imap_security, self.imap_host, self.imap_port, "IMAP",
                                "tls" if self.imap_ssl else None)

    @model_validator(mode="after")
    def _no_weak_secret_in_production(self) -> Settings:
        # The key encrypts writers' addresses: a shared or guessable one would make that
        # encryption worthless. Tolerated only on the embedded SQLite set-up (demo, dev).
        if not self.database_url.startswith("sqlite"):
            why = secret_weakness(self.secret_key.get_secret_value())
            if why:
                raise ValueError(
                    f"GATEWAY_SECRET_KEY {why} (it encrypts writers' addresses and signs "
                    'sessions); generate one: python -c "import secrets; '
                    'print(secrets.token_urlsafe(32))"')
        return self


def secret_weakness(secret: str) -> str | None:
    """Why this secret must not guard real writers, or None."""
    if secret in PLACEHOLDER_SECRETS or secret.strip() in PLACEHOLDER_SECRETS:
        return "is a placeholder the repository ships"
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return f"is shorter than {MIN_SECRET_BYTES} bytes"
    return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
