"""Configuration is checked once, and a bad value names its variable."""

from __future__ import annotations

import pytest

from app import create_app
from app.config import ConfigError, load_settings
from tests.unit.conftest import BASE_ENV, CLIENT_ID, TENANT_ID


def test_defaults_follow_the_public_cloud() -> None:
    settings = load_settings(BASE_ENV)
    assert settings.authority == f"https://login.microsoftonline.com/{TENANT_ID}"
    assert settings.audiences == (CLIENT_ID,)
    assert settings.api_scope == "access_as_user"
    assert settings.downstream["graph"].base_url == "https://graph.microsoft.com/v1.0"
    assert settings.downstream["graph"].scopes == ("https://graph.microsoft.com/.default",)
    assert settings.downstream["arm"].scopes == (
        "https://management.azure.com/user_impersonation",)
    assert settings.keys_cold_retry_seconds == 10
    assert "unit-test-secret-value" not in repr(settings)


def test_overrides_are_read() -> None:
    settings = load_settings({
        **BASE_ENV, "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/",
        "API_AUDIENCE": f"{CLIENT_ID}, api://{CLIENT_ID}", "API_SCOPE": "Files.Read",
        "GRAPH_URL": "https://graph.microsoft.us/v1.0",
        "GRAPH_SCOPES": "https://graph.microsoft.us/User.Read https://graph.microsoft.us/Mail.Read",
    })
    assert settings.authority_host == "https://login.microsoftonline.us"
    assert settings.audiences == (CLIENT_ID, f"api://{CLIENT_ID}")
    assert settings.api_scope == "Files.Read"
    assert settings.downstream["graph"].scopes == (
        "https://graph.microsoft.us/User.Read", "https://graph.microsoft.us/Mail.Read")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("AZURE_TENANT_ID", "", "AZURE_TENANT_ID is required"),
    ("AZURE_TENANT_ID", "not a tenant!", "AZURE_TENANT_ID must be a tenant GUID"),
    ("AZURE_CLIENT_ID", "", "AZURE_CLIENT_ID is required"),
    ("AZURE_CLIENT_ID", "1234", "AZURE_CLIENT_ID must be a GUID"),
    ("AZURE_CLIENT_SECRET", "  ", "AZURE_CLIENT_SECRET is required"),
    ("AZURE_AUTHORITY_HOST", "http://login.example.com", "AZURE_AUTHORITY_HOST must be an https"),
    ("API_AUDIENCE", "a,,b", "API_AUDIENCE must be a comma-separated list"),
    ("API_SCOPE", "two scopes", "API_SCOPE must be a single scope"),
    ("GRAPH_URL", "ftp://graph", "GRAPH_URL must be an https URL"),
    ("ARM_SCOPES", "user_impersonation", "ARM_SCOPES must list scopes"),
    ("HTTP_READ_TIMEOUT", "soon", "HTTP_READ_TIMEOUT must be a number"),
    ("OBO_CACHE_MAX_USERS", "0", "OBO_CACHE_MAX_USERS must be between"),
    ("KEYS_COLD_RETRY_SECONDS", "0.5", "KEYS_COLD_RETRY_SECONDS must be between"),
])
def test_bad_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE_ENV, name: value})
    assert str(caught.value).startswith(message)


def test_tenant_may_be_a_verified_domain() -> None:
    settings = load_settings({**BASE_ENV, "AZURE_TENANT_ID": "Contoso.onmicrosoft.com"})
    assert settings.tenant_id == "contoso.onmicrosoft.com"


def test_factory_refuses_to_start_without_a_secret() -> None:
    env = {key: value for key, value in BASE_ENV.items() if key != "AZURE_CLIENT_SECRET"}
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET is required"):
        create_app(env)
