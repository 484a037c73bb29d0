"""What every part of one emulator shares: its state directory, TLS files and signing keys."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

from flask import current_app

from emulator.certificates import TlsFiles, ensure_tls_files
from emulator.signing import KEYS_FILE, KeyRing
from emulator.state_dir import exclusive

EXTENSION_KEY = "emulator"


class EmulatorState:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        with exclusive(state_dir):
            self.tls: TlsFiles = ensure_tls_files(state_dir)
            self.keys = KeyRing(state_dir / KEYS_FILE)
        # Set when the server stops, so that waits (injected delays) end early.
        self.stopping = threading.Event()


def current_state() -> EmulatorState:
    return cast(EmulatorState, current_app.extensions[EXTENSION_KEY])
