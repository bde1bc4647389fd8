"""Read an integration's secrets from the environment when a sync runs, never when code is imported."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from salesforce_sync.config.errors import ConfigError, SecretNotSetError
from salesforce_sync.config.models import AuthConfig, AuthMethod, IntegrationConfig


@dataclass(frozen=True)
class Credentials:
    """Secret values for one login; `repr` hides them so they never reach logs."""

    method: AuthMethod
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_file: Path | None = None


_SECRET_FIELDS = (
    "client_id", "client_secret", "refresh_token", "username", "password", "security_token",
    "private_key", "private_key_file",
)


def resolve_credentials(
    integration: IntegrationConfig, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Credentials of a configured `auth`; raises naming the integration and the unset variable.

    For `environment: emulator` without `auth` the emulator supplies its own credentials, so there is
    nothing to resolve here and this raises ConfigError.
    """
    if integration.auth is None:
        raise ConfigError(f"integration '{integration.id}': auth is not configured")
    env = os.environ if environ is None else environ
    auth = integration.auth
    values: dict[str, str | None] = {}
    for name in _SECRET_FIELDS:
        variable: str | None = getattr(auth, f"{name}_env")
        values[name] = None if variable is None else _read(env, integration.id, f"{name}_env", variable)
    username = auth.username if auth.username is not None else values["username"]
    key_file = values["private_key_file"]
    if key_file is not None and not Path(key_file).is_file():
        raise ConfigError(
            f"integration '{integration.id}': auth.private_key_file_env: environment variable "
            f"'{auth.private_key_file_env}' points at '{key_file}', which is not a file"
        )
    return Credentials(
        method=auth.method,
        client_id=values["client_id"],
        client_secret=values["client_secret"],
        refresh_token=values["refresh_token"],
        username=username,
        password=values["password"],
        security_token=values["security_token"],
        private_key=values["private_key"],
        private_key_file=Path(key_file) if key_file is not None else None,
    )


def required_env_vars(auth: AuthConfig) -> tuple[str, ...]:
    """Names of the environment variables a login with `auth` reads, for docs and preflight checks."""
    names = (getattr(auth, f"{name}_env") for name in _SECRET_FIELDS)
    return tuple(name for name in names if name is not None)


def _read(env: Mapping[str, str], integration_id: str, setting: str, variable: str) -> str:
    value = env.get(variable, "")
    if not value.strip():
        state = "is empty" if variable in env else "is not set"
        raise SecretNotSetError(
            f"integration '{integration_id}': auth.{setting}: environment variable '{variable}' {state}"
        )
    return value
