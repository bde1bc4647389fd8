"""`salesforce-sync connect`: let an admin authorize the sync in a browser (OAuth web-server flow with PKCE),
register the org for the integration's project, and store the refresh token where the sync reads it.

The token goes into the environment variable `auth.refresh_token_env` names, as a line of a `.env` file
(which `dagster dev` loads). Reconnecting replaces that line and refreshes the registry entry; rules,
mappings and sync history are untouched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
import webbrowser
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import requests
from dotenv import dotenv_values

from salesforce_sync.commands.common import find_integration, open_store
from salesforce_sync.config.errors import ConfigError, SecretNotSetError
from salesforce_sync.config.models import AuthConfig, IntegrationConfig, SyncConfig
from salesforce_sync.salesforce.auth import Token
from salesforce_sync.salesforce.http import make_session
from salesforce_sync.store import OrgAlreadyRegisteredError

CALLBACK_PATH = "/callback"
SCOPES = "api id refresh_token"
"""REST/Bulk access, the identity URL (for the org id), and a refresh token for unattended syncs."""
DEFAULT_TIMEOUT_SECONDS = 300.0
_BARE_ENV_VALUE = re.compile(r"[A-Za-z0-9._~+/=!:@%*-]+")


class ConnectError(Exception):
    """The org could not be connected; the message names the integration and what to do next."""


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair (RFC 7636, S256): the verifier stays here, only the challenge goes to the browser."""

    verifier: str = field(repr=False)
    challenge: str


def new_pkce() -> Pkce:
    """A fresh verifier per login, so an intercepted authorization code is useless without it."""
    verifier = secrets.token_urlsafe(64)  # 86 characters, inside the allowed 43..128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def authorize_url(login_url: str, client_id: str, redirect_uri: str, state: str, challenge: str) -> str:
    """Where the admin logs in and allows access; Salesforce then redirects to `redirect_uri` with a code."""
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": SCOPES,
        "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
    }, quote_via=quote)
    return f"{login_url.rstrip('/')}/services/oauth2/authorize?{query}"


class _CallbackServer(HTTPServer):
    """Keeps the query parameters of the first request to the callback path."""

    callback: dict[str, str] | None = None


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer
    timeout = 10  # seconds; a browser's idle pre-opened connection must not stall the single-threaded listener

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        parts = urlsplit(self.path)
        if parts.path != CALLBACK_PATH:
            self._reply(404, "This is the salesforce-sync connect listener; it only answers " + CALLBACK_PATH)
            return
        self.server.callback = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self._reply(200, "salesforce-sync received the answer from Salesforce. The terminal shows the result; "
                         "you can close this tab.")

    def _reply(self, status: int, text: str) -> None:
        body = f"<!doctype html><html><body><p>{text}</p></body></html>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silent: the request line carries the authorization code."""


class CallbackListener:
    """The local redirect target http://127.0.0.1:<port>/callback; port 0 picks a free one."""

    def __init__(self, port: int) -> None:
        try:
            self._server = _CallbackServer(("127.0.0.1", port), _CallbackHandler)
        except OSError as err:
            raise ConnectError(f"cannot listen for the redirect on 127.0.0.1:{port}: {err.strerror}; "
                               "pick another --port") from None

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{CALLBACK_PATH}"

    def wait(self, timeout: float) -> dict[str, str] | None:
        """Serve requests until the callback arrives (its query parameters) or `timeout` seconds pass (None)."""
        deadline = time.monotonic() + timeout
        while self._server.callback is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._server.timeout = remaining
            self._server.handle_request()
        return self._server.callback

    def close(self) -> None:
        self._server.server_close()


