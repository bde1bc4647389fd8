"""Status Error -> Active through Dagster: a sync run that fails on a Salesforce error that is not retried
(QUERY_TIMEOUT; a 500 would be retried) records Error with the
error verbatim (object state, sync log), the run-failure sensor marks the integration Error without
logging the failure twice, the schedule sensor retries the range under a new run key, and the retry's
success turns the object (record_success) and the integration (success sensor) back to Active."""

from __future__ import annotations

import dagster as dg
import pytest

from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, IntegrationStatus, SyncEvent
from salesforce_sync_tests.operations.support import OBJECTS, build_config, hours_ago, org_integration, run_job

QUERY_ERROR = ("integration 'acme': GET queryAll failed with HTTP 400: QUERY_TIMEOUT: Your query request was running "
               "for too long.")


def run_status_context(instance: dg.DagsterInstance, defs: dg.Definitions, sensor_name: str,
                       result: dg.ExecuteInProcessResult, event: dg.DagsterEvent) -> dg.RunStatusSensorContext:
    return dg.build_run_status_sensor_context(
        sensor_name=sensor_name, dagster_event=event, dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        resources={"audience_store": defs.resources["audience_store"]})


@pytest.mark.slow
def test_a_failed_sync_shows_error_verbatim_until_the_next_success_turns_it_active(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    defs = build_definitions(build_config(org_integration(org, objects={"Lead": OBJECTS["Lead"]})))
    schedule_context = dg.build_sensor_context(instance=instance, definitions=defs,
                                               resources={"audience_store": defs.resources["audience_store"]})
    schedule = defs.resolve_sensor_def("sync_acme_windows")
    first = schedule(schedule_context).run_requests[0]
    org.control.inject_error(r"/queryAll$", 400, "QUERY_TIMEOUT", "Your query request was running for too long.")

    failed = run_job(defs, "sync_acme", instance, first.tags)

    assert not failed.success
    with AudienceStore(app_store_url) as store:
        lead = store.get_state("acme", "Lead")
        logged = store.sync_log("acme", SyncEvent.SYNC_FAILED)
    assert lead.status == IntegrationStatus.ERROR and lead.last_error == QUERY_ERROR
    assert [(entry.run_id, entry.message) for entry in logged] == [(failed.run_id, QUERY_ERROR)]

    on_failure = defs.resolve_sensor_def("sync_failure_log")
    on_failure(run_status_context(instance, defs, "sync_failure_log", failed,
                                  failed.get_run_failure_event()).for_run_failure())
    with AudienceStore(app_store_url) as store:
        integration = store.get_state("acme")
        assert len(store.sync_log("acme", SyncEvent.SYNC_FAILED)) == 1  # the sync had logged it already
    assert integration.status == IntegrationStatus.ERROR and integration.last_error == QUERY_ERROR
    observations = instance.fetch_observations(dg.AssetKey(["salesforce", "acme", "Lead"]), limit=1).records
    badge = observations[0].asset_observation.metadata
    assert (badge["status"].value, badge["error"].value) == ("Error", QUERY_ERROR)

    retry = schedule(schedule_context).run_requests[0]
    assert retry.run_key != first.run_key
    assert retry.tags == first.tags
    succeeded = run_job(defs, "sync_acme", instance, retry.tags)

    assert succeeded.success
    with AudienceStore(app_store_url) as store:
        lead = store.get_state("acme", "Lead")
        integration_before_sensor = store.get_state("acme").status
        completed = store.sync_log("acme", SyncEvent.SYNC_COMPLETED)
    assert lead.status == IntegrationStatus.ACTIVE and lead.last_success_window_end == hours_ago(0)
    assert [entry.run_id for entry in completed] == [succeeded.run_id]
    materialized = succeeded.get_asset_materialization_events()[-1].materialization.metadata  # run-level: last window
    assert materialized["status"].value == "Active"
    assert integration_before_sensor == IntegrationStatus.ERROR

    on_success = defs.resolve_sensor_def("sync_success_status")
    on_success(run_status_context(instance, defs, "sync_success_status", succeeded,
                                  succeeded.get_run_success_event()))
    with AudienceStore(app_store_url) as store:
        assert store.get_state("acme").status == IntegrationStatus.ACTIVE


def test_a_ui_materialization_that_fails_is_logged_and_badged_like_a_sync_job_run(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    """Materialize in the UI runs the implicit asset job with the assets selected and no integration tag."""
    defs = build_definitions(build_config(org_integration(org, objects={"Lead": OBJECTS["Lead"]})))
    schedule_context = dg.build_sensor_context(instance=instance, definitions=defs,
                                               resources={"audience_store": defs.resources["audience_store"]})
    range_tags = {k: v for k, v in defs.resolve_sensor_def("sync_acme_windows")(schedule_context).run_requests[0].tags.items()
                  if k.startswith("dagster/asset_partition_range")}
    org.control.inject_error(r"/queryAll$", 400, "QUERY_TIMEOUT", "Your query request was running for too long.")
    lead = dg.AssetKey(["salesforce", "acme", "Lead"])

    failed = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=instance, asset_selection=[lead], tags=range_tags, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})

    assert not failed.success and "salesforce_sync/integration" not in instance.get_run_by_id(failed.run_id).tags
    on_failure = defs.resolve_sensor_def("sync_failure_log")
    on_failure(run_status_context(instance, defs, "sync_failure_log", failed,
                                  failed.get_run_failure_event()).for_run_failure())
    with AudienceStore(app_store_url) as store:
        integration = store.get_state("acme")
        logged = store.sync_log("acme", SyncEvent.SYNC_FAILED)
    assert integration.status == IntegrationStatus.ERROR and integration.last_error == QUERY_ERROR
    assert [entry.run_id for entry in logged] == [failed.run_id]
    badge = instance.fetch_observations(lead, limit=1).records[0].asset_observation.metadata
    assert (badge["status"].value, badge["run_id"].value) == ("Error", failed.run_id)
