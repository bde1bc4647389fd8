"""How a sync reads, against emulated orgs on SQLite and PostgreSQL: every auth method through the sync's
own login (SOAP login included), NUL characters, forward_only, historical_only and manual integrations
from the CLI, the org's clock behind the host's, and `--full` across a window boundary."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from salesforce_sync.commands.sync import local_instance, run_sync
from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.runs.connection import connect
from salesforce_sync.dagster_defs.assets import asset_key
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import check_clock_skew
from salesforce_sync.runs.window import MANUAL_LAG, SyncWindow
from salesforce_sync.salesforce.auth import SalesforceAuthError
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    LEADS_ONLY,
    assert_same_rows,
    hour_floor,
    https_integration,
    load_config,
    oracle_rows,
    set_auth_env,
    stored_rows,
    sync_window,
)

PROJECT = "acme"
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg], monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=17, counts={"Lead": 120, "Contact": 60, "CampaignMember": 30})
    set_auth_env(monkeypatch, org)
    return org


def leads_integration(org: EmulatedOrg, start: datetime, **settings: Any) -> IntegrationConfig:
    return load_config(https_integration(org, "crm", PROJECT, start, objects=LEADS_ONLY, **settings)).integrations[0]


def assert_leads_exact(store: AudienceStore, org: EmulatedOrg, end: datetime = FAR_FUTURE,
                       since: datetime | None = None) -> None:
    expected = oracle_rows(org.simple_salesforce(), "crm", "Lead", end, rules_soql="")
    if since is not None:
        expected = {key: row for key, row in expected.items() if row["sf_modified_at"] >= since}
    assert_same_rows(stored_rows(store, PROJECT, "crm", "Lead"), expected)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def auth_settings(method: str, org: EmulatedOrg, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The `auth` block of one documented method, its secrets put in the environment."""
    info = org.connection_info()
    secrets = {"AUTH_CLIENT_ID": info["client_id"], "AUTH_CLIENT_SECRET": info["client_secret"],
               "AUTH_USERNAME": info["username"], "AUTH_PASSWORD": info["password"],
               "AUTH_SECURITY_TOKEN": info["security_token"]}
    if method == "jwt_bearer":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        org.control.update_settings(jwt_public_key_pem=public_pem(key))
        secrets["AUTH_PRIVATE_KEY"] = private_pem(key)
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    user = {"username_env": "AUTH_USERNAME", "password_env": "AUTH_PASSWORD",
            "security_token_env": "AUTH_SECURITY_TOKEN"}
    app = {"client_id_env": "AUTH_CLIENT_ID", "client_secret_env": "AUTH_CLIENT_SECRET"}
    return {"password_soap": {"method": "password", **user},
            "password_oauth": {"method": "password", **user, **app},
            "client_credentials": {"method": "client_credentials", **app},
            "jwt_bearer": {"method": "jwt_bearer", "client_id_env": "AUTH_CLIENT_ID", "username_env": "AUTH_USERNAME",
                           "private_key_env": "AUTH_PRIVATE_KEY"}}[method]


