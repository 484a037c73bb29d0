"""`make demo`: the whole OBO flow, offline. `make dev`: the same stack kept running.

Starts the emulator (Entra ID + Graph + ARM over HTTPS) and the API under gunicorn on
loopback, gets a token for a demo user the way a frontend would, calls every route, shows a
refused call, and stops everything.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from emulator import API_APP_ID_URI, API_SCOPE, SPA_CLIENT_ID, Emulator
from scripts.build_spa import BuildError, build
from scripts.spa_server import SpaConfig, SpaServer, port_number
from scripts.stack import ROOT, Stack, free_port

STATE_DIR = ROOT / ".emulator"
DEV_API_PORT = 8000
DEV_EMULATOR_PORT = 8443
DEV_SPA_PORT = 3000


def frontend_token(stack: Stack, user: str) -> str:
    """A user's access token for the API, from the emulator's token endpoint (as a frontend)."""
    command = [
        sys.executable,
        "-m",
        "emulator",
        "token",
        "--user",
        user,
        "--url",
        stack.emulator.base_url,
        "--ca",
        str(stack.emulator.ca_bundle),
    ]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"could not get a token for {user}: {result.stderr.strip()}")
    return result.stdout.strip()


def curl_line(stack: Stack, path: str, variable: str = "TOKEN") -> str:
    url = shlex.quote(stack.api_url + path)
    return f'curl -s -H "Authorization: Bearer ${variable}" {url}'


def show(title: str, stack: Stack, path: str, token: str) -> requests.Response:
    response = stack.get(path, token)
    print(f"\n== {title}: GET {path} -> {response.status_code}")
    print(f"   {curl_line(stack, path)}")
    return response


def print_profile(body: dict[str, Any]) -> None:
    for key in ("displayName", "jobTitle", "mail", "officeLocation", "id"):
        print(f"   {key:15} {body.get(key)}")


def print_rows(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    for row in rows:
        print("   " + "  ".join(f"{str(row.get(column, '')):38}" for column in columns))


def run_demo(stack: Stack) -> int:
    print(f"emulator (Entra ID, Graph, ARM): {stack.emulator.base_url}")
    print(f"API under gunicorn:              {stack.api_url}")
    print(
        "\n-- a frontend signs alice in and gets a token for the API "
        "(python -m emulator token --user alice)"
    )
    token = frontend_token(stack, "alice")
    failures = 0

    me = show("alice's profile from Graph, on her behalf", stack, "/api/me", token)
    failures += me.status_code != 200
    print_profile(me.json())

    users = show(
        "users from Graph ($top and $select passed on)",
        stack,
        "/api/users?$top=4&$select=displayName,mail,jobTitle",
        token,
    )
    failures += users.status_code != 200
    print_rows(users.json().get("value", []), ("displayName", "mail", "jobTitle"))

    subs = show(
        "subscriptions from ARM (all nextLink pages joined)", stack, "/api/subscriptions", token
    )
    failures += subs.status_code != 200
    print_rows(subs.json().get("value", []), ("subscriptionId", "displayName", "state"))

    stack.emulator.reset_counters()
    again = stack.get("/api/me", token)
    obo_calls = stack.emulator.counters().get("token.on_behalf_of", 0)
    print(
        f"\n== alice again: GET /api/me -> {again.status_code}; token-endpoint calls: "
        f"{obo_calls} (her Graph token came from the per-user cache)"
    )
    failures += again.status_code != 200 or obo_calls != 0

    dave = frontend_token(stack, "dave")
    refused = show(
        "dave needs MFA: Entra answers the OBO exchange with a claims challenge",
        stack,
        "/api/me",
        dave,
    )
    print(f"   WWW-Authenticate: {refused.headers.get('WWW-Authenticate')}")
    print(f"   body: {json.dumps(refused.json())[:300]}")
    failures += refused.status_code != 401
    print(
        "\nThe frontend answers such a 401 by signing the user in again with "
        "acquireTokenPopup({scopes, claims}) and retrying."
    )
    if failures:
        print(f"\n{failures} step(s) did not give the expected status", file=sys.stderr)
        return 1
    print("\ndemo complete: emulator -> API -> MSAL On-Behalf-Of -> emulator Graph/ARM")
    return 0


def certificate_credential(emulator: Emulator) -> dict[str, str]:
    """A client certificate registered with the emulator, as the API's credential."""
    path = emulator.state_dir / "api-certificate.pem"
    return emulator.make_client_certificate(path).environment(path)


