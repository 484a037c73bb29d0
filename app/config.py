"""Settings: read from the environment once, checked once, then immutable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dotenv import find_dotenv, load_dotenv

from app.parsing import Malformed, decimal_integer, decimal_number

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
# A scope value as it appears in the scp claim: RFC 6749 scope-token without spaces.
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
# gunicorn's bind host: a name, an IPv4 address or a bracketed IPv6 address.
BIND_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A serialised browser origin (RFC 6454): what the Origin header carries, compared exactly.
ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?$")


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


@dataclass(frozen=True)
class DownstreamApi:
    """A downstream API is data: where it lives and which scopes its token needs."""

    name: str
    base_url: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """The API's settings; ``load_settings`` is the one place that builds them (and their
    defaults)."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    authority_host: str
    audiences: tuple[str, ...]
    api_scope: str
    downstream: Mapping[str, DownstreamApi]
    http_connect_timeout: float
    http_read_timeout: float
    http_total_timeout: float
    obo_cache_max_users: int
    keys_cold_retry_seconds: float
    log_level: str
    cors_allowed_origins: tuple[str, ...]

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def metadata_url(self) -> str:
        return f"{self.authority}/v2.0/.well-known/openid-configuration"

    @property
    def realm(self) -> str:
        return f"api://{self.client_id}"

    @property
    def http_timeout(self) -> tuple[float, float]:
        return (self.http_connect_timeout, self.http_read_timeout)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build Settings from environment variables, or raise ConfigError naming the culprit."""
    reader = _Reader(env)
    client_id = reader.guid("AZURE_CLIENT_ID")
    audiences = reader.csv("API_AUDIENCE", default=client_id)
    downstream = {
        "graph": DownstreamApi(
            "graph",
            reader.https_url("GRAPH_URL", "https://graph.microsoft.com/v1.0"),
            reader.scopes("GRAPH_SCOPES", "https://graph.microsoft.com/.default"),
        ),
        "arm": DownstreamApi(
            "arm",
            reader.https_url("ARM_URL", "https://management.azure.com"),
            reader.scopes("ARM_SCOPES", "https://management.azure.com/user_impersonation"),
        ),
    }
    return Settings(
        tenant_id=reader.tenant("AZURE_TENANT_ID"),
        client_id=client_id,
        client_secret=reader.secret("AZURE_CLIENT_SECRET"),
        authority_host=reader.https_url("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com"),
        audiences=audiences,
        api_scope=reader.scope_token("API_SCOPE", "access_as_user"),
        downstream=downstream,
        http_connect_timeout=reader.number("HTTP_CONNECT_TIMEOUT", "3.05", low=0.1, high=60),
        http_read_timeout=reader.number("HTTP_READ_TIMEOUT", "10", low=0.1, high=300),
        http_total_timeout=reader.number("HTTP_TOTAL_TIMEOUT", "30", low=0.1, high=600),
        obo_cache_max_users=reader.integer("OBO_CACHE_MAX_USERS", "5000", low=1, high=10**7),
        keys_cold_retry_seconds=reader.number("KEYS_COLD_RETRY_SECONDS", "10", low=1, high=300),
        log_level=reader.log_level("LOG_LEVEL"),
        cors_allowed_origins=reader.origins("CORS_ALLOWED_ORIGINS"),
    )


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn.conf.py takes from the environment."""

    bind: str
    workers: int
    threads: int
    log_level: str


def load_server_settings(env: Mapping[str, str]) -> ServerSettings:
    """Build gunicorn's settings from environment variables, or raise ConfigError."""
    reader = _Reader(env)
    return ServerSettings(
        bind=reader.bind("BIND", "127.0.0.1:8000"),
        workers=reader.integer("WEB_CONCURRENCY", "2", low=1, high=256),
        threads=reader.integer("THREADS", "4", low=1, high=1024),
        log_level=reader.log_level("LOG_LEVEL"),
    )


def read_environment() -> Mapping[str, str]:
    """The process environment after loading ``.env`` from the working directory (or the
    nearest parent that has one); variables already set win over the file."""
    load_dotenv(find_dotenv(usecwd=True))
    return os.environ


class _Reader:
    """Reads one variable at a time and says which one is wrong."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _get(self, name: str, default: str | None = None) -> str:
        value = self._env.get(name, "").strip()
        if value:
            return value
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default

    def guid(self, name: str) -> str:
        value = self._get(name)
        if not GUID.match(value):
            raise ConfigError(f"{name} must be a GUID (the application (client) ID)")
        return value.lower()

    def tenant(self, name: str) -> str:
        value = self._get(name)
        if GUID.match(value):
            return value.lower()
        if DOMAIN.match(value):
            return value.lower()
        raise ConfigError(f"{name} must be a tenant GUID or a verified domain name")

    def secret(self, name: str) -> str:
        value = self._env.get(name, "")
        if not value.strip():
            raise ConfigError(f"{name} is required but not set")
        return value

    def https_url(self, name: str, default: str) -> str:
        value = self._get(name, default).rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(f"{name} must be an https URL without query or fragment")
        return value

    def csv(self, name: str, default: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in self._get(name, default).split(","))
        if not all(items):
            raise ConfigError(f"{name} must be a comma-separated list without empty items")
        return items

    def scopes(self, name: str, default: str) -> tuple[str, ...]:
        items = tuple(self._get(name, default).replace(",", " ").split())
        if not items or not all(item.startswith(("https://", "api://")) for item in items):
            raise ConfigError(f"{name} must list scopes such as https://host/.default")
        return items

    def origins(self, name: str) -> tuple[str, ...]:
        """Exact browser origins (scheme://host[:port]); ``*`` only when it stands alone."""
        raw = self._env.get(name, "").strip()
        if not raw:
            return ()
        items = tuple(item.strip() for item in raw.split(","))
        if items == ("*",):
            return items
        for item in items:
            if not ORIGIN.fullmatch(item):
                raise ConfigError(f"{name} must list origins such as https://app.example.com "
                                  "(scheme, host, optional port; no path), or be * alone")
        return items

    def scope_token(self, name: str, default: str) -> str:
        value = self._get(name, default)
        if not SCOPE_TOKEN.match(value):
            raise ConfigError(f"{name} must be a single scope value such as access_as_user")
        return value

    def number(self, name: str, default: str, *, low: float, high: float) -> float:
        raw = self._get(name, default)
        try:
            return decimal_number(raw, low=low, high=high)
        except Malformed:
            raise ConfigError(f"{name} must be a number from {low:g} to {high:g} "
                              "(digits and an optional decimal point)") from None

    def integer(self, name: str, default: str, *, low: int, high: int) -> int:
        raw = self._get(name, default)
        try:
            return decimal_integer(raw, low=low, high=high)
        except Malformed:
            raise ConfigError(f"{name} must be a whole number from {low} to {high}") from None

    def log_level(self, name: str) -> str:
        value = self._get(name, "INFO").upper()
        if value not in LOG_LEVELS:
            raise ConfigError(f"{name} must be one of {', '.join(LOG_LEVELS)}")
        return value

    def bind(self, name: str, default: str) -> str:
        value = self._get(name, default)
        if value.startswith("unix:") and len(value) > len("unix:"):
            return value
        host, _, port = value.rpartition(":")
        try:
            if not BIND_HOST.fullmatch(host):
                raise Malformed(host)
            decimal_integer(port, low=0, high=65535, max_length=5)
        except Malformed:
            raise ConfigError(f"{name} must be HOST:PORT (such as 127.0.0.1:8000 or "
                              "[::1]:8000) or unix:PATH") from None
        return value
