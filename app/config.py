"""Settings: read from the environment once, checked once, then immutable."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from dotenv import find_dotenv, load_dotenv

from app.parsing import Malformed, decimal_integer, decimal_number

GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,63}$")
# A scope value as it appears in the scp claim: RFC 6749 scope-token without spaces.
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")
# gunicorn's bind host: a name, an IPv4 address or a bracketed IPv6 address.
BIND_HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "text")
# A serialised browser origin (RFC 6454): what the Origin header carries, compared exactly.
ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?$")
# A Fernet key: 32 bytes in URL-safe base64 with its padding, as Fernet.generate_key() prints.
FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")
MAKE_FERNET_KEY = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


class ConfigError(ValueError):
    """A missing or malformed setting; the message names the variable."""


@dataclass(frozen=True)
class DownstreamApi:
    """A downstream API is data: where it lives and which scopes its token needs."""

    name: str
    base_url: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis listens, from a redis:// or rediss:// (TLS) URL."""

    tls: bool
    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        """The URL without credentials, for the log."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'rediss' if self.tls else 'redis'}://{host}:{self.port}/{self.db}"


@dataclass(frozen=True)
class SharedCacheSettings:
    """Level 2 of the token cache (TOKEN_CACHE_*): a Redis server shared by every instance.

    ``encryption_keys``: the first seals new entries, each of them opens entries."""

    address: RedisAddress
    encryption_keys: tuple[str, ...] = field(repr=False)
    connect_timeout: float
    timeout: float
    breaker_failures: int
    breaker_seconds: float


@dataclass(frozen=True)
class ClientSecret:
    """AZURE_CLIENT_SECRET."""

    value: str = field(repr=False)


@dataclass(frozen=True)
class ClientCertificate:
    """AZURE_CLIENT_CERTIFICATE_PATH (PEM or PKCS#12, read and checked at start-up):
    the private key and its certificate, then the other certificates of the file (its chain),
    sent in x5c when ``send_chain`` (AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)."""

    path: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(repr=False)
    send_chain: bool


@dataclass(frozen=True)
class FederatedTokenFile:
    """AZURE_FEDERATED_TOKEN_FILE: a token of a trusted issuer, kept fresh in a file by the
    platform (AKS workload identity); read at each token request."""

    path: str


@dataclass(frozen=True)
class FederatedManagedIdentity:
    """AZURE_MANAGED_IDENTITY_CLIENT_ID: a user-assigned managed identity whose token is the
    client assertion (the app registration trusts it with a federated identity credential)."""

    client_id: str


ClientCredential = ClientSecret | ClientCertificate | FederatedTokenFile | FederatedManagedIdentity


@dataclass(frozen=True)
class Settings:
    """The API's settings; ``load_settings`` is the one place that builds them (and their
    defaults)."""

    tenant_id: str
    client_id: str
    credential: ClientCredential
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
    log_format: str
    cors_allowed_origins: tuple[str, ...]
    token_cache: SharedCacheSettings | None

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
        credential=_client_credential(reader),
        authority_host=reader.https_url(
            "AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com"
        ),
        audiences=audiences,
        api_scope=reader.scope_token("API_SCOPE", "access_as_user"),
        downstream=downstream,
        http_connect_timeout=reader.number("HTTP_CONNECT_TIMEOUT", "3.05", low=0.1, high=60),
        http_read_timeout=reader.number("HTTP_READ_TIMEOUT", "10", low=0.1, high=300),
        http_total_timeout=reader.number("HTTP_TOTAL_TIMEOUT", "30", low=0.1, high=600),
        obo_cache_max_users=reader.integer("OBO_CACHE_MAX_USERS", "5000", low=1, high=10**7),
        keys_cold_retry_seconds=reader.number("KEYS_COLD_RETRY_SECONDS", "10", low=1, high=300),
        log_level=reader.log_level("LOG_LEVEL"),
        log_format=reader.log_format("LOG_FORMAT"),
        cors_allowed_origins=reader.origins("CORS_ALLOWED_ORIGINS"),
        token_cache=_shared_cache_settings(reader),
    )


# The kinds of client credential, by the variable that selects each; exactly one must be set.
CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_MANAGED_IDENTITY_CLIENT_ID",
)
CERTIFICATE_OPTIONS = ("AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
MAX_CERTIFICATE_FILE_BYTES = 1024 * 1024
MIN_RSA_KEY_BITS = 2048
_PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN (?:RSA |ENCRYPTED )?PRIVATE KEY-----")


def _client_credential(reader: _Reader) -> ClientCredential:
    """The one client credential the environment names (CREDENTIAL_VARIABLES)."""
    named = [name for name in CREDENTIAL_VARIABLES if reader.is_set(name)]
    if len(named) > 1:
        raise ConfigError(
            f"{', '.join(named[:-1])} and {named[-1]} are set; the API uses "
            "exactly one client credential, so keep one of them"
        )
    stray = [name for name in CERTIFICATE_OPTIONS if reader.is_set(name)]
    if stray and named != ["AZURE_CLIENT_CERTIFICATE_PATH"]:
        raise ConfigError(f"{stray[0]} is set but AZURE_CLIENT_CERTIFICATE_PATH is not")
    if not named:
        raise ConfigError(
            "AZURE_CLIENT_SECRET is required when no other client credential is "
            "set (AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE or "
            "AZURE_MANAGED_IDENTITY_CLIENT_ID); set exactly one"
        )
    kind = named[0]
    if kind == "AZURE_CLIENT_SECRET":
        return ClientSecret(reader.secret(kind))
    if kind == "AZURE_CLIENT_CERTIFICATE_PATH":
        return _client_certificate(reader)
    if kind == "AZURE_FEDERATED_TOKEN_FILE":
        return FederatedTokenFile(reader.text(kind))
    client_id = reader.text(kind)
    if not GUID.match(client_id):
        raise ConfigError(f"{kind} must be a GUID (the managed identity's client ID)")
    return FederatedManagedIdentity(client_id.lower())


def _client_certificate(reader: _Reader) -> ClientCertificate:
    """Read AZURE_CLIENT_CERTIFICATE_PATH and check it now, not at the first token request:
    a key and a certificate that match, an RSA key of 2048 bits or more, valid today."""
    path = reader.text("AZURE_CLIENT_CERTIFICATE_PATH")
    password = reader.optional_secret("AZURE_CLIENT_CERTIFICATE_PASSWORD")
    data = _read_certificate_file(path)
    key, certificates = (
        _pem_key_and_certificates(data, password)
        if b"-----BEGIN" in data
        else _pkcs12_key_and_certificates(data, password)
    )
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_RSA_KEY_BITS:
        raise ConfigError(
            f"AZURE_CLIENT_CERTIFICATE_PATH must hold an RSA private key of "
            f"{MIN_RSA_KEY_BITS} bits or more (Entra ID signs and verifies "
            "client assertions with RSA)"
        )
    own = [c for c in certificates if c.public_key() == key.public_key()]
    if not own:
        raise ConfigError(
            "AZURE_CLIENT_CERTIFICATE_PATH: no certificate in the file matches its private key"
            if certificates
            else "AZURE_CLIENT_CERTIFICATE_PATH holds no certificate (the file needs "
            "the private key and its certificate)"
        )
    _check_validity(own[0])
    return ClientCertificate(
        path=path,
        private_key=key,
        chain=(own[0], *(c for c in certificates if c != own[0])),
        send_chain=reader.boolean("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"),
    )


def _read_certificate_file(path: str) -> bytes:
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_CERTIFICATE_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"AZURE_CLIENT_CERTIFICATE_PATH: cannot read {path} "
            f"({exc.strerror or type(exc).__name__})"
        ) from None
    if len(data) > MAX_CERTIFICATE_FILE_BYTES:
        raise ConfigError(
            f"AZURE_CLIENT_CERTIFICATE_PATH: {path} is over "
            f"{MAX_CERTIFICATE_FILE_BYTES // 1024} KiB; it is not a certificate"
        )
    return data


def _pem_key_and_certificates(
    data: bytes, password: str | None
) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
    if not _PEM_PRIVATE_KEY.search(data):
        raise ConfigError(
            "AZURE_CLIENT_CERTIFICATE_PATH holds no private key (the PEM file "
            "needs the private key and its certificate)"
        )
    try:
        key = serialization.load_pem_private_key(data, _password_bytes(password))
    except TypeError:  # cryptography: a password for a plain key, or none for an encrypted one
        raise ConfigError(
            "AZURE_CLIENT_CERTIFICATE_PASSWORD is set but the private key in "
            "AZURE_CLIENT_CERTIFICATE_PATH is not encrypted"
            if password
            else "AZURE_CLIENT_CERTIFICATE_PATH holds an encrypted private key; set "
            "AZURE_CLIENT_CERTIFICATE_PASSWORD"
        ) from None
    except ValueError:
        raise ConfigError(
            "AZURE_CLIENT_CERTIFICATE_PASSWORD does not decrypt the private key in "
            "AZURE_CLIENT_CERTIFICATE_PATH"
            if password
            else "AZURE_CLIENT_CERTIFICATE_PATH: the private key cannot be read"
        ) from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    return key, certificates


def _pkcs12_key_and_certificates(
    data: bytes, password: str | None
) -> tuple[PrivateKeyTypes, list[x509.Certificate]]:
    try:
        key, certificate, others = pkcs12.load_key_and_certificates(data, _password_bytes(password))
    except ValueError:
        raise ConfigError(
            "AZURE_CLIENT_CERTIFICATE_PASSWORD does not open the PKCS#12 file in "
            "AZURE_CLIENT_CERTIFICATE_PATH, or it is not one"
            if password
            else "AZURE_CLIENT_CERTIFICATE_PATH is neither PEM nor a PKCS#12 file without a "
            "password (set AZURE_CLIENT_CERTIFICATE_PASSWORD if it has one)"
        ) from None
    if key is None:
        raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH holds no private key")
    return key, [c for c in (certificate, *others) if c is not None]


def _password_bytes(password: str | None) -> bytes | None:
    return password.encode("utf-8") if password is not None else None


def _check_validity(certificate: x509.Certificate) -> None:
    now = dt.datetime.now(dt.UTC)
    described = (
        f"certificate {certificate.subject.rfc4514_string()} (SHA-256 thumbprint "
        f"{certificate.fingerprint(hashes.SHA256()).hex().upper()})"
    )
    if certificate.not_valid_after_utc <= now:
        raise ConfigError(
            f"AZURE_CLIENT_CERTIFICATE_PATH: the {described} expired on "
            f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if certificate.not_valid_before_utc > now:
        raise ConfigError(
            f"AZURE_CLIENT_CERTIFICATE_PATH: the {described} is not valid "
            f"before {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def _shared_cache_settings(reader: _Reader) -> SharedCacheSettings | None:
    """TOKEN_CACHE_*; None (each process caches alone) unless TOKEN_CACHE_URL is set."""
    address = reader.redis_url("TOKEN_CACHE_URL")
    if address is None:
        return None
    password = reader.optional_secret("TOKEN_CACHE_PASSWORD")
    if password is not None:
        if address.password is not None:
            raise ConfigError(
                "TOKEN_CACHE_PASSWORD is set and TOKEN_CACHE_URL holds a password "
                "too; keep one of them"
            )
        address = replace(address, password=password)
    return SharedCacheSettings(
        address=address,
        encryption_keys=reader.fernet_keys(
            "TOKEN_CACHE_ENCRYPTION_KEY", previous="TOKEN_CACHE_ENCRYPTION_KEY_PREVIOUS"
        ),
        connect_timeout=reader.number("TOKEN_CACHE_CONNECT_TIMEOUT", "0.25", low=0.01, high=10),
        timeout=reader.number("TOKEN_CACHE_TIMEOUT", "0.25", low=0.01, high=10),
        breaker_failures=reader.integer("TOKEN_CACHE_BREAKER_FAILURES", "3", low=1, high=1000),
        breaker_seconds=reader.number("TOKEN_CACHE_BREAKER_SECONDS", "5", low=0.1, high=3600),
    )


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn.conf.py takes from the environment."""

    bind: str
    workers: int
    threads: int
    log_level: str
    log_format: str = "json"
    metrics_bind: tuple[str, int] | None = None  # the /metrics server's host and port, or none


