"""The write-back in Dagster: its asset downstream of the source table, materialized by the write_back job with the
push's counts as metadata, and the rejection-rate check passing and failing by the configured threshold."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg
from simple_salesforce import Salesforce

from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.dagster_defs.write_back import REJECTIONS_CHECK, write_back_asset_key, write_back_job_name
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import load_config
from salesforce_sync_tests.write_back.conftest import lead_source, prospect

KEY = write_back_asset_key("crm", "Lead")


def run_write_back(config: Any) -> dg.ExecuteInProcessResult:
    defs = build_definitions(config)
    return defs.resolve_job_def(write_back_job_name("crm")).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def check_result(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [event.event_specific_data for event in result.all_events
                     if event.event_type_value == "ASSET_CHECK_EVALUATION"]
    return evaluation


def test_the_write_back_asset_materializes_with_its_counts_and_the_rejection_check(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Callable[..., None],
        integration: Callable[..., Any]) -> None:
    source("prospects", [prospect("p1", "one@dagster.test"), prospect("p2", "two@dagster.test"),
                         prospect("bad", "bad address")])
    crm = integration({"max_rejection_rate": 0.5, "objects": {"Lead": lead_source()}})
    config = load_config(crm.model_dump(mode="json", by_alias=True, exclude_none=True))

    defs = build_definitions(config)
    spec = {s.key: s for s in defs.resolve_all_asset_specs()}[KEY]
    assert {dep.asset_key for dep in spec.deps} == {dg.AssetKey(["audience", "acme", "prospects"])}
    assert spec.partitions_def is None

    result = run_write_back(config)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("salesforce__crm__write_back__Lead")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert {k: metadata[k] for k in ("created", "updated", "unchanged", "rejected")} == {
        "created": 2, "updated": 0, "unchanged": 0, "rejected": 1}
    assert metadata["api_calls"] > 0 and metadata["write_calls"] == 1
    evaluation = check_result(result)
    assert (evaluation.check_name, evaluation.passed) == (REJECTIONS_CHECK, True)
    assert evaluation.metadata["rejected"].value == 1 and evaluation.metadata["rows"].value == 3
    assert len(sf.query("SELECT Id FROM Lead WHERE Email LIKE '%@dagster.test'")["records"]) == 2

    # A stricter threshold fails the check on the same outcomes; nothing is sent again.
    stricter = load_config({**crm.model_dump(mode="json", by_alias=True, exclude_none=True),
                            "write_back": {"max_rejection_rate": 0.2, "objects": {"Lead": lead_source()}}})
    again = run_write_back(stricter)
    metadata = {name: value.value for (m,) in [again.asset_materializations_for_node(
        "salesforce__crm__write_back__Lead")] for name, value in m.metadata.items()}
    assert metadata["write_calls"] == 0 and metadata["created"] == 0
    evaluation = check_result(again)
    assert not evaluation.passed and "1 of 3 rows stand rejected" in evaluation.description


def test_the_activities_asset_follows_the_people_it_needs_and_checks_its_rejections(
        sf: Salesforce, store: AudienceStore, source: Callable[..., None], integration: Callable[..., Any]) -> None:
    source("prospects", [prospect("p1", "one@activities-dagster.test")])
    source("activities", [
        {"activity_id": "d1", "person_id": "p1", "type": "call", "subject": "Call", "occurred_at": "2026-12-01T10:00"},
        {"activity_id": "d2", "person_id": "p1", "type": "visit", "subject": "Visit", "occurred_at": "2026-12-01T11:00"},
        {"activity_id": "d3", "person_id": "p1", "type": "fax", "subject": "Fax", "occurred_at": "2026-12-01T12:00"}])
    crm = integration({"max_rejection_rate": 0.2, "objects": {"Lead": lead_source()}, "activities": {
        "table": "activities", "key": "activity_id", "person_key_column": "person_id", "since": "2026-11-01"}})
    config = load_config(crm.model_dump(mode="json", by_alias=True, exclude_none=True))
    key = write_back_asset_key("crm", "Activity")
    spec = {s.key: s for s in build_definitions(config).resolve_all_asset_specs()}[key]
    assert {dep.asset_key for dep in spec.deps} == {dg.AssetKey(["audience", "acme", "activities"]), KEY}

    result = run_write_back(config)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("salesforce__crm__write_back__Activity")
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert (metadata["created"], metadata["rejected"]) == (2, 1)
    checks = {event.event_specific_data.asset_key: event.event_specific_data for event in result.all_events
              if event.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks[KEY].passed and not checks[key].passed  # 1 of 3 activities rejected: above 20%
    tasks = sf.query("SELECT WhoId FROM Task WHERE Activity_Key__c = 'd1'")["records"]
    assert [t["WhoId"] for t in tasks] == [store.write_back.links("crm", "Lead", ["p1"])["p1"]]
