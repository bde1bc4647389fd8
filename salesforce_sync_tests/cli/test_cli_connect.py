"""`salesforce-sync connect` against an emulated org: the browser is a requests session that follows the
emulator's auto-approving authorize redirect to the command's loopback listener."""

from __future__ import annotations

import re
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from dotenv import dotenv_values

from salesforce_sync.cli import main
from salesforce_sync.commands.connect import set_env_file_variable
from salesforce_sync.config.loader import load_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.salesforce.http import make_session
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.cli.cli_support import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    PROJECT,
    REFRESH_TOKEN_ENV,
    config_text,
    emulator_integration,
    full_sync,
    set_app_credentials,
)

AUTHORIZE_URL = re.compile(r"https://\S+/services/oauth2/authorize\?\S+")


@dataclass
class Outcome:
    exit_code: int | None
    out: str
    err: str
    callback: requests.Response | None


def connect_in_browser(argv: list[str], capsys: pytest.CaptureFixture[str], org: EmulatedOrg, *,
                       redirect: Callable[[str], str] = lambda location: location) -> Outcome:
    """Run `main(argv)` in a thread, open the authorize URL it prints, follow the redirect to its listener."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main(argv)), daemon=True)
    thread.start()
    out = err = ""
    deadline = time.monotonic() + 20
    match = None
    while match is None and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
        captured = capsys.readouterr()
        out, err = out + captured.out, err + captured.err
        match = AUTHORIZE_URL.search(out)
    callback = None
    if match is not None:
        browser = make_session(org.ca_file)
        approval = browser.get(match.group(0), allow_redirects=False, timeout=30)
        assert approval.status_code == 302, approval.text
        callback = browser.get(redirect(approval.headers["Location"]), timeout=30)
    thread.join(30)
    assert not thread.is_alive(), "connect did not finish"
    captured = capsys.readouterr()
    return Outcome(result[0] if result else None, out + captured.out, err + captured.err, callback)


def default_store(home: Path) -> AudienceStore:
    store = AudienceStore(f"sqlite:///{home / 'audience.db'}")
    store.create_schema()
    return store


def test_connect_stores_the_token_in_the_env_file_registers_the_org_and_the_sync_then_works(
        org: EmulatedOrg, use_config: Callable[[str], Path], cli_env: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    set_app_credentials(monkeypatch, org, refresh_token=False)
    env_file = tmp_path / "secrets.env"
    env_file.write_text(f"# app secrets\nOTHER=keep me\n{REFRESH_TOKEN_ENV}=old-token\nexport LAST=1\n")
    env_file.chmod(0o644)
    info = org.connection_info()

    outcome = connect_in_browser(["connect", "crm", "--no-browser", "--env-file", str(env_file)], capsys, org)

    assert outcome.exit_code == 0, outcome.err
    assert outcome.callback is not None and outcome.callback.status_code == 200
    assert f"Connected Salesforce org {info['org_id']} (user {info['username']}) to project acme" in outcome.out
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    lines = env_file.read_text().splitlines()
    assert lines[:2] == ["# app secrets", "OTHER=keep me"] and lines[3:] == ["export LAST=1"]
    token = dotenv_values(env_file)[REFRESH_TOKEN_ENV]
    assert lines[2] == f"{REFRESH_TOKEN_ENV}={token}"
    assert token and token not in ("old-token", info["refresh_token"])
    for secret in (token, info["client_secret"]):
        assert secret not in outcome.out and secret not in outcome.err
    with default_store(cli_env) as store:
        [registration] = store.orgs()
        assert (registration.org_id, registration.project, registration.integration_id) == (info["org_id"], PROJECT,
                                                                                            "crm")
        monkeypatch.setenv(REFRESH_TOKEN_ENV, token)
        full_sync(load_config().integration("crm"), store)
        assert len(store.users(PROJECT, "crm", include_deleted=False)) > 0


def test_reconnecting_replaces_only_the_token_and_keeps_rules_mappings_and_history(
        org: EmulatedOrg, use_config: Callable[[str], Path], cli_env: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    config = use_config(config_text(emulator_integration(org)))
    set_app_credentials(monkeypatch, org, refresh_token=False)
    env_file = tmp_path / ".env"
    argv = ["connect", "crm", "--no-browser", "--env-file", str(env_file)]
    assert connect_in_browser(argv, capsys, org).exit_code == 0
    first_token = dotenv_values(env_file)[REFRESH_TOKEN_ENV]
    monkeypatch.setenv(REFRESH_TOKEN_ENV, first_token)
    with default_store(cli_env) as store:
        full_sync(load_config().integration("crm"), store)
        before = (store.users(PROJECT, "crm"), store.states("crm"), store.sync_log("crm"))
    config_before = config.read_bytes()

    assert connect_in_browser(argv, capsys, org).exit_code == 0

    assert env_file.read_text().count(f"{REFRESH_TOKEN_ENV}=") == 1
    assert dotenv_values(env_file)[REFRESH_TOKEN_ENV] not in (None, first_token)
    assert config.read_bytes() == config_before
    with default_store(cli_env) as store:
        users, states, log = before
        assert store.users(PROJECT, "crm").equals(users)
        assert store.states("crm") == states and store.sync_log("crm") == log
        assert [(o.project, o.integration_id) for o in store.orgs()] == [(PROJECT, "crm")]


def test_a_second_project_cannot_connect_the_same_org_and_nothing_is_written(
        org: EmulatedOrg, use_config: Callable[[str], Path], cli_env: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org), emulator_integration(org, "crm_other", "other"),
                           projects=(PROJECT, "other")))
    set_app_credentials(monkeypatch, org, refresh_token=False)
    monkeypatch.chdir(tmp_path)
    assert connect_in_browser(["connect", "crm", "--no-browser"], capsys, org).exit_code == 0
    assert REFRESH_TOKEN_ENV in dotenv_values(tmp_path / ".env")
    other_env = tmp_path / "other.env"

    outcome = connect_in_browser(["connect", "crm_other", "--no-browser", "--env-file", str(other_env)], capsys, org)

    assert outcome.exit_code == 1
    assert "salesforce-sync connect: error: integration 'crm_other': Salesforce org" in outcome.err
    assert "is already connected to project 'acme' through integration 'crm'" in outcome.err
    assert outcome.err.strip().endswith("Nothing was written; the authorization just granted was revoked.")
    assert not other_env.exists()
    with default_store(cli_env) as store:
        assert [(o.project, o.integration_id) for o in store.orgs()] == [(PROJECT, "crm")]
    with org.org.read() as emulator_db:
        newest_refresh_revoked = emulator_db.execute(
            "SELECT revoked FROM _tokens WHERE kind = 'refresh' ORDER BY rowid DESC LIMIT 1").fetchone()[0]
    assert newest_refresh_revoked == 1


def test_a_redirect_with_another_state_is_refused(
        org: EmulatedOrg, use_config: Callable[[str], Path], cli_env: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    set_app_credentials(monkeypatch, org, refresh_token=False)
    env_file = tmp_path / ".env"

    def forged(location: str) -> str:
        parts = urlsplit(location)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()} | {"state": "forged"}
        return urlunsplit(parts._replace(query=urlencode(query)))

    outcome = connect_in_browser(["connect", "crm", "--no-browser", "--env-file", str(env_file)], capsys, org,
                                 redirect=forged)

    assert outcome.exit_code == 1
    assert "integration 'crm': the redirect's state does not match this login attempt" in outcome.err
    assert not env_file.exists()
    with default_store(cli_env) as store:
        assert store.orgs() == []


def test_connect_on_a_chosen_port_with_the_app_credentials_in_the_env_file(
        org: EmulatedOrg, use_config: Callable[[str], Path], cli_env: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    info = org.connection_info()
    env_file = tmp_path / ".env"
    env_file.write_text(f"{CLIENT_ID_ENV}={info['client_id']}\n{CLIENT_SECRET_ENV}='{info['client_secret']}'\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    strays: list[int] = []

    def after_a_stray_request(location: str) -> str:
        strays.append(requests.get(f"http://127.0.0.1:{port}/favicon.ico", timeout=10).status_code)
        return location

    outcome = connect_in_browser(["connect", "crm", "--no-browser", "--port", str(port), "--env-file", str(env_file)],
                                 capsys, org, redirect=after_a_stray_request)

    assert outcome.exit_code == 0, outcome.err
    assert f"redirect_uri=http%3A%2F%2F127.0.0.1%3A{port}%2Fcallback" in outcome.out
    assert strays == [404]
    values = dotenv_values(env_file)
    assert values[CLIENT_ID_ENV] == info["client_id"] and values[CLIENT_SECRET_ENV] == info["client_secret"]
    assert values[REFRESH_TOKEN_ENV]


def test_connect_gives_up_when_no_redirect_arrives(
        org: EmulatedOrg, use_config: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    set_app_credentials(monkeypatch, org, refresh_token=False)

    assert main(["connect", "crm", "--no-browser", "--timeout", "1", "--env-file", str(tmp_path / ".env")]) == 1

    captured = capsys.readouterr()
    assert AUTHORIZE_URL.search(captured.out)
    assert re.search(r"integration 'crm': no answer reached http://127\.0\.0\.1:\d+/callback within 1 s", captured.err)
    assert not (tmp_path / ".env").exists()


@pytest.mark.parametrize(("integration", "argv", "message"), [
    ("\n  - {id: crm, project: acme, environment: emulator, start: 2026-11-01}", [],
     "integration 'crm': environment: emulator supplies its own credentials; there is nothing to connect"),
    ("\n  - {id: crm, project: acme, start: 2026-11-01}", [],
     "integration 'crm': connection: environment is not configured"),
    ("\n  - {id: crm, project: acme, environment: sandbox, start: 2026-11-01, auth: {method: jwt_bearer, "
     "client_id_env: CRM_CLIENT_ID, username: a@b.example, private_key_env: KEY}}", [],
     "integration 'crm': auth.method is 'jwt_bearer'; connect stores a refresh token"),
    ("\n  - {id: crm, project: acme, environment: sandbox, start: 2026-11-01, auth: {method: refresh_token, "
     "client_id_env: CRM_CLIENT_ID, refresh_token_env: CRM_REFRESH_TOKEN}}", [],
     "integration 'crm': auth.client_id_env: environment variable 'CRM_CLIENT_ID' is not set, neither in the "
     "environment nor in"),
    ("\n  - {id: crm, project: acme, environment: sandbox, start: 2026-11-01, auth: {method: refresh_token, "
     "client_id_env: CRM_CLIENT_ID, refresh_token_env: CRM_REFRESH_TOKEN}}", ["--env-file", "/nonexistent/dir/.env"],
     "--env-file /nonexistent/dir/.env: folder /nonexistent/dir does not exist"),
])
def test_connect_refuses_configs_it_cannot_serve_before_any_login(
        use_config: Callable[[str], Path], capsys: pytest.CaptureFixture[str], integration: str, argv: list[str],
        message: str) -> None:
    use_config("projects: [acme]\nintegrations:" + integration)

    assert main(["connect", "crm", "--no-browser", *argv]) == 1

    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


@pytest.mark.parametrize("value", ["plain.Token-1==", "has space", "it's $HOME \\ \"quoted\" #not-a-comment"])
def test_env_file_values_read_back_exactly_as_written(tmp_path: Path, value: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("A=1\nTOKEN=old\nTOKEN=older duplicate\nB=2")

    set_env_file_variable(env_file, "TOKEN", value)

    assert dotenv_values(env_file) == {"A": "1", "TOKEN": value, "B": "2"}
    assert env_file.read_text().count("TOKEN=") == 1
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
