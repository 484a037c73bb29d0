"""`Emulator`: run the HTTPS server in a thread, mint tokens directly, drive the control plane."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from emulator.app import create_app
from emulator.control import checked_token_lifetime
from emulator.directory import (
    API_CLIENT_ID,
    CLIENTS,
    DAEMON_CLIENT_ID,
    SPA_CLIENT_ID,
    TENANT_ID,
    find_resource,
    find_user,
)
from emulator.faults import parse_fault
from emulator.http_server import TlsThreadedServer
from emulator.state import EmulatorState
from emulator.tokens import app_access_claims, issuer_url, sign, user_access_claims

DEFAULT_STATE_DIR = Path(".emulator")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Emulator:
    """A running emulator: `with Emulator(state_dir=tmp) as emu: ... emu.base_url ...`."""

    def __init__(
        self, state_dir: Path | str = DEFAULT_STATE_DIR, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not is_loopback(host):
            raise ValueError(f"{host} is not a loopback address; the emulator mints tokens for "
                             "anyone who can reach it, so it only listens on loopback")
        self.state_dir = Path(state_dir)
        self.host = host
        self._requested_port = port
        self._state: EmulatorState | None = None
        self._server: TlsThreadedServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving in a background thread; returns once the socket is listening."""
        if self._server is not None:
            return self
        state = EmulatorState(self.state_dir)
        server = TlsThreadedServer(
            self.host, self._requested_port, create_app(state), state.tls.server_context())
        self._state, self._server = state, server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1},
            name="emulator-server", daemon=True)
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
        return self._running_server().server_address[1]

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
        return self._running_state().tls.ca_bundle

    # -- tokens without HTTP ---------------------------------------------------------------

    def issue_user_token(
        self,
        user: str = "alice",
        scope: str = "access_as_user",
        audience: str | None = None,
        lifetime: int = 3600,
        **claim_overrides: Any,
    ) -> str:
        """A user's v2 access token (default: for the API, azp = the SPA), signed with the
        current key. Overrides replace claims; an override of None removes the claim."""
        found = find_user(user)
        if found is None:
            raise ValueError(f"unknown user {user!r}")
        aud = audience or API_CLIENT_ID
        claims = user_access_claims(
            issuer=issuer_url(self.base_url, found.tenant_id), user=found,
            client=CLIENTS[SPA_CLIENT_ID], audience=aud, scopes=scope.split(),
            lifetime=lifetime, roles=found.app_roles if aud == API_CLIENT_ID else ())
        return self._sign(claims, claim_overrides)

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
            issuer=issuer_url(self.base_url, tenant_id), tenant_id=tenant_id, client=client,
            audience=aud, roles=roles, lifetime=lifetime)
        return self._sign(claims, claim_overrides)

    def _sign(self, claims: dict[str, Any], overrides: dict[str, Any]) -> str:
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return sign(claims, self._running_state().keys.signer)

    # -- control plane (same as /_emulator/...) --------------------------------------------

    def counters(self) -> dict[str, int]:
        return self._running_state().counters.snapshot()

    def reset_counters(self) -> None:
        self._running_state().counters.reset()

    def add_fault(self, target: str, mode: str, count: int | None = None,
                  **params: Any) -> dict[str, Any]:
        """Inject a fault (see POST /_emulator/faults); raises ValueError if it is invalid."""
        fault = parse_fault({"target": target, "mode": mode, "count": count, **params})
        return self._running_state().faults.add(fault).to_dict()

    def faults(self) -> list[dict[str, Any]]:
        return self._running_state().faults.active()

    def clear_faults(self) -> None:
        self._running_state().faults.clear()

    def rotate_keys(self, drop_old: bool = False) -> str:
        """Make a new key the signer; returns its kid."""
        return self._running_state().keys.rotate(drop_old=drop_old).kid

    def signing_kids(self) -> list[str]:
        return [k.kid for k in self._running_state().keys.published()]

    def set_token_lifetime(self, seconds: int) -> None:
        """Lifetime of tokens the token endpoint issues from now on (default 3599)."""
        self._running_state().token_lifetime = checked_token_lifetime(seconds)

    def _running_state(self) -> EmulatorState:
        if self._state is None or self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._state

    def _running_server(self) -> TlsThreadedServer:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._server
