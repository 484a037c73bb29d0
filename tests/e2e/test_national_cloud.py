"""The API configured for a national cloud, with the values of the README's table, against the
emulator posing as that cloud: its certificate covers the cloud's host names, its documents and
tokens name the host they were asked at, and a proxy on loopback tunnels those names to it
(DNS cannot be changed here; the API reaches them through HTTPS_PROXY, as it would a
corporate proxy)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import msal
import pytest
import requests

from app.config import CERTIFICATE_OPTIONS, CREDENTIAL_VARIABLES
from emulator import API_CLIENT_ID, API_CLIENT_SECRET, TENANT_ID, Emulator
from scripts.stack import ApiServer, api_environment
from tests.e2e.leaks import Traffic
from tests.e2e.server_output import ServerOutput
from tests.support.connect_proxy import ConnectProxy

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Cloud:
    """A cloud's settings for the API, as the README's table lists them."""

    authority_host: str
    graph_url: str
    graph_scopes: str
    arm_url: str
    arm_scopes: str

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(
            url.removeprefix("https://").split("/")[0]
            for url in (self.authority_host, self.graph_url, self.arm_url)
        )

    def settings(self) -> dict[str, str]:
        return {
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "GRAPH_URL": self.graph_url,
            "GRAPH_SCOPES": self.graph_scopes,
            "ARM_URL": self.arm_url,
            "ARM_SCOPES": self.arm_scopes,
        }


CLOUDS = {
    "US Government": Cloud(
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us/v1.0",
        "https://graph.microsoft.us/.default",
        "https://management.usgovcloudapi.net",
        "https://management.usgovcloudapi.net/user_impersonation",
    ),
    "China (21Vianet)": Cloud(
        "https://login.chinacloudapi.cn",
        "https://microsoftgraph.chinacloudapi.cn/v1.0",
        "https://microsoftgraph.chinacloudapi.cn/.default",
        "https://management.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/user_impersonation",
    ),
}


@dataclass
class NationalStack:
    cloud: Cloud
    emulator: Emulator
    proxy: ConnectProxy
    api: ApiServer
    traffic: Traffic

    @property
    def issuer(self) -> str:
        return f"{self.cloud.authority_host}/{TENANT_ID}/v2.0"

    def user_token(self, user: str = "alice") -> str:
        """A token the SPA would have got from this cloud's Entra."""
        token = self.emulator.issue_user_token(user, iss=self.issuer)
        self.traffic.tokens.append(token)
        return token

    def get(self, path: str) -> requests.Response:
        return requests.get(
            self.api.url + path,
            timeout=30,
            headers={"Authorization": f"Bearer {self.user_token()}"},
        )

    def session(self) -> requests.Session:
        """A client of the cloud, as the API is: through the proxy, trusting the emulator."""
        http = requests.Session()
        http.trust_env = False
        http.verify = str(self.emulator.ca_bundle)
        http.proxies = {"https": self.proxy.url}
        return http


@pytest.fixture(params=list(CLOUDS))
def national(
    request: pytest.FixtureRequest, tmp_path: Path, traffic: Traffic
) -> Iterator[NationalStack]:
    cloud = CLOUDS[request.param]
    with (
        Emulator(state_dir=tmp_path / "state", server_names=cloud.hosts) as emu,
        ConnectProxy({host: emu.port for host in cloud.hosts}) as proxy,
    ):
        unset = {name: "" for name in (*CREDENTIAL_VARIABLES, *CERTIFICATE_OPTIONS)}
        env = {
            **api_environment(emu.base_url, emu.ca_bundle),
            **unset,
            "AZURE_CLIENT_SECRET": API_CLIENT_SECRET,
            **cloud.settings(),
            "HTTPS_PROXY": proxy.url,
            "https_proxy": proxy.url,
            "NO_PROXY": "",
            "no_proxy": "",
        }
        output = ServerOutput()
        api = ApiServer(env, log=output, keep_alive=False)
        try:
            api.start()
            traffic.apis.append((api.url, output))
            yield NationalStack(cloud, emu, proxy, api, traffic)
        finally:
            api.stop()


def test_the_whole_flow_works_in_the_national_cloud(national: NationalStack) -> None:
    me = national.get("/api/me")
    subscriptions = national.get("/api/subscriptions")

    assert me.status_code == 200, me.text
    assert me.json()["userPrincipalName"] == "alice@contoso.test"
    assert subscriptions.status_code == 200, subscriptions.text
    assert len(subscriptions.json()["value"]) == 5
    # Every call left for the national cloud's hosts (none for the emulator's own address).
    assert set(national.proxy.hosts) == set(national.cloud.hosts)
    assert national.emulator.counters()["token.on_behalf_of"] == 2


def test_the_clouds_entra_issues_tokens_under_its_own_host(national: NationalStack) -> None:
    with national.session() as http:
        document = http.get(
            f"{national.cloud.authority_host}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
        ).json()
        app = msal.ConfidentialClientApplication(
            API_CLIENT_ID,
            client_credential=API_CLIENT_SECRET,
            http_client=http,
            authority=f"{national.cloud.authority_host}/{TENANT_ID}",
            instance_discovery=False,
        )
        graph = app.acquire_token_on_behalf_of(national.user_token(), [national.cloud.graph_scopes])
        arm = app.acquire_token_on_behalf_of(
            national.user_token("bob"), [national.cloud.arm_scopes]
        )

    assert document["issuer"] == national.issuer
    assert document["token_endpoint"].startswith(f"{national.cloud.authority_host}/")
    for result in (graph, arm):
        assert "access_token" in result, result
        assert (
            jwt.decode(result["access_token"], options={"verify_signature": False})["iss"]
            == national.issuer
        )
    assert jwt.decode(arm["access_token"], options={"verify_signature": False})["aud"] == (
        national.cloud.arm_url
    )


def test_a_token_from_the_public_cloud_is_refused(national: NationalStack) -> None:
    public = national.emulator.issue_user_token(
        "alice", iss=f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
    )
    national.traffic.tokens.append(public)
    response = requests.get(
        national.api.url + "/api/me", timeout=30, headers={"Authorization": f"Bearer {public}"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert national.emulator.counters()["token.on_behalf_of"] == 0
