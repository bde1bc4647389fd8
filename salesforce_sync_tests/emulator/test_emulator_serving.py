"""How the emulator is served: one org shared by two servers through a state file, the plain-HTTP listener,
and `salesforce-sync emulator serve` as a separate process."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.http import make_session

SMALL = {"Lead": 40, "Contact": 10, "CampaignMember": 5}
CONNECTION_KEYS = {"instance_url", "login_url", "ca_file", "org_id", "client_id", "client_secret", "username",
                   "password", "security_token", "refresh_token"}


def test_two_servers_on_one_state_file_share_records_tokens_clock_and_settings(
        emulated_org_factory: Callable[..., EmulatedOrg], tmp_path: Path) -> None:
    state = tmp_path / "org.sqlite"
    first = emulated_org_factory(counts=SMALL, state_file=state)
    second = emulated_org_factory(counts={"Lead": 999}, state_file=state)  # opens the org; counts are ignored
    assert first.base_url != second.base_url
    assert second.connection_info()["state_file"] == str(state)

    sf_first, sf_second = first.simple_salesforce(), second.simple_salesforce()
    assert sf_first.query("SELECT COUNT() FROM Lead")["totalSize"] == \
        sf_second.query("SELECT COUNT() FROM Lead")["totalSize"] == first.org.count("Lead")

    created = sf_first.Lead.create({"LastName": "Shared", "Company": "Both"})["id"]
    assert sf_second.Lead.get(created)["LastName"] == "Shared"
    sf_second.Lead.update(created, {"Title": "Seen twice"})
    assert sf_first.Lead.get(created)["Title"] == "Seen twice"

    token_from_first = Salesforce(instance_url=second.base_url, session_id=sf_first.session_id,
                                  session=second.session())
    assert token_from_first.Lead.get(created)["Id"] == created

    noon = dt.datetime(2031, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    first.control.set_clock(noon, freeze=True)
    assert second.control.now() == noon

    second.control.update_settings(access_token_seconds=60)
    short_lived = first.simple_salesforce()
    first.control.move_clock(dt.timedelta(seconds=61))
    with pytest.raises(SalesforceExpiredSession):
        short_lived.query("SELECT Id FROM Lead LIMIT 1")

    first.control.add_field("Lead", "Shared_Flag__c", "boolean")
    fresh = second.simple_salesforce()
    assert "Shared_Flag__c" in {f["name"] for f in fresh.Lead.describe()["fields"]}
    assert fresh.query(f"SELECT Shared_Flag__c FROM Lead WHERE Id = '{created}'")["records"][0]["Shared_Flag__c"] \
        is False


def test_plain_http_listener_serves_the_same_org(emulated_org_factory: Callable[..., EmulatedOrg]) -> None:
    org = emulated_org_factory(counts=SMALL, http_port=0)
    http_url = org.connection_info()["http_url"]
    assert http_url.startswith("http://127.0.0.1:") and http_url != org.base_url.replace("https", "http")
    session = make_session()
    token = session.post(f"{http_url}/services/oauth2/token", data={
        "grant_type": "refresh_token", "client_id": org.connection_info()["client_id"],
        "client_secret": org.connection_info()["client_secret"],
        "refresh_token": org.connection_info()["refresh_token"]}, timeout=30).json()
    assert token["instance_url"] == org.base_url  # simple-salesforce only speaks https
    page = session.get(f"{http_url}/services/data/v61.0/queryAll", params={"q": "SELECT Id FROM Lead"},
                       headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=30)
    assert page.status_code == 200
    assert page.json()["totalSize"] == org.org.count("Lead", include_deleted=True)
    assert page.headers["Sforce-Limit-Info"] == "api-usage=1/15000"


def test_cli_serve_prints_connection_json_first_then_serves(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0", "--leads", "30",
               "--contacts", "10", "--campaign-members", "5", "--opportunities", "7", "--tls-dir", str(tmp_path)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())
        assert CONNECTION_KEYS <= info.keys()
        assert info["instance_url"].startswith("https://127.0.0.1:") and info["ca_file"].startswith(str(tmp_path))
        session = make_session(info["ca_file"])
        token = session.post(f"{info['login_url']}/services/oauth2/token", data={
            "grant_type": "password", "client_id": info["client_id"], "client_secret": info["client_secret"],
            "username": info["username"], "password": info["password"] + info["security_token"]}, timeout=30)
        assert token.status_code == 200
        sf = Salesforce(instance_url=info["instance_url"], session_id=token.json()["access_token"], session=session)
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] > 0
        assert sf.query_all("SELECT Id FROM Opportunity", include_deleted=True)["totalSize"] == 7
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0
    assert server.stderr.read() == ""