def start_spa(stack: Stack, port: int) -> SpaServer | None:
    """The sample SPA on http://localhost:PORT, registered with the emulator as a redirect URI;
    None when MSAL.js is not installed (`npm ci`)."""
    try:
        build()
    except BuildError as exc:
        print(f"sample SPA not started: {exc}")
        return None
    config = SpaConfig(
        client_id=SPA_CLIENT_ID,
        authority=stack.emulator.authority,
        api_url=stack.api_url,
        api_scopes=(f"{API_APP_ID_URI}/{API_SCOPE}",),
    )
    spa = SpaServer(config, port=port).start()
    stack.emulator.add_spa_redirect_uris(spa.redirect_uri)
    return spa


def run_dev(stack: Stack, spa_port: int) -> int:
    stop = threading.Event()
    # Both set here, before "Running" is printed: a shell that starts us in the background
    # ignores SIGINT for us, and a signal must not arrive before its handler does.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    token = frontend_token(stack, "alice")
    print(f"emulator: {stack.emulator.base_url}   API: {stack.api_url}")
    print(f"trust the emulator's CA: export REQUESTS_CA_BUNDLE={stack.emulator.ca_bundle}")
    print(
        "\nA token for alice (others: python -m emulator users; then "
        "python -m emulator token --user NAME):"
    )
    print(f"\nTOKEN={token}\n")
    for path in ("/api/me", "/api/users?$top=3", "/api/subscriptions"):
        print(curl_line(stack, path))
    spa = start_spa(stack, spa_port)
    if spa is not None:
        print(
            f"\nSPA: {spa.url}  (sign in as alice; dave: MFA step-up, erin: no consent, "
            "frank: throttled)"
        )
    print(f"Swagger UI: {stack.api_url}/docs")
    print("\nRunning; Ctrl-C stops the emulator, the API and the SPA.", flush=True)
    stop.wait()
    if spa is not None:
        spa.stop()
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep serving until Ctrl-C, on fixed ports "
        f"(API {DEV_API_PORT}, emulator {DEV_EMULATOR_PORT})",
    )
    parser.add_argument(
        "--api-port",
        type=port_number,
        metavar="PORT",
        help=f"the API's port (default: {DEV_API_PORT} with --keep-running, "
        "else a free one; 0: a free one)",
    )
    parser.add_argument(
        "--emulator-port",
        type=port_number,
        metavar="PORT",
        help=f"the emulator's port (default: {DEV_EMULATOR_PORT} with "
        "--keep-running, else a free one; 0: a free one)",
    )
    parser.add_argument(
        "--spa-port",
        type=port_number,
        metavar="PORT",
        help=f"with --keep-running, the sample SPA's port on localhost (default: {DEV_SPA_PORT};"
        " 0: a free one)",
    )
    parser.add_argument(
        "--certificate",
        action="store_true",
        help="the API authenticates to Entra ID with a client certificate, not the secret",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=STATE_DIR,
        metavar="DIR",
        help="the emulator's CA, certificates and signing keys "
        f"(default: {STATE_DIR.relative_to(ROOT)}/)",
    )
    return parser.parse_args(argv)


def choose_port(given: int | None, default: int) -> int:
    """The port asked for on the command line, else ``default``; 0 means any free port."""
    return default if given is None else given


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # `make dev` keeps its ports from run to run, so that saved curl lines and Postman work.
    api_port = choose_port(args.api_port, DEV_API_PORT if args.keep_running else 0)
    emulator_port = choose_port(args.emulator_port, DEV_EMULATOR_PORT if args.keep_running else 0)
    spa_port = choose_port(args.spa_port, DEV_SPA_PORT) or free_port()
    extra_env = {}
    if args.keep_running:
        # A terminal, not a log collector; and the SPA's origin may call the API.
        extra_env = {"LOG_FORMAT": "text", "CORS_ALLOWED_ORIGINS": f"http://localhost:{spa_port}"}
    log = io.StringIO()
    with Stack(
        args.state_dir,
        log=sys.stderr if args.keep_running else log,
        api_port=api_port or None,
        emulator_port=emulator_port,
        extra_env=extra_env,
        credential=certificate_credential if args.certificate else None,
    ) as stack:
        if args.certificate:
            print("the API authenticates with a client certificate (AZURE_CLIENT_CERTIFICATE_PATH)")
        code = run_dev(stack, spa_port) if args.keep_running else run_demo(stack)
    if code:  # the stack has stopped: the log is complete
        print("\nAPI log:\n" + log.getvalue()[-4000:], file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
