"""Formula refresh in Dagster (SQLite and PostgreSQL stores): the `refresh_<id>_formulas` sensor requests a run
only when an object's formula values are due; the `formula_refresh_<id>` job writes a renamed Account to its
Contacts and shows the refresh on the Contact asset; the `formula_freshness` check's rule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, asset_key
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.formula_refresh import check_formula_freshness
from salesforce_sync.store import AudienceStore, SyncEvent, UpsertCounts
from salesforce_sync_tests.operations.support import (
    build_config,
    check_evaluations,
    hours_ago,
    key,
    last_complete_window_start,
    offline_integration,
    org_integration,
    range_tags,
    run_job,
)


@pytest.fixture
def store(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AudienceStore]:
    """The audience store the definitions read through AUDIENCE_STORE_URL, as a deployment's sensors do."""
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AUDIENCE_STORE_URL", store_url)
    with AudienceStore(store_url) as audience:
        yield audience


def evaluate(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    sensor = defs.resolve_sensor_def("refresh_acme_formulas")
    context = dg.build_sensor_context(instance=instance, definitions=defs,
                                      resources={"audience_store": defs.resources["audience_store"]})
    return sensor(context)


def test_the_sensor_requests_a_refresh_only_when_one_is_due(store: AudienceStore) -> None:
    defs = build_definitions(build_config(offline_integration("acme", formula_refresh_minutes=60)))
    with dg.DagsterInstance.ephemeral() as instance:
        assert isinstance(evaluate(defs, instance), dg.SkipReason)  # nothing synced: nothing to refresh
        store.record_success("acme", "Contact", window_end=hours_ago(0), counts=UpsertCounts())
        due = evaluate(defs, instance)
        assert isinstance(due, dg.RunRequest)  # synced, and no read of its formula values recorded
        assert due.tags == {INTEGRATION_TAG: "acme"}
        assert evaluate(defs, instance).run_key == due.run_key  # asked once per cadence
        store.record_object_settings("acme", "Contact", formula_refreshed_at=datetime.now(UTC) - timedelta(minutes=59))
        assert isinstance(evaluate(defs, instance), dg.SkipReason)
        store.record_object_settings("acme", "Contact", formula_refreshed_at=datetime.now(UTC) - timedelta(minutes=61))
        assert isinstance(evaluate(defs, instance), dg.RunRequest)
        # A complete read (a first or full sync) reads every formula value: it counts as a refresh.
        store.record_object_settings("acme", "Contact", fingerprint="read-just-now")
        assert isinstance(evaluate(defs, instance), dg.SkipReason)


@pytest.mark.parametrize("settings", [{"formula_refresh_minutes": 0}, {"frequency": "manual"}, {"active": False},
                                      {"history": "historical_only"}])
def test_no_refresh_sensor_when_the_refresh_is_off_or_nothing_is_scheduled(settings: dict) -> None:
    defs = build_definitions(build_config(offline_integration("acme", **settings)))
    sensors = {sensor.name for sensor in defs.get_repository_def().sensor_defs}
    assert "refresh_acme_formulas" not in sensors and "formula_refresh_acme" in {
        job.name for job in defs.get_repository_def().get_all_jobs()}


@pytest.mark.slow
def test_the_job_writes_a_renamed_account_to_its_contacts_and_reports_it_on_the_asset(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(build_config(org_integration(org)))
    first = key(hours_ago(3))
    assert run_job(defs, "sync_acme", instance, tags=range_tags(first, key(last_complete_window_start()))).success
    sf = org.simple_salesforce()
    contacts = sf.query_all("SELECT Id, AccountId FROM Contact WHERE AccountId != null")["records"]
    account = contacts[0]["AccountId"]
    sf.Account.update(account, {"Name": "Renamed Holdings Ltd"})
    renamed = {c["Id"] for c in contacts if c["AccountId"] == account}

    result = run_job(defs, "formula_refresh_acme", instance)

    assert result.success
    observations = {event.asset_key.path[-1]: event.event_specific_data.asset_observation.metadata
                    for event in result.all_events if event.event_type_value == "ASSET_OBSERVATION"}
    assert observations["Contact"]["formula_rows_changed"].value == len(renamed)
    assert observations["Contact"]["formula_fields"].value == "Account.Name"
    assert observations["Contact"]["formula_refresh_minutes"].value == 360
    assert observations["Lead"]["formula_fields"].value == "none"  # Leads map no formula or path
    with AudienceStore(app_store_url) as store:
        rows = store.users("ops", "acme", "Contact", include_deleted=False)
        assert set(rows.loc[rows["properties"].map(lambda p: p["company"]) == "Renamed Holdings Ltd",
                            "salesforce_id"]) == renamed
        assert {e.run_id for e in store.sync_log("acme", SyncEvent.FORMULAS_REFRESHED)} == {result.run_id}
    health = run_job(defs, "health_acme", instance)
    freshness = check_evaluations(health, "formula_freshness")
    assert freshness["Contact"].passed and freshness["Lead"].passed
    assert asset_key("acme", "Contact") in {e.asset_key for e in health.get_asset_check_evaluations()}


def test_formula_freshness_allows_twice_the_cadence_and_no_more() -> None:
    integration: IntegrationConfig = build_config(offline_integration("acme", formula_refresh_minutes=60)).integrations[0]
    now = datetime.now(UTC)
    assert check_formula_freshness(integration, "Contact", now - timedelta(minutes=120), now).passed
    late = check_formula_freshness(integration, "Contact", now - timedelta(minutes=121), now)
    assert not late.passed and not late.warn and "more than twice the 60-minute cadence" in late.message
    assert late.metadata["age_minutes"] == 121.0
    never = check_formula_freshness(integration, "Contact", None, now)
    assert not never.passed and never.warn
    off = build_config(offline_integration("acme", formula_refresh_minutes=0)).integrations[0]
    assert check_formula_freshness(off, "Contact", None, now).passed
