"""`Emulator`: compose the services, serve them over HTTPS in a thread, mint tokens directly,
drive the control plane."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from flask import Flask

from emulator import arm, control, entra, graph, managed_identity, workload_identity
from emulator.control import ControlState, control_of
from emulator.control.faults import parse_fault
from emulator.directory import (
    API_CLIENT_ID,
    CLIENTS,
    DAEMON_CLIENT_ID,
    MANAGED_IDENTITY_CLIENT_ID,
    TENANT_ID,
    TOKEN_EXCHANGE_AUDIENCE,
    WORKLOAD_IDENTITY_ISSUER,
    WORKLOAD_IDENTITY_SUBJECT,
    find_resource,
    find_user,
)
from emulator.entra.issuance import mint_user_token
from emulator.entra.key_credentials import ClientCertificate, Trust
from emulator.entra.runtime import EntraRuntime, checked_token_lifetime
from emulator.entra.token_claims import app_access_claims, issuer_url
from emulator.https_server import TlsThreadedServer
from emulator.managed_identity import ManagedIdentityEndpoint
from emulator.managed_identity.endpoints import PATH as MANAGED_IDENTITY_PATH
from emulator.state import EXTENSION_KEY, EmulatorState
from emulator.state_dir import write_atomically
from emulator.workload_identity import ServiceAccountIssuer

DEFAULT_STATE_DIR = Path(".emulator")
T = TypeVar("T")


def create_app(
    state: EmulatorState, entra_runtime: EntraRuntime, service_accounts: ServiceAccountIssuer
) -> Flask:
    """The emulator's WSGI application: Entra, Graph and ARM, the compute's managed identity
    endpoint and the cluster's service account tokens, plus the control plane."""
    app = Flask("emulator")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep Entra's field order
    app.extensions[EXTENSION_KEY] = state
    control.init_app(app, state.stopping)
    entra.init_app(app, entra_runtime)
    graph.init_app(app)
    arm.init_app(app)
    managed_identity.init_app(app)
    workload_identity.init_app(app, service_accounts)
    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Emulator:
    """A running emulator: `with Emulator(state_dir=tmp) as emu: ... emu.base_url ...`.

    `spa_redirect_uris` are registered for the frontend (type spa) beside the defaults,
    http://localhost:3000/ and http://localhost:3000. `server_names` are host names it also
    answers as, to pose as a national cloud (login.microsoftonline.us, graph.microsoft.us,
    ...): its certificate covers them and its Graph and ARM accept tokens issued under them.
    Clients reach it under those names through a proxy (they do not resolve to loopback).
    """

    def __init__(
        self,
        state_dir: Path | str = DEFAULT_STATE_DIR,
        host: str = "127.0.0.1",
        port: int = 0,
        spa_redirect_uris: Iterable[str] = (),
        server_names: Iterable[str] = (),
    ) -> None:
        if not is_loopback(host):
            raise ValueError(
                f"{host} is not a loopback address; the emulator mints tokens for "
                "anyone who can reach it, so it only listens on loopback"
            )
        self.state_dir = Path(state_dir)
        self.host = host
        self._requested_port = port
        self._spa_redirect_uris = list(spa_redirect_uris)
        self.server_names = tuple(server_names)
        self._state: EmulatorState | None = None
        self._entra: EntraRuntime | None = None
        self._control: ControlState | None = None
        self._service_accounts: ServiceAccountIssuer | None = None
        self._managed_identity: ManagedIdentityEndpoint | None = None
        self._server: TlsThreadedServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving in a background thread; returns once the socket is listening."""
        if self._server is not None:
            return self
        state = EmulatorState(self.state_dir, self.server_names)
        service_accounts = ServiceAccountIssuer(self.state_dir)
        entra_runtime = EntraRuntime(
            self.state_dir,
            self._spa_redirect_uris,
            trusted_issuers={WORKLOAD_IDENTITY_ISSUER: service_accounts.keys},
        )
        app = create_app(state, entra_runtime, service_accounts)
        server = TlsThreadedServer(self.host, self._requested_port, app, state.tls.server_context())
        self._state, self._entra, self._control = state, entra_runtime, control_of(app)
        self._service_accounts = service_accounts
        self._managed_identity = managed_identity.endpoint_of(app)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="emulator-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._state is None:
            return
        self._state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._running(self._server).server_address[1]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{TENANT_ID}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def arm_url(self) -> str:
        return self.base_url

    @property
    def ca_bundle(self) -> Path:
        return self._running(self._state).tls.ca_bundle

    # -- tokens without HTTP ---------------------------------------------------------------

    def issue_user_token(
        self,
        user: str = "alice",
        scope: str = "access_as_user",
        audience: str | None = None,
        lifetime: int = 3600,
        mfa: bool = False,
        **claim_overrides: Any,
    ) -> str:
        """A user's v2 access token (default: for the API, azp = the SPA), signed with the
        current key. `mfa=True`: recorded as issued after an MFA sign-in, so the OBO exchange
        of a user under an MFA policy succeeds. Overrides replace claims; None removes one."""
        found = find_user(user)
        if found is None:
            raise ValueError(f"unknown user {user!r}")
        return mint_user_token(
            self._running(self._state).keys,
            self._running(self._entra),
            self.base_url,
            found,
            scope=scope,
            audience=audience,
            lifetime=lifetime,
            mfa=mfa,
            overrides=claim_overrides,
        )

    def issue_app_token(
        self,
        roles: list[str] | None = None,
        client_id: str = DAEMON_CLIENT_ID,
        audience: str | None = None,
        lifetime: int = 3600,
        tenant_id: str = TENANT_ID,
        **claim_overrides: Any,
    ) -> str:
        """An app-only v2 access token (default: the daemon calling the API). `roles=None`
        gives the roles the client has been granted on that resource."""
        client = CLIENTS[client_id]
        aud = audience or API_CLIENT_ID
        if roles is None:
            resource = find_resource(aud)
            roles = sorted(client.app_role_grants.get(resource.app_id, ())) if resource else []
        claims = app_access_claims(
            issuer=issuer_url(self.base_url, tenant_id),
            tenant_id=tenant_id,
            client=client,
            audience=aud,
            roles=roles,
            lifetime=lifetime,
        )
        claims.update(claim_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return self._running(self._state).keys.signer.sign(claims)

    # -- control plane (same as /_emulator/...) --------------------------------------------

    def counters(self) -> dict[str, int]:
        return self._running(self._control).counters.snapshot()

    def reset_counters(self) -> None:
        self._running(self._control).counters.reset()

    def add_fault(
        self, target: str, mode: str, count: int | None = None, **params: Any
    ) -> dict[str, Any]:
        """Inject a fault (see POST /_emulator/faults); raises ValueError if it is invalid."""
        fault = parse_fault({"target": target, "mode": mode, "count": count, **params})
        return self._running(self._control).faults.add(fault).to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return self._running(self._control).faults.active()

    def clear_faults(self) -> None:
        self._running(self._control).faults.clear()

    def rotate_keys(self, drop_old: bool = False) -> str:
        """Make a new key the signer; returns its kid."""
        return self._running(self._state).keys.rotate(drop_old=drop_old).kid

    def signing_kids(self) -> list[str]:
        return [k.kid for k in self._running(self._state).keys.published()]

    def set_token_lifetime(self, seconds: int | None) -> None:
        """Lifetime of tokens the token endpoint issues from now on; None restores Entra's
        random 60 to 90 minutes."""
        self._running(self._entra).token_lifetime = checked_token_lifetime(seconds)

    @property
    def spa_redirect_uris(self) -> list[str]:
        """The frontend's registered redirect URIs (type spa)."""
        return self._running(self._entra).redirect_uris.all()

    def add_spa_redirect_uris(self, *uris: str) -> None:
        """Register more redirect URIs for the frontend; ValueError for one Entra refuses."""
        self._running(self._entra).redirect_uris.add(*uris)

    # -- the API's credentials besides its secret ------------------------------------------

    def make_client_certificate(
        self,
        path: Path | str,
        trust: Trust = "thumbprint",
        *,
        password: str | None = None,
        expired: bool = False,
    ) -> ClientCertificate:
        """Write a new client certificate for the API to `path` (PEM, mode 0600: its private
        key, encrypted with `password` if given, then the certificate and its issuing CA).

        `trust`: "thumbprint" registers it for the API; "subject_issuer" has the emulator's
        issuing CA issue it with the subject name the API trusts, unregistered (Entra accepts
        it when the chain comes with it: AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=true); "none"
        makes one Entra refuses. `.environment(path)` gives the API's settings for it."""
        made = self._running(self._entra).new_client_certificate(
            trust, password=password, expired=expired
        )
        write_atomically(Path(path), made.pem.encode("ascii"), mode=0o600)
        return made

    def write_workload_identity_token(self, path: Path | str, lifetime: int = 3600) -> str:
        """Write a service account token of the emulated AKS cluster to `path`, as the
        kubelet does for a pod with workload identity (AZURE_FEDERATED_TOKEN_FILE); a
        negative `lifetime` writes an expired one. Returns the token."""
        return self._running(self._service_accounts).write_token_file(Path(path), lifetime=lifetime)

    def issue_workload_identity_token(
        self,
        lifetime: int = 3600,
        *,
        subject: str = WORKLOAD_IDENTITY_SUBJECT,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        issuer: str = WORKLOAD_IDENTITY_ISSUER,
    ) -> str:
        """A service account token signed by the cluster's key, with the claims given (the
        API's federated identity credential trusts the defaults)."""
        return self._running(self._service_accounts).issue(
            lifetime=lifetime, subject=subject, audience=audience, issuer=issuer
        )

    @property
    def managed_identity_endpoint(self) -> str:
        """What App Service puts in IDENTITY_ENDPOINT."""
        return f"{self.base_url}{MANAGED_IDENTITY_PATH}"

    @property
    def managed_identity_header(self) -> str:
        """What App Service puts in IDENTITY_HEADER (new each time the emulator starts)."""
        return self._running(self._managed_identity).header

    def managed_identity_environment(self) -> dict[str, str]:
        """The API's settings to use the emulated managed identity as its credential: the
        endpoint App Service injects, and the identity's client id."""
        return {
            "IDENTITY_ENDPOINT": self.managed_identity_endpoint,
            "IDENTITY_HEADER": self.managed_identity_header,
            "AZURE_MANAGED_IDENTITY_CLIENT_ID": MANAGED_IDENTITY_CLIENT_ID,
        }

    def _running(self, part: T | None) -> T:
        if part is None or self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return part
