"""The checks-only job `health_<id>` run in-process on a test instance against an emulated org whose API
quota is used up: every check reports (none crashes on the refused calls), each writes a `health_check`
sync-log entry, staleness follows the store's state, and nothing is materialized."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent, UpsertCounts
from salesforce_sync_tests.operations.support import AUTH_ENV, build_config, hours_ago, org_integration, run_job


@pytest.mark.slow
def test_health_job_runs_every_check_without_materializing_and_logs_each(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(build_config(org_integration(org)))
    now = datetime.now(UTC)
    with AudienceStore(app_store_url) as store:
        store.create_schema()
        store.record_success("acme", "Lead", window_end=hours_ago(0), counts=UpsertCounts(),
                             at=now - timedelta(minutes=30))
        store.record_success("acme", "Contact", window_end=hours_ago(0), counts=UpsertCounts(),
                             at=now - timedelta(hours=3))  # more than twice the hourly frequency ago
    org.control.exhaust_api_limit()
    maximum = org.control.api_calls()["max"]

    result = run_job(defs, "health_acme", instance)

    assert result.success
    assert [event for event in result.all_events if event.event_type_value == "ASSET_MATERIALIZATION"] == []
    evaluations = {(evaluation.asset_key.path[-1], evaluation.check_name): evaluation
                   for evaluation in result.get_asset_check_evaluations()}
    passed = {check: evaluation.passed for check, evaluation in evaluations.items()}
    assert passed == {
        ("Lead", "credentials"): True, ("Lead", "api_limits"): False, ("Lead", "field_mappings"): False,
        ("Lead", "staleness"): True, ("Lead", "clock_skew"): True, ("Lead", "schema_drift"): False,
        ("Lead", "formula_freshness"): False,
        ("Contact", "credentials"): True, ("Contact", "api_limits"): False, ("Contact", "field_mappings"): False,
        ("Contact", "staleness"): False, ("Contact", "clock_skew"): True, ("Contact", "schema_drift"): False,
        ("Contact", "formula_freshness"): False,
    }
    limits = evaluations[("Lead", "api_limits")]
    assert limits.metadata["used"].value == maximum and limits.metadata["max"].value == maximum
    # Over the API budget the mappings are not checked at all (no describe calls), a warning that says why.
    assert "not checked to stay within the API budget" in evaluations[("Contact", "field_mappings")].description
    assert evaluations[("Contact", "field_mappings")].severity == dg.AssetCheckSeverity.WARN
    assert "more than twice its frequency" in evaluations[("Contact", "staleness")].description
    # No read of the formula values recorded (the store's state was written by hand): a warning, not an alert.
    assert evaluations[("Lead", "formula_freshness")].severity == dg.AssetCheckSeverity.WARN
    assert evaluations[("Lead", "schema_drift")].severity == dg.AssetCheckSeverity.WARN
    assert "not checked to stay within the API budget" in evaluations[("Lead", "schema_drift")].description

    with AudienceStore(app_store_url) as store:
        logged = store.sync_log("acme", SyncEvent.HEALTH_CHECK)
    assert len(logged) == len(evaluations)
    assert {(entry.object_type, entry.details["check"]): entry.details["passed"] for entry in logged} == passed
    assert {entry.run_id for entry in logged} == {result.run_id}
    assert {(entry.object_type, entry.details["check"]): entry.message for entry in logged} == {
        check: evaluation.description for check, evaluation in evaluations.items()}


def test_an_unset_secret_fails_every_check_naming_the_variable(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(AUTH_ENV["refresh_token"], raising=False)
    defs = build_definitions(build_config(org_integration(org)))

    result = run_job(defs, "health_acme", instance)

    assert result.success  # failed checks, not a crashed step
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 14  # 7 checks x 2 objects
    assert not any(evaluation.passed for evaluation in evaluations)
    assert all(AUTH_ENV["refresh_token"] in evaluation.description for evaluation in evaluations)
