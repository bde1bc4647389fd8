"""Sensors: one `sync_<integration>_windows` sensor per integration that requests a run for every completed
window (missed ones in one ranged run), and run-status sensors that keep the sync log and the status badge
right."""

from __future__ import annotations

import dagster as dg

from salesforce_sync.runs.alerts import announce
from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.errors import user_error_text
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, asset_key, pending_windows, synced_integration_id
from salesforce_sync.dagster_defs.resources import AudienceStoreResource
from salesforce_sync.store import IntegrationStatus, SyncEvent

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
MAX_WINDOWS_PER_RUN = 24 * 7
ACTIVE_RUNS_SCANNED = 200  # queued or running runs of the whole instance looked at for the integration's
ACTIVE_RUN_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                       dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def windows_sensor_name(integration_id: str) -> str:
    return f"sync_{integration_id}_windows"


def build_windows_sensor(integration: IntegrationConfig, job: dg.UnresolvedAssetJobDefinition,
                          partitions: dg.TimeWindowPartitionsDefinition) -> dg.SensorDefinition:
    """Requests the windows completed since the last successful sync: the whole history at first, in
    one run (the initial sync starts as soon as the integration is Active), then each new window; after
    downtime the missed windows go in one ranged run of at most MAX_WINDOWS_PER_RUN windows. Waits while
    a run of the integration is queued or running; a failed range is retried (its run key changes with
    the error). The store comes in as the `audience_store` resource, so its URL is read at evaluation."""

    @dg.sensor(name=windows_sensor_name(integration.id), job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Syncs integration {integration.id!r} every {integration.window_minutes} minutes.")
    def sync_completed_windows(context: dg.SensorEvaluationContext,
                 audience_store: AudienceStoreResource) -> dg.SensorResult | dg.SkipReason:
        active = context.instance.get_runs(filters=dg.RunsFilter(statuses=ACTIVE_RUN_STATUSES), limit=ACTIVE_RUNS_SCANNED)
        running = [run for run in active if synced_integration_id(run) == integration.id]
        if running:
            return dg.SkipReason(f"run {running[0].run_id} of {integration.id} is still queued or running")
        span = pending_windows(integration, partitions, audience_store.open())
        if span is None:
            return dg.SkipReason("no completed window since the last successful sync")
        start, end = span
        if integration.history == "historical_only" and start != partitions.get_first_partition_key():
            return dg.SkipReason("historical_only: the initial import is done and nothing syncs after it")
        if start != partitions.get_first_partition_key():  # the initial sync is one query over everything
            end = _cap(partitions, start, end)
        marker = _failure_marker(audience_store, integration)
        return dg.SensorResult(run_requests=[dg.RunRequest(
            run_key=f"{integration.id}:{start}..{end}:{marker}",
            tags={RANGE_START_TAG: start, RANGE_END_TAG: end, INTEGRATION_TAG: integration.id})],
            cursor=end)

    return sync_completed_windows


def _cap(partitions: dg.TimeWindowPartitionsDefinition, start: str, end: str) -> str:
    """The end key of at most MAX_WINDOWS_PER_RUN windows from start (counted without enumerating keys)."""
    first_window = partitions.time_window_for_partition_key(start)
    last_window = partitions.time_window_for_partition_key(end)
    span = last_window.end - first_window.start
    window = first_window.end - first_window.start
    if span <= window * MAX_WINDOWS_PER_RUN:
        return end
    cap_at = first_window.start + window * MAX_WINDOWS_PER_RUN
    return partitions.get_partition_key_for_timestamp((cap_at - window).timestamp())


def _failure_marker(store: AudienceStoreResource, integration: IntegrationConfig) -> str:
    audience = store.open()
    try:
        errors = [s.last_error_at for s in audience.states(integration.id) if s.last_error_at is not None]
    finally:
        audience.close()
    return max(errors).isoformat() if errors else "ok"


def build_run_status_sensors(integrations: dict[str, IntegrationConfig]) -> list[dg.SensorDefinition]:
    """On failure: `sync_failed` with the verbatim error (unless the sync already logged it), status
    Error, and an alert to the owners if they were not already told. On success: the status back to
    Active, and a recovery alert after a failure. Both watch every job of the code location and pick the
    runs that sync an integration (its sync job, a UI Materialize or backfill of its assets); both write
    through the `audience_store` resource."""

    def integration_of(run: dg.DagsterRun) -> IntegrationConfig | None:
        return integrations.get(synced_integration_id(run) or "")

    @dg.run_failure_sensor(name="sync_failure_log", default_status=dg.DefaultSensorStatus.RUNNING)
    def on_failure(context: dg.RunFailureSensorContext, audience_store: AudienceStoreResource) -> None:
        integration = integration_of(context.dagster_run)
        if integration is None:
            return
        error = _run_error(context)
        audience = audience_store.open()
        try:
            already = audience.sync_log(integration_id=integration.id, event=SyncEvent.SYNC_FAILED, limit=50)
            if not any(entry.run_id == context.dagster_run.run_id for entry in already):
                audience.log_event(integration.project, integration.id, SyncEvent.SYNC_FAILED,
                                   run_id=context.dagster_run.run_id, message=error)
            audience.record_failure(integration.id, None, error=error)
            announce(audience, integration, "failing", message=error, run_id=context.dagster_run.run_id)
        finally:
            audience.close()
        for object_type in integration.object_types:  # the badge, shown on the integration's assets
            context.instance.report_runless_asset_event(dg.AssetObservation(
                asset_key(integration.id, object_type),
                metadata={"status": IntegrationStatus.ERROR.value, "error": error,
                          "run_id": context.dagster_run.run_id}))

    @dg.run_status_sensor(name="sync_success_status", run_status=dg.DagsterRunStatus.SUCCESS,
                          default_status=dg.DefaultSensorStatus.RUNNING)
    def on_success(context: dg.RunStatusSensorContext, audience_store: AudienceStoreResource) -> None:
        integration = integration_of(context.dagster_run)
        if integration is None:
            return
        audience = audience_store.open()
        try:
            audience.set_status(integration.id, None, IntegrationStatus.ACTIVE)
            announce(audience, integration, "recovered", message="the last sync succeeded",
                     run_id=context.dagster_run.run_id)
        finally:
            audience.close()

    return [on_failure, on_success]


def _run_error(context: dg.RunFailureSensorContext) -> str:
    """The failing steps' errors as the sync logs them (each once), else the run's own failure message."""
    messages = [user_error_text(event.step_failure_data.error) for event in context.get_step_failure_events()
                if event.step_failure_data and event.step_failure_data.error]
    return "\n".join(dict.fromkeys(messages)) or (context.failure_event.message or "run failed")

