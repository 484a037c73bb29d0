"""Per-endpoint request counters, so tests and benchmarks can see how often a client called."""

from __future__ import annotations

import threading

COUNTER_NAMES = (
    "openid-configuration",
    "keys",
    "token",
    "token.on_behalf_of",
    "token.refresh_token",
    "token.client_credentials",
    "token.password",
    "userrealm",
    "graph",
    "arm",
)

GRANT_COUNTERS = {
    "urn:ietf:params:oauth:grant-type:jwt-bearer": "token.on_behalf_of",
    "refresh_token": "token.refresh_token",
    "client_credentials": "token.client_credentials",
    "password": "token.password",
}


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTER_NAMES, 0)

    def increment(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counts[name] = self._counts.get(name, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(COUNTER_NAMES, 0)
