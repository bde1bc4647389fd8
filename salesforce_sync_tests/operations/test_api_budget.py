"""The API budget governor in Dagster runs, against an emulated org whose DailyApiRequests are staged near the
budget: a sync whose window would pass it is deferred (the run succeeds, `sync_deferred` is logged with why,
nothing is materialized, the watermark stays) and syncs on a later run reporting its API usage as metadata;
health checks run near the budget skip what would pass it, so they never push the org's usage over it."""

from __future__ import annotations

import dagster as dg
import pytest

from salesforce_sync.commands.sync import run_sync
from salesforce_sync.runs.connection import connect
from salesforce_sync.dagster_defs.assets import asset_key
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, IntegrationStatus, SyncEvent
from salesforce_sync_tests.operations.support import (
    OBJECTS,
    build_config,
    check_evaluations,
    hours_ago,
    key,
    org_integration,
    range_tags,
    run_job,
)

PREFLIGHT_AND_COUNT = 3  # /limits, the Lead describe and the COUNT(); the identity call is not an API call


def used(org: EmulatedOrg) -> int:
    return org.control.api_calls()["used"]


@pytest.mark.slow
def test_a_sync_over_the_budget_is_deferred_then_synced_by_a_later_run_with_its_usage(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    config = build_config(org_integration(org, objects={"Lead": OBJECTS["Lead"]}, bulk_threshold=0, chunk_size=100,
                                          api_budget_percent=50))
    defs = build_definitions(config)
    tags = range_tags(key(hours_ago(3)), key(hours_ago(1)))
    org.control.set_api_limit(2 * (used(org) + PREFLIGHT_AND_COUNT + 2))  # 2 calls left after the COUNT()

    deferred_run = run_job(defs, "sync_acme", instance, tags)

    assert deferred_run.success
    assert deferred_run.get_asset_materialization_events() == []
    assert used(org) <= org.control.api_calls()["max"] // 2
    with AudienceStore(app_store_url) as store:
        deferred = store.sync_log("acme", SyncEvent.SYNC_DEFERRED)
        assert store.sync_log("acme", SyncEvent.SYNC_FAILED) == []
        assert store.get_state("acme", "Lead") is None  # no watermark, no Error status
    assert [(entry.object_type, entry.run_id) for entry in deferred] == [("Lead", deferred_run.run_id)]
    assert "the Lead window of " in deferred[0].message and "deferred" in deferred[0].message
    assert "the budget of 50%" in deferred[0].message

    org.control.set_api_limit(15_000)
    later_run = run_job(defs, "sync_acme", instance, tags)

    assert later_run.success
    events = [e for e in later_run.get_asset_materialization_events()
              if e.materialization.asset_key == asset_key("acme", "Lead")]
    assert len(events) == 3  # one per window of the range, from one read
    # What the run did as a whole is on its last window
    metadata = {name: value.value for name, value in events[-1].materialization.metadata.items()}
    assert metadata["api"] == "bulk_2.0"
    assert metadata["api_max"] == 15_000
    assert metadata["api_usage_after"] - metadata["api_usage_before"] >= 5  # COUNT, create, poll, results, delete
    assert metadata["api_usage_after"] <= used(org)
    with AudienceStore(app_store_url) as store:
        state = store.get_state("acme", "Lead")
    assert state.last_success_window_end == hours_ago(0) and state.status == IntegrationStatus.ACTIVE


@pytest.mark.slow
def test_health_checks_near_the_budget_never_push_usage_over_it(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(build_config(org_integration(org)))  # the default budget: 90%
    org.control.set_api_limit(100)
    with connect(build_config(org_integration(org)).integrations[0]) as client:
        while used(org) < 87:
            client.limits()
    # Left: 3 calls. /limits takes one, Lead's mapping check one describe (Lead's schema_drift reuses it);
    # Contact's mapping check (Account.Name) needs two, so it is skipped; Contact's schema_drift takes the last.

    result = run_job(defs, "health_acme", instance)

    assert result.success
    assert used(org) == 90  # the budget reached, never passed
    assert {name: e.passed for name, e in check_evaluations(result, "schema_drift").items()} == {
        "Lead": True, "Contact": True}
    evaluations = {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}
    assert evaluations[("Lead", "field_mappings")].passed
    skipped = evaluations[("Contact", "field_mappings")]
    assert not skipped.passed and skipped.severity == dg.AssetCheckSeverity.WARN
    assert "not checked to stay within the API budget: the check needs about 2 API calls" in skipped.description


@pytest.mark.slow
def test_the_sync_command_reports_a_deferred_object_and_succeeds(
        org: EmulatedOrg, app_store_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    config = build_config(org_integration(org, objects={"Lead": OBJECTS["Lead"]}))
    org.control.exhaust_api_limit()
    maximum = org.control.api_calls()["max"]

    assert run_sync(config, ["acme"], full=False) == 0

    printed = capsys.readouterr().out
    assert "(succeeded, run " in printed
    assert (f"  Lead: integration 'acme': {maximum} of {maximum} daily API requests used, 0 remaining "
            "(Salesforce refuses calls with REQUEST_LIMIT_EXCEEDED") in printed
