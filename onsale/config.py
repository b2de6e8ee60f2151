"""Settings from ``ONSALE_*`` environment variables, one frozen Struct per subsystem."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """A required setting is missing or malformed; the message is one line for the operator."""


class RedisSettings(msgspec.Struct, frozen=True):
    #: ``redis://``, ``rediss://`` or ``unix://`` URL; empty means "not configured".
    url: str = ""
    #: Treat ``url`` as one node of a Redis Cluster.
    cluster: bool = False
    #: Connections per gateway process.
    max_connections: int = 64


class DatabaseSettings(msgspec.Struct, frozen=True):
    #: ``postgresql://`` URL; ``?host=/socket/dir`` selects a Unix socket.
    url: str = ""
    pool_min: int = 1
    pool_max: int = 10


class StripeSettings(msgspec.Struct, frozen=True):
    secret_key: str = ""
    publishable_key: str = ""
    webhook_secret: str = ""
    #: Empty means Stripe's own API.
    api_base: str = ""

    @property
    def emulated(self) -> bool:
        """Talking to a Stripe emulator (``onsale dev``, tests), never to Stripe itself."""
        return bool(self.api_base) and self.secret_key.startswith("sk_test_")


class SecuritySettings(msgspec.Struct, frozen=True):
    #: Bearer token with organizer and admin rights.
    admin_token: str = ""
    #: Ed25519 private key: PEM, or base64url of the 32-byte seed.
    signing_key: str = ""
    #: CIDRs exempt from per-client rate limits.
    rate_limit_exempt: tuple[str, ...] = ()
    #: Proxies (IPs or CIDRs) whose ``X-Forwarded-For`` names the client; empty: none, every
    #: request is the peer's own (a header anyone can write must not pick the rate-limit key).
    trusted_proxies: tuple[str, ...] = ()
    #: Queue joins without a visitor token, per client address and minute.
    joins_per_minute: int = 20
    #: Live places in one event's queue per client network (IPv4 address, IPv6 /64); 0 = no
    #: cap. Generous: a carrier-grade NAT puts many honest buyers behind one address.
    places_per_client: int = 50
    #: Checkouts per client address and minute (a buyer needs one or two).
    checkouts_per_minute: int = 30
    #: Check-in scans per client address, event and minute; offline syncs and manifest
    #: downloads are allowed a tenth of it (a sync carries up to 1000 scans).
    checkins_per_minute: int = 600
    #: The session cookie is ``Secure`` (sent over HTTPS only); ``onsale dev`` turns it off.
    secure_cookies: bool = True
    #: A console session lapses after this long unused.
    session_hours: int = 12
    #: Failed logins per account, and per client address, before logins are refused for the
    #: rest of a 15-minute window (``429``).
    login_failures_per_account: int = 5
    login_failures_per_client: int = 20


class MailSettings(msgspec.Struct, frozen=True):
    #: ``smtp://[user:pass@]host:port`` (``?starttls=1``) or ``smtps://...``; empty: no mail.
    smtp_url: str = ""
    #: The sender address.
    mail_from: str = "tickets@localhost"
    #: Base URL for links in e-mails.
    public_url: str = "http://127.0.0.1:8000"


class PowSettings(msgspec.Struct, frozen=True):
    """The bot tax: proof-of-work (ALTCHA) on joining a waiting room (docs/bot-tax.md)."""

    #: HMAC secret of the challenges; empty: derived from the signing key. Every gateway of
    #: a deployment needs the same one (as they share the signing key).
    secret: str = ""
    #: Difficulty of an event that sets none (``pow_difficulty`` absent): the largest counter
    #: a solver may have to reach (ALTCHA's ``maxnumber``; about half of it on average).
    #: 0 = no proof-of-work. Off by default: turn it on for real launches.
    difficulty: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] = 0
    #: Joins per second (measured over the last few seconds, all gateways) per doubling of
    #: an event's difficulty; 0 = the difficulty never rises by itself.
    rate_step: Annotated[int, msgspec.Meta(ge=0)] = 200
    #: The automatic rise stops here (never below the event's own difficulty).
    max_difficulty: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)] = 1_000_000


class Settings(msgspec.Struct, frozen=True):
    redis: RedisSettings = RedisSettings()
    database: DatabaseSettings = DatabaseSettings()
    stripe: StripeSettings = StripeSettings()
    security: SecuritySettings = SecuritySettings()
    mail: MailSettings = MailSettings()
    pow: PowSettings = PowSettings()
    #: Where embedded services and dev keys live.
    data_dir: str = ".onsale"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).resolve()

    def require(self, *names: str) -> None:
        """Raise one clear line naming every missing required variable."""
        missing = [n for n in names if not _ENV_VALUE[n](self)]
        if missing:
            raise ConfigError("missing required environment variable(s): " + ", ".join(missing))


# Environment variable -> (subsystem, field). The one place names are mapped.
_ENV: dict[str, tuple[str, str]] = {
    "ONSALE_REDIS_URL": ("redis", "url"),
    "ONSALE_REDIS_CLUSTER": ("redis", "cluster"),
    "ONSALE_REDIS_MAX_CONNECTIONS": ("redis", "max_connections"),
    "ONSALE_DATABASE_URL": ("database", "url"),
    "ONSALE_DATABASE_POOL_MIN": ("database", "pool_min"),
    "ONSALE_DATABASE_POOL_MAX": ("database", "pool_max"),
    "ONSALE_STRIPE_SECRET_KEY": ("stripe", "secret_key"),
    "ONSALE_STRIPE_PUBLISHABLE_KEY": ("stripe", "publishable_key"),
    "ONSALE_STRIPE_WEBHOOK_SECRET": ("stripe", "webhook_secret"),
    "ONSALE_STRIPE_API_BASE": ("stripe", "api_base"),
    "ONSALE_ADMIN_TOKEN": ("security", "admin_token"),
    "ONSALE_SIGNING_KEY": ("security", "signing_key"),
    "ONSALE_RATE_LIMIT_EXEMPT": ("security", "rate_limit_exempt"),
    "ONSALE_TRUSTED_PROXIES": ("security", "trusted_proxies"),
    "ONSALE_JOINS_PER_MINUTE": ("security", "joins_per_minute"),
    "ONSALE_PLACES_PER_CLIENT": ("security", "places_per_client"),
    "ONSALE_CHECKINS_PER_MINUTE": ("security", "checkins_per_minute"),
    "ONSALE_CHECKOUTS_PER_MINUTE": ("security", "checkouts_per_minute"),
    "ONSALE_SECURE_COOKIES": ("security", "secure_cookies"),
    "ONSALE_SESSION_HOURS": ("security", "session_hours"),
    "ONSALE_LOGIN_FAILURES_PER_ACCOUNT": ("security", "login_failures_per_account"),
    "ONSALE_LOGIN_FAILURES_PER_CLIENT": ("security", "login_failures_per_client"),
    "ONSALE_SMTP_URL": ("mail", "smtp_url"),
    "ONSALE_MAIL_FROM": ("mail", "mail_from"),
    "ONSALE_PUBLIC_URL": ("mail", "public_url"),
    "ONSALE_POW_SECRET": ("pow", "secret"),
    "ONSALE_POW_DIFFICULTY": ("pow", "difficulty"),
    "ONSALE_POW_RATE_STEP": ("pow", "rate_step"),
    "ONSALE_POW_MAX_DIFFICULTY": ("pow", "max_difficulty"),
}

#: Comma-separated lists.
_LISTS = ("rate_limit_exempt", "trusted_proxies")

_ENV_VALUE = {
    name: (lambda s, sub=sub, field=field: getattr(getattr(s, sub), field))
    for name, (sub, field) in _ENV.items()
}


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings once from the environment (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    raw: dict[str, dict[str, object]] = {
        "redis": {},
        "database": {},
        "stripe": {},
        "security": {},
        "mail": {},
        "pow": {},
    }
    for name, (sub, field) in _ENV.items():
        value = env.get(name, "").strip()
        if not value:
            continue
        if field in _LISTS:
            raw[sub][field] = [part.strip() for part in value.split(",") if part.strip()]
        else:
            raw[sub][field] = value
    doc: dict[str, object] = dict(raw)
    if env.get("ONSALE_DATA_DIR", "").strip():
        doc["data_dir"] = env["ONSALE_DATA_DIR"].strip()
    try:
        settings = msgspec.convert(doc, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid setting: {exc}") from None
    networks(settings.security.trusted_proxies, "ONSALE_TRUSTED_PROXIES")
    return settings


def networks(values: tuple[str, ...], name: str) -> list[IPNetwork]:
    """IPs or CIDRs as networks (host bits allowed); a malformed one is a ConfigError."""
    try:
        return [ipaddress.ip_network(v, strict=False) for v in values]
    except ValueError as exc:
        raise ConfigError(f"invalid setting: {name}: {exc}") from None
