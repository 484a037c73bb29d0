"""WSGI entry point: ``gunicorn wsgi:app``."""

import sys

from app import create_app
from app.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One clear line instead of a traceback: the message names the variable.
    sys.exit(f"configuration error: {exc}")