def load_server_settings(env: Mapping[str, str]) -> ServerSettings:
    """Build gunicorn's settings from environment variables, or raise ConfigError."""
    reader = _Reader(env)
    return ServerSettings(
        bind=reader.bind("BIND", "127.0.0.1:8000"),
        workers=reader.integer("WEB_CONCURRENCY", "2", low=1, high=256),
        threads=reader.integer("THREADS", "4", low=1, high=1024),
        log_level=reader.log_level("LOG_LEVEL"),
        log_format=reader.log_format("LOG_FORMAT"),
        metrics_bind=reader.address("METRICS_BIND"),
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
                raise ConfigError(
                    f"{name} must list origins such as https://app.example.com "
                    "(scheme, host, optional port; no path), or be * alone"
                )
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
            raise ConfigError(
                f"{name} must be a number from {low:g} to {high:g} "
                "(digits and an optional decimal point)"
            ) from None

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

    def optional_secret(self, name: str) -> str | None:
        value = self._env.get(name, "")
        return value if value.strip() else None

    def is_set(self, name: str) -> bool:
        return bool(self._env.get(name, "").strip())

    def text(self, name: str) -> str:
        """A required value, such as a path, with surrounding whitespace removed."""
        return self._get(name)

    def boolean(self, name: str) -> bool:
        """``true`` or ``false`` (also ``1`` / ``0``, any case); unset is false."""
        value = self._env.get(name, "").strip().lower()
        if value in ("", "false", "0"):
            return False
        if value in ("true", "1"):
            return True
        raise ConfigError(f"{name} must be true or false")

    def redis_url(self, name: str) -> RedisAddress | None:
        """``redis[s]://[[USER]:PASSWORD@]HOST:PORT[/DB]``; the message never repeats the
        value, which may hold a password."""
        raw = self._env.get(name, "").strip()
        if not raw:
            return None
        try:
            return _redis_address(raw)
        except Malformed:
            raise ConfigError(
                f"{name} must be redis://HOST:PORT/DB, or rediss://HOST:PORT/DB "
                "for TLS, optionally with [USER]:PASSWORD@ before the host and "
                "no query"
            ) from None

    def fernet_keys(self, name: str, *, previous: str) -> tuple[str, ...]:
        """The key named ``name`` (required), then the older key named ``previous`` if set."""
        named = [(key_name, self._env.get(key_name, "").strip()) for key_name in (name, previous)]
        if not named[0][1]:
            raise ConfigError(
                f"{name} is required when TOKEN_CACHE_URL is set; make one with: {MAKE_FERNET_KEY}"
            )
        for key_name, key in named:
            if key and not FERNET_KEY.fullmatch(key):
                raise ConfigError(
                    f"{key_name} must be 32 random bytes in URL-safe base64 "
                    f"(44 characters); make one with: {MAKE_FERNET_KEY}"
                )
        return tuple(key for _, key in named if key)

    def log_format(self, name: str) -> str:
        value = self._get(name, "json").lower()
        if value not in LOG_FORMATS:
            raise ConfigError(f"{name} must be one of {', '.join(LOG_FORMATS)}")
        return value

    def address(self, name: str) -> tuple[str, int] | None:
        """An optional TCP ``HOST:PORT`` (IPv6 hosts in brackets), as (host, port)."""
        value = self._env.get(name, "").strip()
        if not value:
            return None
        host, _, port = value.rpartition(":")
        try:
            if not BIND_HOST.fullmatch(host):
                raise Malformed(host)
            return host.strip("[]"), decimal_integer(port, low=1, high=65535, max_length=5)
        except Malformed:
            raise ConfigError(f"{name} must be HOST:PORT, such as 127.0.0.1:9100") from None

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
            raise ConfigError(
                f"{name} must be HOST:PORT (such as 127.0.0.1:8000 or [::1]:8000) or unix:PATH"
            ) from None
        return value


def _redis_address(raw: str) -> RedisAddress:
    scheme, separator, rest = raw.partition("://")
    if scheme not in ("redis", "rediss") or not separator or not rest.isascii():
        raise Malformed("expected redis:// or rediss://")
    if any(char in rest for char in "?#") or any(ord(char) <= 0x20 for char in rest):
        raise Malformed("no query, fragment or spaces")
    authority, slash, db = rest.partition("/")
    userinfo, _, host_port = authority.rpartition("@")
    host, colon, port = host_port.rpartition(":")
    if not colon or not BIND_HOST.fullmatch(host):
        raise Malformed("expected HOST:PORT")
    username, _, password = userinfo.partition(":")
    return RedisAddress(
        tls=scheme == "rediss",
        host=host.strip("[]"),
        port=decimal_integer(port, low=1, high=65535, max_length=5),
        db=decimal_integer(db, low=0, high=65535, max_length=5) if slash else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )
