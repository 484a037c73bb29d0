"""Everything one emulator instance keeps: keys, certificates, counters, faults, settings."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

from flask import current_app

from emulator.certs import TlsFiles, ensure_tls_files
from emulator.counters import Counters
from emulator.faults import FaultBook
from emulator.keys import KEYS_FILE, KeyRing
from emulator.refresh import REFRESH_KEY_FILE, RefreshTokenCodec
from emulator.tokens import DEFAULT_LIFETIME

EXTENSION_KEY = "emulator"
LOCK_FILE = ".lock"


class EmulatorState:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(state_dir / LOCK_FILE):
            self.tls: TlsFiles = ensure_tls_files(state_dir)
            self.keys = KeyRing(state_dir / KEYS_FILE)
            self.refresh_tokens = RefreshTokenCodec(state_dir / REFRESH_KEY_FILE)
        self.counters = Counters()
        self.faults = FaultBook()
        # Lifetime of tokens issued by the token endpoint; tests shorten it to exercise
        # MSAL's refresh (MSAL treats tokens with under 5 minutes left as expired).
        self.token_lifetime = DEFAULT_LIFETIME
        # Set when the server stops, so that injected delays end early.
        self.stopping = threading.Event()


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`, so that emulators started together on an empty state
    dir do not each create (and overwrite) a different CA and signing keys."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_state() -> EmulatorState:
    return cast(EmulatorState, current_app.extensions[EXTENSION_KEY])
