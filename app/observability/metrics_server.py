"""The ``/metrics`` endpoint, served by gunicorn's master: every worker's samples, merged.

gunicorn's workers are separate processes, so prometheus_client runs in multiprocess mode:
each worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR and the master merges
them for each scrape, on METRICS_BIND, a socket apart from the API's. gunicorn.conf.py calls
``MultiprocessMetrics`` from its hooks:

- ``on_starting``: ``prepare()``, before any worker is forked: the directory is set (a new
  temporary one when PROMETHEUS_MULTIPROC_DIR is not set) and emptied of a previous run's files;
- ``when_ready``: ``serve(host, port)`` when METRICS_BIND is set;
- ``child_exit``: ``worker_exited(pid)`` drops the live gauges of a worker that is gone;
- ``on_exit``: ``cleanup()`` removes the directory if ``prepare`` created it.

prometheus_client is imported inside these methods: it chooses between files and memory when
first imported, and gunicorn's master imports the app's modules before ``prepare`` runs.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class MultiprocessMetrics:
    """prometheus_client's multiprocess mode for one gunicorn master."""

    def __init__(self, environ: MutableMapping[str, str]) -> None:
        self._environ = environ
        self._created: Path | None = None

    def prepare(self) -> Path:
        """Set up the directory the workers write to (they inherit ``environ``); samples of a
        previous run are deleted, or they would be counted again."""
        configured = self._environ.get(MULTIPROC_DIR_VARIABLE, "").strip()
        if configured:
            directory = Path(configured)
            directory.mkdir(parents=True, exist_ok=True)
        else:
            directory = self._created = Path(tempfile.mkdtemp(prefix="api-metrics-"))
            self._environ[MULTIPROC_DIR_VARIABLE] = str(directory)
        for stale in directory.glob("*.db"):
            stale.unlink()
        return directory

    def serve(self, host: str, port: int) -> None:
        """Serve the merged samples over HTTP on ``host:port`` from a thread of this process."""
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=host, registry=registry)

    def worker_exited(self, pid: int) -> None:
        """Forget the live gauges of worker ``pid`` (its counters still count)."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
            pid, self._environ.get(MULTIPROC_DIR_VARIABLE)
        )

    def cleanup(self) -> None:
        """Remove the directory if ``prepare`` created it."""
        if self._created is not None:
            shutil.rmtree(self._created, ignore_errors=True)
            self._created = None
