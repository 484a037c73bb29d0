"""Command line: `python -m emulator serve | token | users | client-certificate |
workload-identity-token | managed-identity`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from emulator.directory import (
    API_APP_ID_URI,
    API_CLIENT_ID,
    BEHAVIOUR_DESCRIPTIONS,
    DAEMON_CLIENT_ID,
    DAEMON_CLIENT_SECRET,
    SPA_CLIENT_ID,
    TENANT_ID,
    TENANTS,
    USERS,
)
from emulator.entra.key_credentials import TRUSTS
from emulator.entra.redirect_uris import DEFAULT_SPA_REDIRECT_URIS
from emulator.server import DEFAULT_STATE_DIR, Emulator
from emulator.state_dir import write_atomically

DEFAULT_PORT = 8443
DEFAULT_URL = f"https://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_CA = DEFAULT_STATE_DIR / "ca-bundle.pem"

DESCRIPTION = """\
A local Entra ID + Microsoft Graph + Azure Resource Manager emulator (HTTPS on loopback).

  serve   run it:      python -m emulator serve --port 8443
  token   get a token: python -m emulator token --user alice   (prints only the token)
  users   list the built-in users and how each behaves in the OBO flow
  client-certificate, workload-identity-token, managed-identity
          the API's other credentials: each prints the API's settings for it

Tenant {tenant}; API client {api} (scope {uri}/access_as_user);
SPA client {spa}. Any non-empty password signs a user in; the sign-in page
(/{{tenant}}/oauth2/v2.0/authorize) lists the users to pick from.
"""


class CliError(Exception):
    """A failure worth one line on stderr and exit status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator",
        description=DESCRIPTION.format(
            tenant=TENANT_ID, api=API_CLIENT_ID, uri=API_APP_ID_URI, spa=SPA_CLIENT_ID
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the emulator until SIGINT/SIGTERM")
    serve.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    serve.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the CA, certificates and signing keys live (default {DEFAULT_STATE_DIR})",
    )
    serve.add_argument(
        "--spa-redirect-uri",
        action="append",
        default=[],
        metavar="URL",
        dest="spa_redirect_uris",
        help="register a redirect URI (type spa) for the frontend client, beside "
        f"{' and '.join(DEFAULT_SPA_REDIRECT_URIS)}; repeatable",
    )
    serve.add_argument(
        "--server-name",
        action="append",
        default=[],
        metavar="HOST",
        dest="server_names",
        help="a host name to answer as too, e.g. login.microsoftonline.us to pose "
        "as a national cloud (reached through a proxy); repeatable",
    )
    serve.add_argument("--quiet", action="store_true", help="do not log each request")

    token = commands.add_parser(
        "token", help="print a v2 access token for the API from a running emulator"
    )
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="username or UPN, e.g. alice or alice@contoso.test")
    who.add_argument(
        "--app",
        action="store_true",
        help="an app-only token (client credentials, the daemon client)",
    )
    token.add_argument(
        "--mfa",
        action="store_true",
        help="with --user: a token from an MFA sign-in (the emulator records it, "
        "so OBO for users under an MFA policy succeeds)",
    )
    token.add_argument(
        "--scope",
        default="access_as_user",
        help="API scope (default access_as_user; a full URI is used as given; ignored with --app)",
    )
    token.add_argument(
        "--url", default=DEFAULT_URL, help=f"emulator base URL (default {DEFAULT_URL})"
    )
    token.add_argument(
        "--ca", type=Path, default=DEFAULT_CA, help=f"CA bundle to trust (default {DEFAULT_CA})"
    )
    token.add_argument("--tenant", default=TENANT_ID, help="tenant GUID or domain")
    token.add_argument(
        "--password",
        default="emulator",
        help="the user's password: any non-empty string (default emulator)",
    )

    commands.add_parser("users", help="list the built-in directory")

    certificate = commands.add_parser(
        "client-certificate",
        help="write a new client certificate for the API (PEM: key and "
        "certificate) and print the API's settings for it",
    )
    certificate.add_argument("--out", type=Path, required=True, help="the PEM file to write")
    certificate.add_argument(
        "--trust",
        choices=[t.replace("_", "-") for t in TRUSTS],
        default="thumbprint",
        help="thumbprint: registered for the API (default); subject-issuer: "
        "issued by the emulator's client CA with the subject the API "
        "trusts; none: a certificate Entra refuses",
    )
    certificate.add_argument("--password", help="encrypt the private key with this password")
    token_file = commands.add_parser(
        "workload-identity-token",
        help="write an AKS workload identity token file and print the API's setting for it",
    )
    token_file.add_argument("--out", type=Path, required=True, help="the token file to write")
    token_file.add_argument(
        "--lifetime",
        type=int,
        default=3600,
        help="seconds until it expires (default 3600; negative: expired)",
    )
    commands.add_parser(
        "managed-identity",
        help="print the managed identity endpoint's "
        "settings (IDENTITY_ENDPOINT, IDENTITY_HEADER) and the identity's "
        "client id",
    )
    for command in (certificate, token_file, commands.choices["managed-identity"]):
        _add_connection_options(command)
    return parser


