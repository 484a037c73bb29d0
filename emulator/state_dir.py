"""The state directory's files: written atomically, created under a lock.

Emulators started together on an empty state directory must not each create (and overwrite)
a different CA, signing keys or refresh-token key, and a reader must never see half a file.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"


def write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    """Write `data` to a temporary sibling, then rename it over `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


@contextmanager
def exclusive(state_dir: Path) -> Iterator[None]:
    """Hold the state directory's lock while files in it are created or loaded."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