@pytest.mark.parametrize("method", ["password_soap", "password_oauth", "client_credentials", "jwt_bearer"])
def test_every_documented_auth_method_syncs_through_the_sync_s_own_login(
        method: str, org: EmulatedOrg, store: AudienceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    start = hour_floor(org.control.now())
    integration = leads_integration(org, start, auth=auth_settings(method, org, monkeypatch))

    sync_window(store, integration, SyncWindow(start, start + HOUR, first=True))

    assert_leads_exact(store, org, start + HOUR)
    if method == "password_soap":
        assert org.control.api_calls()["by_endpoint"].get("soap.login") is None  # SOAP login is not an API call
        monkeypatch.setenv("AUTH_PASSWORD", "wrong")
        with pytest.raises(SalesforceAuthError, match="INVALID_LOGIN: Invalid username, password, security token"):
            sync_window(store, integration, SyncWindow(start, start + HOUR, first=True))


def test_a_nul_character_is_replaced_and_counted_and_never_blocks_its_chunk(
        org: EmulatedOrg, store: AudienceStore) -> None:
    start = hour_floor(org.control.now())
    sf = org.simple_salesforce()
    broken = sf.Lead.create({"LastName": "Nul\x00Name", "Company": "Acme\x00 Inc", "Email": "nul@example.com"})["id"]
    assert sf.Lead.get(broken)["LastName"] == "Nul\x00Name"  # the org keeps it, as Salesforce can
    integration = leads_integration(org, start)

    results = sync_window(store, integration, SyncWindow(start, start + 2 * HOUR, first=True))

    stored = stored_rows(store, PROJECT, "crm", "Lead")
    row = stored.pop(f"sf_crm_Lead_{broken}")
    assert (row["last_name"], row["properties"]["company"], row["email"]) == (
        "Nul\ufffdName", "Acme\ufffd Inc", "nul@example.com")
    expected = oracle_rows(sf, "crm", "Lead", start + 2 * HOUR, rules_soql="")
    expected.pop(f"sf_crm_Lead_{broken}")
    assert_same_rows(stored, expected)  # every other value verbatim, the chunk's other rows all stored
    assert results["Lead"].warnings >= 2
    (completed,) = store.sync_log("crm", SyncEvent.SYNC_COMPLETED)
    assert completed.details["nul_replaced"] == 2


def test_forward_only_reads_nothing_modified_before_its_start(org: EmulatedOrg, store: AudienceStore) -> None:
    start = hour_floor(org.control.now()) - HOUR
    before = org.control.late_commit("Lead", start - timedelta(minutes=5), {"LastName": "Before", "Company": "A"})
    after = org.control.late_commit("Lead", start + timedelta(minutes=5), {"LastName": "After", "Company": "A"})
    config = load_config(https_integration(org, "crm", PROJECT, start, objects=LEADS_ONLY, history="forward_only"))

    assert run_sync(config, ["crm"], full=False) == 0

    stored = stored_rows(store, PROJECT, "crm", "Lead")
    assert f"sf_crm_Lead_{after}" in stored and f"sf_crm_Lead_{before}" not in stored
    assert_leads_exact(store, org, since=start)  # a first sync reads up to the present


def test_historical_only_imports_once_and_the_cli_then_refuses_to_sync(
        org: EmulatedOrg, store: AudienceStore, capsys: pytest.CaptureFixture[str]) -> None:
    start = hour_floor(org.control.now()) - HOUR
    config = load_config(https_integration(org, "crm", PROJECT, start, objects=LEADS_ONLY, history="historical_only"))
    assert run_sync(config, ["crm"], full=False) == 0
    assert_leads_exact(store, org)
    capsys.readouterr()
    org.control.late_commit("Lead", start + timedelta(minutes=30), {"LastName": "Later", "Company": "A"})

    for full in (False, True):
        assert run_sync(config, ["crm"], full=full) == 0

    lines = capsys.readouterr().out.splitlines()
    refusals = [line for line in lines if line.startswith("crm: not synced: history is historical_only")]
    assert len(refusals) == 2 and "initial import finished" in refusals[0]
    assert len(local_instance().get_runs()) == 1  # only the import ran
    assert all(row["last_name"] != "Later" for row in stored_rows(store, PROJECT, "crm", "Lead").values())


def test_a_manual_sync_reads_up_to_now_and_the_next_one_continues_from_there(
        org: EmulatedOrg, store: AudienceStore) -> None:
    today = org.control.now().replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=3)
    config = load_config(https_integration(org, "crm", PROJECT, start, objects=LEADS_ONLY, frequency="manual"))
    this_morning = org.control.late_commit("Lead", org.control.now() - 3 * MANUAL_LAG,
                                           {"LastName": "Today", "Company": "A"})
    began = datetime.now(UTC)

    assert run_sync(config, ["crm"], full=False) == 0

    first_mark = store.get_state("crm", "Lead").last_success_window_end
    assert began - MANUAL_LAG - timedelta(seconds=5) <= first_mark <= datetime.now(UTC) - MANUAL_LAG
    assert f"sf_crm_Lead_{this_morning}" in stored_rows(store, PROJECT, "crm", "Lead")  # past the last complete day
    assert_leads_exact(store, org, first_mark)

    later = org.control.late_commit("Lead", first_mark + timedelta(milliseconds=1),
                                    {"LastName": "Later", "Company": "A"})
    time.sleep(1)
    assert run_sync(config, ["crm"], full=False) == 0

    second_mark = store.get_state("crm", "Lead").last_success_window_end
    assert second_mark > first_mark
    assert f"sf_crm_Lead_{later}" in stored_rows(store, PROJECT, "crm", "Lead")
    assert_leads_exact(store, org, second_mark)
    resumed = store.sync_log("crm", SyncEvent.SYNC_COMPLETED)[0]
    assert resumed.details["read_until"] == second_mark.isoformat()
    instance = local_instance()
    soql = instance.fetch_materializations(asset_key("crm", "Lead"), limit=1).records[0].asset_materialization
    lower = (first_mark - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S")
    assert lower in soql.metadata["soql"].value  # from where the first one stopped, less the overlap


def test_an_org_clock_behind_the_host_is_warned_about_and_bounds_the_window(
        org: EmulatedOrg, store: AudienceStore) -> None:
    host_now = datetime.now(UTC)
    start = hour_floor(host_now) - 2 * HOUR
    behind = (host_now - hour_floor(host_now)) + timedelta(minutes=20)  # the org still lives in the last window
    org.control.move_clock(-behind)
    fresh = org.simple_salesforce().Lead.create({"LastName": "Fresh", "Company": "A"})["id"]
    config = load_config(https_integration(org, "crm", PROJECT, start, objects=LEADS_ONLY))

    assert run_sync(config, ["crm"], full=False) == 0

    mark = store.get_state("crm", "Lead").last_success_window_end
    org_then = datetime.now(UTC) - behind
    assert hour_floor(host_now) - timedelta(minutes=21) < mark < org_then < hour_floor(host_now)
    assert f"sf_crm_Lead_{fresh}" in stored_rows(store, PROJECT, "crm", "Lead")
    assert_leads_exact(store, org)  # a first sync reads everything, the watermark stays at the org's present
    instance = local_instance()
    meta = instance.fetch_materializations(asset_key("crm", "Lead"), limit=1).records[0]
    skew = meta.asset_materialization.metadata["clock_skew_seconds"].value
    assert abs(skew + behind.total_seconds()) < 5
    warnings = [entry.user_message for entry in instance.all_logs(meta.run_id)
                if "behind this host's" in entry.user_message]
    assert warnings and "more than half the 10-minute overlap" in warnings[0]

    with connect(config.integrations[0]) as client:
        outcome = check_clock_skew(client, config.integrations[0])
    assert outcome.warn and "behind this host's" in outcome.message
    assert abs(outcome.metadata["skew_seconds"] + behind.total_seconds()) < 5
    org.control.move_clock(behind)
    with connect(config.integrations[0]) as client:
        assert not check_clock_skew(client, config.integrations[0]).warn


@pytest.mark.slow
def test_a_full_resync_across_a_window_boundary_sweeps_every_object(
        org: EmulatedOrg, store: AudienceStore) -> None:
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    config = load_config(https_integration(org, "crm", PROJECT, minute - timedelta(minutes=3), frequency=1))
    assert run_sync(config, ["crm"], full=False) == 0
    gone = {}
    for name in ("CampaignMember", "Contact", "Lead"):  # members first: a Lead or Contact delete takes theirs along
        live = [row["salesforce_id"] for row in stored_rows(store, PROJECT, "crm", name).values() if not row["deleted"]]
        gone[name] = live[-1]
        assert org.control.hard_delete(name, [live[-1]]) == 1
    # Start the re-sync 12 s before a minute closes, every query 3 s slow: each object costs two queries,
    # so its first object starts in this window and its last in the next one.
    time.sleep((48 - datetime.now(UTC).second) % 60)
    boundary = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    org.control.add_latency("/query", 3000)

    assert run_sync(config, ["crm"], full=True) == 0

    started = {entry.object_type: entry.at for entry in store.sync_log("crm", SyncEvent.SYNC_STARTED, limit=3)}
    assert min(started.values()) < boundary < max(started.values())
    run_id = store.sync_log("crm", SyncEvent.SYNC_COMPLETED, limit=1)[0].run_id
    instance = local_instance()
    for name, record_id in gone.items():
        record = next(r for r in instance.fetch_materializations(asset_key("crm", name), limit=20).records
                      if r.run_id == run_id)
        meta = record.asset_materialization.metadata
        assert meta["full_resync"].value is True and meta["records_deleted"].value >= 1, name
        assert stored_rows(store, PROJECT, "crm", name)[f"sf_crm_{name}_{record_id}"]["deleted"], name
