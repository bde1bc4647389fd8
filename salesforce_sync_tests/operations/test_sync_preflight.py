"""A sync run (the `sync_<id>` job in-process) that a preflight check stops before it fetches: an org whose
API quota is used up defers it (the run succeeds, logs `sync_deferred` with the check's message, leaves the
status alone); a mapped field renamed in the org fails it with the check's own message and `sync_failed`.
Neither writes records or moves the watermark."""

from __future__ import annotations

import dagster as dg
import pytest

from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import check_api_limits, check_field_mappings
from salesforce_sync.runs.connection import connect
from salesforce_sync.store import AudienceStore, IntegrationStatus, SyncEvent, UpsertCounts
from salesforce_sync_tests.operations.support import (
    PROJECT,
    build_config,
    hours_ago,
    key,
    org_integration,
    range_tags,
    run_job,
)

SYNCED_UP_TO = 2  # hours ago: the window end both objects' state records before the run


def synced_store(url: str) -> None:
    with AudienceStore(url) as store:
        store.create_schema()
        for object_type in ("Lead", "Contact"):
            store.record_success("acme", object_type, window_end=hours_ago(SYNCED_UP_TO), counts=UpsertCounts())


@pytest.mark.slow
def test_exhausted_api_limit_defers_the_sync_before_fetching_with_the_checks_message(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    watermark = hours_ago(SYNCED_UP_TO)
    config = build_config(org_integration(org))
    synced_store(app_store_url)
    org.control.exhaust_api_limit()
    with connect(config.integrations[0]) as client:
        expected = check_api_limits(client).message

    result = run_job(build_definitions(config), "sync_acme", instance,
                     range_tags(key(watermark), key(hours_ago(1))))

    assert result.success  # deferred, not failed
    assert result.get_asset_materialization_events() == []
    with AudienceStore(app_store_url) as store:
        states = {state.object_type: state for state in store.states("acme")}
        deferred = store.sync_log("acme", SyncEvent.SYNC_DEFERRED)
        failed = store.sync_log("acme", SyncEvent.SYNC_FAILED)
        completed = store.sync_log("acme", SyncEvent.SYNC_COMPLETED)
        users = store.user_counts(PROJECT)
    for object_type in ("Lead", "Contact"):
        assert states[object_type].last_success_window_end == watermark
        assert states[object_type].status != IntegrationStatus.ERROR
        assert states[object_type].last_error is None
    assert sorted((entry.object_type, entry.message, entry.run_id) for entry in deferred) == [
        ("Contact", expected, result.run_id), ("Lead", expected, result.run_id)]
    assert failed == completed == []
    assert users.empty


@pytest.mark.slow
def test_renamed_field_stops_its_objects_sync_with_the_mapping_checks_message(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    watermark = hours_ago(SYNCED_UP_TO)
    config = build_config(org_integration(org))
    synced_store(app_store_url)
    org.control.rename_field("Lead", "Lead_Score__c", "Lead_Rating__c")
    with connect(config.integrations[0]) as client:
        expected = check_field_mappings(client, config.integrations[0], "Lead")[0].message

    result = run_job(build_definitions(config), "sync_acme", instance,
                     range_tags(key(watermark), key(hours_ago(1))))

    assert not result.success
    assert "Lead_Rating__c" in expected
    with AudienceStore(app_store_url) as store:
        lead = store.get_state("acme", "Lead")
        contact = store.get_state("acme", "Contact")
        lead_log = [(entry.event, entry.message) for entry in reversed(store.sync_log("acme"))
                    if entry.object_type == "Lead" and entry.event != SyncEvent.HEALTH_CHECK]
        lead_users = store.users(PROJECT, "acme", "Lead")
        contact_users = store.users(PROJECT, "acme", "Contact")
    assert lead.last_success_window_end == watermark
    assert lead.status == IntegrationStatus.ERROR and lead.last_error == expected
    assert lead_log == [(SyncEvent.SYNC_STARTED, None), (SyncEvent.SYNC_FAILED, expected)]
    assert lead_users.empty
    # the other object's mappings fit: it syncs and moves on
    assert contact.status == IntegrationStatus.ACTIVE and contact.last_success_window_end == hours_ago(0)
    assert not contact_users.empty
