"""Secrets come from environment variables read when a sync runs, with errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesforce_sync.config import ConfigError, IntegrationConfig, SecretNotSetError, resolve_credentials
from salesforce_sync.config.secrets import required_env_vars


def integration(auth: dict | None, environment: str = "acme.my.salesforce.com") -> IntegrationConfig:
    return IntegrationConfig.model_validate(
        {"id": "acme", "project": "demo", "environment": environment, "auth": auth, "start": "2026-01-01"})


REFRESH = {"method": "refresh_token", "client_id_env": "ACME_ID", "client_secret_env": "ACME_SECRET",
           "refresh_token_env": "ACME_REFRESH"}


def test_refresh_token_credentials_are_read_from_the_environment() -> None:
    credentials = resolve_credentials(integration(REFRESH), {
        "ACME_ID": "3MVG9id", "ACME_SECRET": "s3cret", "ACME_REFRESH": "5Aep861token"})
    assert (credentials.method, credentials.client_id, credentials.client_secret, credentials.refresh_token) == (
        "refresh_token", "3MVG9id", "s3cret", "5Aep861token")
    assert credentials.password is None and credentials.username is None
    assert "s3cret" not in repr(credentials) and "5Aep861token" not in repr(credentials)
    assert required_env_vars(integration(REFRESH).auth) == ("ACME_ID", "ACME_SECRET", "ACME_REFRESH")


def test_secrets_are_read_at_run_time_not_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_REFRESH", raising=False)
    configured = integration(REFRESH)  # loads although no secret is set yet
    monkeypatch.setenv("ACME_ID", "id")
    monkeypatch.setenv("ACME_SECRET", "secret")
    monkeypatch.setenv("ACME_REFRESH", "first")
    assert resolve_credentials(configured).refresh_token == "first"
    monkeypatch.setenv("ACME_REFRESH", "rotated")
    assert resolve_credentials(configured).refresh_token == "rotated"


def test_unset_variable_is_named() -> None:
    with pytest.raises(SecretNotSetError) as error:
        resolve_credentials(integration(REFRESH), {"ACME_ID": "id", "ACME_SECRET": "secret"})
    assert str(error.value) == (
        "integration 'acme': auth.refresh_token_env: environment variable 'ACME_REFRESH' is not set")


def test_empty_variable_is_named() -> None:
    with pytest.raises(SecretNotSetError, match="auth.client_id_env: environment variable 'ACME_ID' is empty"):
        resolve_credentials(integration(REFRESH), {"ACME_ID": "  ", "ACME_SECRET": "s", "ACME_REFRESH": "r"})


def test_password_login_with_security_token() -> None:
    auth = {"method": "password", "username_env": "SF_USER", "password_env": "SF_PASS", "security_token_env": "SF_TOKEN"}
    credentials = resolve_credentials(integration(auth, "sandbox"),
                                      {"SF_USER": "me@example.com", "SF_PASS": "pw", "SF_TOKEN": "tok"})
    assert (credentials.username, credentials.password, credentials.security_token) == ("me@example.com", "pw", "tok")


def test_jwt_with_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "server.key"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
    auth = {"method": "jwt_bearer", "client_id_env": "JWT_ID", "username": "bot@example.com",
            "private_key_file_env": "JWT_KEY_FILE"}
    credentials = resolve_credentials(integration(auth), {"JWT_ID": "id", "JWT_KEY_FILE": str(key_file)})
    assert (credentials.username, credentials.private_key_file, credentials.private_key) == (
        "bot@example.com", key_file, None)
    with pytest.raises(ConfigError) as error:
        resolve_credentials(integration(auth), {"JWT_ID": "id", "JWT_KEY_FILE": str(tmp_path / "missing.key")})
    assert str(error.value) == (
        f"integration 'acme': auth.private_key_file_env: environment variable 'JWT_KEY_FILE' points at "
        f"'{tmp_path / 'missing.key'}', which is not a file")


def test_jwt_with_inline_key_from_environment() -> None:
    auth = {"method": "jwt_bearer", "client_id_env": "JWT_ID", "username_env": "JWT_USER", "private_key_env": "JWT_KEY"}
    credentials = resolve_credentials(integration(auth), {"JWT_ID": "id", "JWT_USER": "u@x.io", "JWT_KEY": "PEM"})
    assert (credentials.username, credentials.private_key) == ("u@x.io", "PEM")


def test_no_auth_configured() -> None:
    with pytest.raises(ConfigError, match="integration 'acme': auth is not configured"):
        resolve_credentials(integration(None, "emulator"), {})
