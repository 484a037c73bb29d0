"""The frontend's registered redirect URIs, of Entra's `spa` type, which can be added while
the emulator runs (a dev server or a browser test registers its own)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

DEFAULT_SPA_REDIRECT_URIS = ("http://localhost:3000/", "http://localhost:3000")
# Entra limits a redirect URI to 256 characters; plain http is allowed for localhost only.
MAX_REDIRECT_URI_LENGTH = 256
HTTP_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class InvalidRedirectUri(ValueError):
    """A redirect URI that Entra would not let an app register."""


def checked_redirect_uri(uri: object) -> str:
    """`uri` if Entra would accept it as a SPA redirect URI; InvalidRedirectUri otherwise."""
    if not isinstance(uri, str) or not uri:
        raise InvalidRedirectUri("a redirect URI must be a non-empty string")
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        raise InvalidRedirectUri(f"a redirect URI has at most {MAX_REDIRECT_URI_LENGTH} characters")
    if not uri.isascii() or any(c <= " " or c == "\x7f" for c in uri):
        raise InvalidRedirectUri("a redirect URI has no spaces, control or non-ASCII characters")
    try:
        parts = urlsplit(uri)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise InvalidRedirectUri(f"{uri!r} is not a valid URL") from exc
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise InvalidRedirectUri(f"{uri!r} must be an absolute http(s) URL without credentials")
    if parts.scheme == "http" and host not in HTTP_HOSTS:
        raise InvalidRedirectUri(f"{uri!r}: plain http is allowed for localhost only")
    if parts.fragment or uri.endswith("#"):
        raise InvalidRedirectUri(f"{uri!r}: a redirect URI has no fragment")
    return uri


class RedirectUris:
    """The registered URIs, compared exactly as Entra compares them."""

    def __init__(self, uris: Iterable[str] = DEFAULT_SPA_REDIRECT_URIS) -> None:
        self._lock = threading.Lock()
        self._uris: list[str] = []
        self.add(*uris)

    def add(self, *uris: str) -> None:
        checked = [checked_redirect_uri(u) for u in uris]
        with self._lock:
            self._uris += [u for u in dict.fromkeys(checked) if u not in self._uris]

    def __contains__(self, uri: object) -> bool:
        with self._lock:
            return uri in self._uris

    def all(self) -> list[str]:
        with self._lock:
            return list(self._uris)
