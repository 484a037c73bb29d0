"""Bench-only WSGI apps served beside the API for comparison; not part of the product."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

TIMEOUT = (3.05, 10.0)  # the API's default connect and read timeouts


def pooled_session() -> requests.Session:
    """A session pooled like the API's outbound ones."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=20, pool_maxsize=20)
    session.mount("https://", adapter)
    return session
