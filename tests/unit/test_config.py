"""Configuration is checked once, and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.config import (
    ConfigError,
    ServerSettings,
    load_server_settings,
    load_settings,
    read_environment,
)
from tests.support.stubs import BASE_ENV
from tests.support.tokens import CLIENT_ID, TENANT_ID


def test_defaults_follow_the_public_cloud() -> None:
    settings = load_settings(BASE_ENV)
    assert settings.authority == f"https://login.microsoftonline.com/{TENANT_ID}"
    assert settings.audiences == (CLIENT_ID,)
    assert settings.api_scope == "access_as_user"
    assert settings.downstream["graph"].base_url == "https://graph.microsoft.com/v1.0"
    assert settings.downstream["graph"].scopes == ("https://graph.microsoft.com/.default",)
    assert settings.downstream["arm"].scopes == ("https://management.azure.com/user_impersonation",)
    assert settings.keys_cold_retry_seconds == 10
    assert "unit-test-secret-value" not in repr(settings)


def test_overrides_are_read() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/",
            "API_AUDIENCE": f"{CLIENT_ID}, api://{CLIENT_ID}",
            "API_SCOPE": "Files.Read",
            "GRAPH_URL": "https://graph.microsoft.us/v1.0",
            "GRAPH_SCOPES": "https://graph.microsoft.us/User.Read https://graph.microsoft.us/Mail.Read",
        }
    )
    assert settings.authority_host == "https://login.microsoftonline.us"
    assert settings.audiences == (CLIENT_ID, f"api://{CLIENT_ID}")
    assert settings.api_scope == "Files.Read"
    assert settings.downstream["graph"].scopes == (
        "https://graph.microsoft.us/User.Read",
        "https://graph.microsoft.us/Mail.Read",
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AZURE_TENANT_ID", "", "AZURE_TENANT_ID is required"),
        ("AZURE_TENANT_ID", "not a tenant!", "AZURE_TENANT_ID must be a tenant GUID"),
        ("AZURE_CLIENT_ID", "", "AZURE_CLIENT_ID is required"),
        ("AZURE_CLIENT_ID", "1234", "AZURE_CLIENT_ID must be a GUID"),
        ("AZURE_CLIENT_SECRET", "  ", "AZURE_CLIENT_SECRET is required"),
        (
            "AZURE_AUTHORITY_HOST",
            "http://login.example.com",
            "AZURE_AUTHORITY_HOST must be an https",
        ),
        ("API_AUDIENCE", "a,,b", "API_AUDIENCE must be a comma-separated list"),
        ("API_SCOPE", "two scopes", "API_SCOPE must be a single scope"),
        ("GRAPH_URL", "ftp://graph", "GRAPH_URL must be an https URL"),
        ("ARM_SCOPES", "user_impersonation", "ARM_SCOPES must list scopes"),
        ("HTTP_READ_TIMEOUT", "soon", "HTTP_READ_TIMEOUT must be a number from 0.1 to 300"),
        ("HTTP_TOTAL_TIMEOUT", "0", "HTTP_TOTAL_TIMEOUT must be a number from 0.1 to 600"),
        ("OBO_CACHE_MAX_USERS", "0", "OBO_CACHE_MAX_USERS must be a whole number from 1"),
        ("OBO_CACHE_MAX_USERS", "5000.5", "OBO_CACHE_MAX_USERS must be a whole number"),
        (
            "KEYS_COLD_RETRY_SECONDS",
            "0.5",
            "KEYS_COLD_RETRY_SECONDS must be a number from 1 to 300",
        ),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    ],
)
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


@pytest.mark.parametrize(
    "value",
    ["١٠", "1e3", "nan", "inf", "-inf", "Infinity", "+5", "5.", ".5", "0x10", "5,0", "٣.٠٥"],
)
def test_numbers_are_ascii_digits_with_an_optional_point(value: str) -> None:
    for name in (
        "HTTP_CONNECT_TIMEOUT",
        "HTTP_READ_TIMEOUT",
        "HTTP_TOTAL_TIMEOUT",
        "KEYS_COLD_RETRY_SECONDS",
        "OBO_CACHE_MAX_USERS",
    ):
        with pytest.raises(ConfigError) as caught:
            load_settings({**BASE_ENV, name: value})
        assert str(caught.value).startswith(f"{name} must be a ")


def test_timeouts_and_log_level_are_read() -> None:
    settings = load_settings(
        {
            **BASE_ENV,
            "HTTP_CONNECT_TIMEOUT": "1.5",
            "HTTP_READ_TIMEOUT": "7",
            "HTTP_TOTAL_TIMEOUT": "12.5",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.http_timeout == (1.5, 7.0)
    assert settings.http_total_timeout == 12.5
    assert settings.log_level == "DEBUG"
    defaults = load_settings(BASE_ENV)
    assert (defaults.http_timeout, defaults.http_total_timeout) == ((3.05, 10.0), 30.0)
    assert (defaults.log_level, defaults.obo_cache_max_users) == ("INFO", 5000)


def test_server_settings_defaults_and_overrides() -> None:
    assert load_server_settings({}) == ServerSettings("127.0.0.1:8000", 2, 4, "INFO")
    assert load_server_settings(
        {"BIND": "[::1]:9000", "WEB_CONCURRENCY": "3", "THREADS": "8", "LOG_LEVEL": "warning"}
    ) == ServerSettings("[::1]:9000", 3, 8, "WARNING")
    assert load_server_settings({"BIND": "unix:/run/api.sock"}).bind == "unix:/run/api.sock"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_CONCURRENCY", "two", "WEB_CONCURRENCY must be a whole number from 1 to 256"),
        ("WEB_CONCURRENCY", "٢", "WEB_CONCURRENCY must be a whole number"),
        ("THREADS", "0", "THREADS must be a whole number from 1 to 1024"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL must be one of"),
        ("BIND", "127.0.0.1:http", "BIND must be HOST:PORT"),
        ("BIND", "127.0.0.1:70000", "BIND must be HOST:PORT"),
        ("BIND", "bad host:80", "BIND must be HOST:PORT"),
    ],
)
def test_bad_server_settings_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_server_settings({name: value})
    assert str(caught.value).startswith(message)


def test_the_dotenv_file_of_the_working_directory_is_read(
    tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_cwd / ".env").write_text("THREADS=6\nWEB_CONCURRENCY=5\n")
    isolate_environment(monkeypatch, "THREADS", "WEB_CONCURRENCY")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")  # the environment wins over the file
    env = read_environment()
    assert (env["THREADS"], env["WEB_CONCURRENCY"]) == ("6", "3")


def isolate_environment(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset ``names`` for the test and restore them after it, even if a .env file sets them."""
    for name in names:
        monkeypatch.setenv(name, "placeholder")  # records the value to restore
        monkeypatch.delenv(name)
