"""What every part of one emulator shares: its state directory, TLS files and signing keys."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import cast

from flask import current_app

from emulator.certificates import TlsFiles, ensure_tls_files
from emulator.signing import KEYS_FILE, KeyRing
from emulator.state_dir import exclusive

EXTENSION_KEY = "emulator"


class EmulatorState:
    """`server_names`: host names the emulator also answers as (posing as a national cloud);
    its TLS certificate covers them, and Graph and ARM accept tokens issued under them."""

    def __init__(self, state_dir: Path, server_names: Iterable[str] = ()) -> None:
        self.state_dir = state_dir
        self.server_names = tuple(server_names)
        with exclusive(state_dir):
            self.tls: TlsFiles = ensure_tls_files(state_dir, self.server_names)
            self.keys = KeyRing(state_dir / KEYS_FILE)
        # Set when the server stops, so that waits (injected delays) end early.
        self.stopping = threading.Event()


def current_state() -> EmulatorState:
    return cast(EmulatorState, current_app.extensions[EXTENSION_KEY])