def _add_connection_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--url", default=DEFAULT_URL, help=f"emulator base URL (default {DEFAULT_URL})"
    )
    command.add_argument(
        "--ca", type=Path, default=DEFAULT_CA, help=f"CA bundle to trust (default {DEFAULT_CA})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "token" and args.mfa and args.app:
        parser.error("--mfa applies to --user tokens only")
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "token":
            print(fetch_token(args))
            return 0
        if args.command in CREDENTIAL_COMMANDS:
            for name, value in CREDENTIAL_COMMANDS[args.command](args).items():
                print(f"{name}={value}")
            return 0
        print_users()
        return 0
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def serve(args: argparse.Namespace) -> int:
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        emulator = Emulator(
            state_dir=args.state_dir,
            host=args.host,
            port=args.port,
            spa_redirect_uris=args.spa_redirect_uris,
            server_names=args.server_names,
        ).start()
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    print(f"emulator listening on {emulator.base_url}", flush=True)
    print(
        f"trust its CA with: export REQUESTS_CA_BUNDLE={emulator.ca_bundle.resolve()}", flush=True
    )
    print(
        f"authority {emulator.authority}  graph {emulator.graph_url}  arm {emulator.arm_url}",
        flush=True,
    )
    print(
        f"managed identity endpoint {emulator.managed_identity_endpoint} (its header and the "
        "identity: python -m emulator managed-identity)",
        flush=True,
    )
    stop.wait()
    emulator.stop()
    return 0


def fetch_token(args: argparse.Namespace) -> str:
    """Get a token over HTTPS as a client would: discover the token endpoint, then make the
    same form POST MSAL makes. (MSAL's own username/password flow first calls user-realm
    discovery on port 443 of the authority host, ignoring its port, so it cannot reach an
    emulator on another port.) A password sign-in cannot pass MFA, so --mfa asks the
    emulator's control plane for a token recorded as issued after an MFA sign-in."""
    if not args.ca.is_file():
        raise CliError(f"CA bundle {args.ca} not found; pass --ca <state-dir>/ca-bundle.pem")
    base = args.url.rstrip("/")
    with requests.Session() as session:
        # Ignore REQUESTS_CA_BUNDLE and proxy variables: they would override --ca, and a
        # proxy has no business seeing loopback traffic.
        session.trust_env = False
        session.verify = str(args.ca)
        try:
            if args.mfa:
                body = _request_mfa_token(session, base, args)
            else:
                body = _request_token(session, f"{base}/{args.tenant}", _token_form(args))
        except requests.exceptions.SSLError as exc:
            raise CliError(
                f"TLS verification of {args.url} failed; is --ca the emulator's ca-bundle.pem?"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise CliError(
                f"cannot reach the emulator at {args.url}; is `python -m emulator serve` running?"
            ) from exc
    if "access_token" not in body:
        description = str(body.get("error_description") or body.get("message", "")).splitlines()
        raise CliError(f"{body.get('error')}: {description[0] if description else ''}")
    return str(body["access_token"])


def _request_mfa_token(
    session: requests.Session, base: str, args: argparse.Namespace
) -> dict[str, Any]:
    scope = args.scope.rpartition("/")[2] if args.scope.startswith(API_APP_ID_URI) else args.scope
    response = session.post(
        f"{base}/_emulator/tokens",
        timeout=10,
        json={"user": args.user, "scope": scope, "mfa": True},
    )
    try:
        return dict(response.json())
    except ValueError as exc:
        raise CliError(
            f"the control plane answered HTTP {response.status_code} without JSON"
        ) from exc


def _token_form(args: argparse.Namespace) -> dict[str, str]:
    if args.app:
        return {
            "grant_type": "client_credentials",
            "client_id": DAEMON_CLIENT_ID,
            "client_secret": DAEMON_CLIENT_SECRET,
            "scope": f"{API_APP_ID_URI}/.default",
        }
    scope = args.scope if "/" in args.scope else f"{API_APP_ID_URI}/{args.scope}"
    return {
        "grant_type": "password",
        "client_id": SPA_CLIENT_ID,
        "username": args.user,
        "password": args.password,
        "scope": f"{scope} openid profile offline_access",
        "client_info": "1",
    }


def _request_token(
    session: requests.Session, authority: str, form: dict[str, str]
) -> dict[str, Any]:
    discovery = session.get(f"{authority}/v2.0/.well-known/openid-configuration", timeout=10)
    if discovery.status_code != 200:
        raise CliError(_describe(discovery))
    response = session.post(discovery.json()["token_endpoint"], data=form, timeout=10)
    try:
        return dict(response.json())
    except ValueError as exc:
        raise CliError(
            f"the token endpoint answered HTTP {response.status_code} without JSON"
        ) from exc


def write_client_certificate(args: argparse.Namespace) -> dict[str, str]:
    """Ask the emulator for a new certificate, write it to --out (mode 0600)."""
    trust = args.trust.replace("-", "_")
    body = _control_plane(
        args, "POST", "/_emulator/client-certificates", {"trust": trust, "password": args.password}
    )
    _write_private(args.out, str(body["pem"]))
    print(
        f"{body['subject']}: SHA-256 thumbprint {body['thumbprint_sha256']}, SHA-1 "
        f"{body['thumbprint_sha1']}",
        file=sys.stderr,
    )
    env = {"AZURE_CLIENT_CERTIFICATE_PATH": str(args.out.resolve())}
    if args.password:
        env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = args.password
    if trust == "subject_issuer":
        env["AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"] = "true"
    return env


def write_workload_identity_token(args: argparse.Namespace) -> dict[str, str]:
    """Ask the emulator for a service account token, write it to --out as the kubelet does."""
    body = _control_plane(
        args, "POST", "/_emulator/workload-identity/tokens", {"lifetime": args.lifetime}
    )
    _write_private(args.out, str(body["token"]))
    return {"AZURE_FEDERATED_TOKEN_FILE": str(args.out.resolve())}


def managed_identity_settings(args: argparse.Namespace) -> dict[str, str]:
    body = _control_plane(args, "GET", "/_emulator/managed-identity", None)
    return {
        "IDENTITY_ENDPOINT": str(body["IDENTITY_ENDPOINT"]),
        "IDENTITY_HEADER": str(body["IDENTITY_HEADER"]),
        "AZURE_MANAGED_IDENTITY_CLIENT_ID": str(body["client_id"]),
    }


CREDENTIAL_COMMANDS = {
    "client-certificate": write_client_certificate,
    "workload-identity-token": write_workload_identity_token,
    "managed-identity": managed_identity_settings,
}


def _control_plane(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None
) -> dict[str, Any]:
    if not args.ca.is_file():
        raise CliError(f"CA bundle {args.ca} not found; pass --ca <state-dir>/ca-bundle.pem")
    with requests.Session() as session:
        session.trust_env = False  # as in fetch_token: --ca wins, no proxy for loopback
        session.verify = str(args.ca)
        try:
            response = session.request(method, args.url.rstrip("/") + path, json=body, timeout=30)
        except requests.exceptions.SSLError as exc:
            raise CliError(
                f"TLS verification of {args.url} failed; is --ca the emulator's ca-bundle.pem?"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise CliError(
                f"cannot reach the emulator at {args.url}; is `python -m emulator serve` running?"
            ) from exc
    try:
        answer = dict(response.json())
    except ValueError as exc:
        raise CliError(
            f"the control plane answered HTTP {response.status_code} without JSON"
        ) from exc
    if response.status_code >= 400:
        raise CliError(str(answer.get("message", f"HTTP {response.status_code}")))
    return answer


def _write_private(path: Path, text: str) -> None:
    try:
        write_atomically(path, text.encode("ascii"), mode=0o600)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def _describe(response: requests.Response) -> str:
    try:
        description = str(response.json().get("error_description", "")).splitlines()[0]
    except (ValueError, IndexError, AttributeError):
        description = f"HTTP {response.status_code}"
    return f"OpenID discovery failed: {description}"


def print_users() -> None:
    rows = [("USERNAME", "UPN", "NAME", "JOB TITLE", "TENANT", "OBO BEHAVIOUR")]
    for user in USERS.values():
        rows.append(
            (
                user.username,
                user.upn,
                user.display_name,
                user.job_title,
                TENANTS[user.tenant_id].domain,
                BEHAVIOUR_DESCRIPTIONS[user.behaviour],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
