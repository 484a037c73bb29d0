"""gunicorn settings. Any of them can be overridden on the command line.

BIND, WEB_CONCURRENCY, THREADS and LOG_LEVEL come from the environment after ``.env`` is
loaded, checked like every other setting: a malformed one stops start-up with one line.
"""

import os
import sys

from app.config import ConfigError, load_server_settings, load_settings, read_environment

try:
    _server = load_server_settings(read_environment())
except ConfigError as _exc:
    # SystemExit passes through gunicorn's config loader, which prints a traceback for errors.
    print(f"configuration error: {_exc}", file=sys.stderr)
    sys.exit(1)

bind = _server.bind
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = 30
graceful_timeout = 10
# Entra tokens with many claims can exceed gunicorn's 8 KiB default; the app refuses tokens
# over 16 KiB itself, with a JSON error instead of gunicorn's plain-text 400.
limit_request_field_size = 32768
limit_request_line = 8190

# Access log without query strings, referrers or user agents: a token pasted into a URL
# must not reach the log.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = _server.log_level.lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "app.logs.RedactingFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "access": {"format": "%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain",
                    "filters": ["redact"], "stream": "ext://sys.stderr"},
        "access": {"class": "logging.StreamHandler", "formatter": "access",
                   "filters": ["redact"], "stream": "ext://sys.stdout"},
    },
    "root": {"level": loglevel.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"],
                           "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}


def on_starting(server: object) -> None:
    """Check the API's configuration once in the master, so a bad setting stops start-up with
    one line instead of workers failing to boot over and over."""
    try:
        load_settings(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(1)
