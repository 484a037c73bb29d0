"""`make demo`: the whole OBO flow, offline. `make dev`: the same stack kept running.

Starts the emulator (Entra ID + Graph + ARM over HTTPS) and the API under gunicorn on
loopback, gets a token for a demo user the way a frontend would, calls every route, shows a
refused call, and stops everything.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
from typing import Any

import requests

from scripts.stack import ROOT, Stack

STATE_DIR = ROOT / ".emulator"
DEV_API_PORT = 8000
DEV_EMULATOR_PORT = 8443


def frontend_token(stack: Stack, user: str) -> str:
    """A user's access token for the API, from the emulator's token endpoint (as a frontend)."""
    command = [sys.executable, "-m", "emulator", "token", "--user", user,
               "--url", stack.emulator.base_url, "--ca", str(stack.emulator.ca_bundle)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30,
                            check=False)
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
    print("\n-- a frontend signs alice in and gets a token for the API "
          "(python -m emulator token --user alice)")
    token = frontend_token(stack, "alice")
    failures = 0

    me = show("alice's profile from Graph, on her behalf", stack, "/api/me", token)
    failures += me.status_code != 200
    print_profile(me.json())

    users = show("users from Graph ($top and $select passed on)", stack,
                 "/api/users?$top=4&$select=displayName,mail,jobTitle", token)
    failures += users.status_code != 200
    print_rows(users.json().get("value", []), ("displayName", "mail", "jobTitle"))

    subs = show("subscriptions from ARM (all nextLink pages joined)", stack,
                "/api/subscriptions", token)
    failures += subs.status_code != 200
    print_rows(subs.json().get("value", []), ("subscriptionId", "displayName", "state"))

    stack.emulator.reset_counters()
    again = stack.get("/api/me", token)
    obo_calls = stack.emulator.counters().get("token.on_behalf_of", 0)
    print(f"\n== alice again: GET /api/me -> {again.status_code}; token-endpoint calls: "
          f"{obo_calls} (her Graph token came from the per-user cache)")
    failures += again.status_code != 200 or obo_calls != 0

    dave = frontend_token(stack, "dave")
    refused = show("dave needs MFA: Entra answers the OBO exchange with a claims challenge",
                   stack, "/api/me", dave)
    print(f"   WWW-Authenticate: {refused.headers.get('WWW-Authenticate')}")
    print(f"   body: {json.dumps(refused.json())[:300]}")
    failures += refused.status_code != 401
    print("\nThe frontend answers such a 401 by signing the user in again with "
          "acquireTokenPopup({scopes, claims}) and retrying.")
    if failures:
        print(f"\n{failures} step(s) did not give the expected status", file=sys.stderr)
        return 1
    print("\ndemo complete: emulator -> API -> MSAL On-Behalf-Of -> emulator Graph/ARM")
    return 0


def run_dev(stack: Stack) -> int:
    token = frontend_token(stack, "alice")
    print(f"emulator: {stack.emulator.base_url}   API: {stack.api_url}")
    print(f"trust the emulator's CA: export REQUESTS_CA_BUNDLE={stack.emulator.ca_bundle}")
    print("\nA token for alice (others: python -m emulator users; then "
          "python -m emulator token --user NAME):")
    print(f"\nTOKEN={token}\n")
    for path in ("/api/me", "/api/users?$top=3", "/api/subscriptions"):
        print(curl_line(stack, path))
    print("\nRunning; Ctrl-C stops the emulator and the API.")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep-running", action="store_true",
                        help=f"serve on fixed ports ({DEV_API_PORT}, {DEV_EMULATOR_PORT}) "
                             "until Ctrl-C")
    args = parser.parse_args()
    ports = {"api_port": DEV_API_PORT, "emulator_port": DEV_EMULATOR_PORT} \
        if args.keep_running else {}
    with tempfile.TemporaryFile("w+") as log, Stack(STATE_DIR, log=log, **ports) as stack:
        code = run_dev(stack) if args.keep_running else run_demo(stack)
        if code:
            log.seek(0)
            print("\nAPI log:\n" + log.read()[-4000:], file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