def run_connect(config: SyncConfig, integration_id: str, *, port: int, open_browser: bool, env_file: Path,
                timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Authorize in a browser, exchange the code, refuse an org another project owns, record the org, and
    write the refresh token last: a failed login or a refused org leaves the registry and .env untouched."""
    integration = find_integration(config, integration_id)
    login_url, auth, variable = _connectable(integration)
    env_file = env_file.expanduser().absolute()
    if not env_file.parent.is_dir():
        raise ConnectError(f"--env-file {env_file}: folder {env_file.parent} does not exist")
    client_id = _client_setting(integration, "client_id_env", auth.client_id_env or "", env_file)
    client_secret = (_client_setting(integration, "client_secret_env", auth.client_secret_env, env_file)
                     if auth.client_secret_env else None)
    http = make_session(str(integration.ca_file) if integration.ca_file else None)
    store = open_store()  # before the browser: a store that cannot open fails the command early
    try:
        code, pkce, redirect_uri = _authorize(integration, login_url, client_id, port, open_browser, timeout)
        token = exchange_code(http, login_url, integration_id=integration.id, client_id=client_id,
                              client_secret=client_secret, code=code, verifier=pkce.verifier,
                              redirect_uri=redirect_uri)
        org_id, username = org_identity(http, token, integration_id=integration.id)
        try:
            store.register_org(org_id, integration.project, integration.id)
        except OrgAlreadyRegisteredError as refused:
            revoked = revoke(http, login_url, token.refresh_token or "")
            raise ConnectError(f"integration '{integration.id}': {refused} Nothing was written" +
                               ("; the authorization just granted was revoked." if revoked else ".")) from None
    finally:
        store.close()
    try:
        set_env_file_variable(env_file, variable, token.refresh_token or "")
    except OSError as err:
        raise ConnectError(f"integration '{integration.id}': org {org_id} is registered, but the refresh token "
                           f"could not be written to {env_file}: {err.strerror}; fix that and connect again") from None
    print(f"Connected Salesforce org {org_id} (user {username}) to project {integration.project} through "
          f"integration {integration.id}.\nIts refresh token is stored as {variable} in {env_file} (mode 0600), "
          "which `dagster dev` loads. Rules, mappings and sync history are unchanged.")


def _connectable(integration: IntegrationConfig) -> tuple[str, AuthConfig, str]:
    """(login URL, auth, refresh-token variable), or a ConfigError saying what the config lacks."""
    where = f"integration '{integration.id}'"
    if integration.environment_kind == "emulator":
        raise ConfigError(f"{where}: environment: emulator supplies its own credentials; there is nothing to "
                          "connect (give the emulator's https:// URL as environment to test connect)")
    if integration.login_url is None:
        raise ConfigError(f"{where}: connection: environment is not configured (production, sandbox, a My Domain "
                          "host or an https:// login URL)")
    auth = integration.auth
    if auth is None or auth.method != "refresh_token" or auth.refresh_token_env is None:
        found = "auth is not configured" if auth is None else f"auth.method is '{auth.method}'"
        raise ConfigError(f"{where}: {found}; connect stores a refresh token, so it needs auth with method "
                          "refresh_token, client_id_env and refresh_token_env (client_secret_env if the app has one)")
    return integration.login_url, auth, auth.refresh_token_env


def _client_setting(integration: IntegrationConfig, setting: str, variable: str, env_file: Path) -> str:
    """The environment variable's value, else its value in the .env file (where `dagster dev` reads it)."""
    value = os.environ.get(variable, "")
    if not value.strip() and env_file.is_file():
        value = dotenv_values(env_file).get(variable) or ""
    if not value.strip():
        raise SecretNotSetError(f"integration '{integration.id}': auth.{setting}: environment variable "
                                f"'{variable}' is not set, neither in the environment nor in {env_file}")
    return value


def _authorize(integration: IntegrationConfig, login_url: str, client_id: str, port: int, open_browser: bool,
               timeout: float) -> tuple[str, Pkce, str]:
    """Show the authorize URL, wait for the redirect, check its state; returns (code, pkce, redirect URI)."""
    pkce, state = new_pkce(), secrets.token_urlsafe(32)
    listener = CallbackListener(port)
    try:
        url = authorize_url(login_url, client_id, listener.redirect_uri, state, pkce.challenge)
        print(f"Connect integration {integration.id} (project {integration.project}) to the org at {login_url}.\n"
              f"Log in and allow access at:\n\n  {url}\n\n"
              f"Waiting up to {timeout:g} s for Salesforce to redirect to {listener.redirect_uri} ...", flush=True)
        if open_browser:
            webbrowser.open(url)
        params = listener.wait(timeout)
    finally:
        listener.close()
    where = f"integration '{integration.id}'"
    if params is None:
        raise ConnectError(f"{where}: no answer reached {listener.redirect_uri} within {timeout:g} s; nothing was "
                           "written, run connect again")
    if not hmac.compare_digest(params.get("state", ""), state):
        raise ConnectError(f"{where}: the redirect's state does not match this login attempt (a stale or forged "
                           "redirect); nothing was written, run connect again")
    if "error" in params:
        raise ConnectError(f"{where}: Salesforce did not authorize: {params['error']}: "
                           f"{params.get('error_description', '')}")
    if not params.get("code"):
        raise ConnectError(f"{where}: the redirect carried no authorization code")
    return params["code"], pkce, listener.redirect_uri


def exchange_code(http: requests.Session, login_url: str, *, integration_id: str, client_id: str,
                  client_secret: str | None, code: str, verifier: str, redirect_uri: str) -> Token:
    """The authorization_code grant (with the PKCE verifier); the token must include a refresh token."""
    data = {"grant_type": "authorization_code", "code": code, "client_id": client_id, "redirect_uri": redirect_uri,
            "code_verifier": verifier}
    if client_secret:
        data["client_secret"] = client_secret
    response = http.post(f"{login_url.rstrip('/')}/services/oauth2/token", data=data, timeout=60)
    try:
        body = response.json()
    except ValueError:
        body = {"error": f"HTTP {response.status_code}", "error_description": response.text[:200]}
    if response.status_code != 200:
        raise ConnectError(f"integration '{integration_id}': Salesforce refused the authorization code: "
                           f"{body.get('error')}: {body.get('error_description', '')}")
    if not body.get("refresh_token"):
        raise ConnectError(f"integration '{integration_id}': Salesforce issued no refresh token; give the "
                           "connected app the OAuth scope 'Perform requests at any time (refresh_token, "
                           "offline_access)' and connect again")
    return Token(body["access_token"], body["instance_url"], body.get("id", ""), body["refresh_token"])


def org_identity(http: requests.Session, token: Token, *, integration_id: str) -> tuple[str, str]:
    """(organization id, username) from the token's identity URL."""
    response = http.get(token.identity_url, headers={"Authorization": f"Bearer {token.access_token}"}, timeout=60)
    if response.status_code != 200:
        raise ConnectError(f"integration '{integration_id}': the identity URL answered HTTP {response.status_code}: "
                           f"{response.text[:200]}")
    identity = response.json()
    return identity["organization_id"], identity.get("username", "")


def revoke(http: requests.Session, login_url: str, token: str) -> bool:
    """Revoke a token we will not keep; whether Salesforce confirmed it."""
    try:
        response = http.post(f"{login_url.rstrip('/')}/services/oauth2/revoke", data={"token": token}, timeout=30)
    except requests.RequestException:
        return False
    return response.status_code == 200


def set_env_file_variable(path: Path, name: str, value: str) -> None:
    """Set `name=value` in a .env file: its line replaced (or appended), every other line kept, mode 0600.

    The new content goes to a private temporary file that then replaces the old one, so the secret is
    never readable by others and a crash never leaves half a file.
    """
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    assignment = re.compile(rf"\s*(?:export\s+)?{re.escape(name)}\s*=")
    entry = f"{name}={_env_value(value)}"
    kept: list[str] = []
    replaced = False
    for line in lines:
        if not assignment.match(line):
            kept.append(line)
        elif not replaced:  # the first assignment becomes the new one, later duplicates go
            kept.append(entry)
            replaced = True
    if not replaced:
        kept.append(entry)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write("\n".join(kept) + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _env_value(value: str) -> str:
    """Bare when plain, else single-quoted (no `$` expansion) with quotes and backslashes escaped."""
    if _BARE_ENV_VALUE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
