"""Near-real-time sync under Dagster: the `change_capture_<integration>` sensor drains the change events that
arrived since the stored replay id (its cursor is the replay id it requested up to) and requests a
`micro_sync_<integration>` run that applies them (change_capture.mode: sensor). The logic is plain Python in
runs/change_capture.py and runs/micro_sync.py."""

import contextlib
import time
from datetime import UTC, datetime

import dagster as dg
import grpc
import requests

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, LEASE_HOLDER_TAG, LEASE_OWNER_TAG, asset_key
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.dagster_defs.sensors import ACTIVE_RUN_STATUSES
from salesforce_sync.runs.change_capture import ChangeFeed, read_plan
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.health import SyncDeferred
from salesforce_sync.runs.lease import acquire_lease, dagster_holder
from salesforce_sync.runs.micro_sync import MicroSyncResult, apply_micro_sync, settle_without_work
from salesforce_sync.salesforce.auth import SalesforceAuthError
from salesforce_sync.salesforce.client import SalesforceClient, SalesforceRequestError
from salesforce_sync.salesforce.pubsub import PubSubError
from salesforce_sync.sync.change_events import MicroSyncPlan


def change_capture_sensor_name(integration_id: str) -> str:
    return f"change_capture_{integration_id}"


def micro_sync_job_name(integration_id: str) -> str:
    return f"micro_sync_{integration_id}"


class MicroSyncConfig(dg.Config):
    plan: str
    """The micro-sync plan as JSON (sync.change_events.MicroSyncPlan.to_json)."""


def build_micro_sync_job(integration: IntegrationConfig) -> dg.JobDefinition:
    """`micro_sync_<integration>`: apply one batch of change events under the integration's lease, reporting its
    counts and end-to-end lag (event commit -> stored) as metadata, also on each object's asset."""

    @dg.op(name=f"apply_changes_{integration.id}", tags={INTEGRATION_TAG: integration.id})
    def apply_changes(context: dg.OpExecutionContext, config: MicroSyncConfig, salesforce: SalesforceResource,
                      audience_store: AudienceStoreResource) -> None:
        plan = MicroSyncPlan.from_json(config.plan)
        tags = context.run.tags
        holder = dagster_holder(context.run_id, tags.get(LEASE_OWNER_TAG), tags.get(LEASE_HOLDER_TAG))
        store = audience_store.open()
        try:
            with acquire_lease(store, integration.id, holder, wait=integration.lease_wait) as lease:
                result = apply_micro_sync(store, salesforce.client(integration), integration, plan, lease=lease,
                                          run_id=context.run_id, say=context.log.debug)
        except SyncDeferred as deferred:  # the events wait in Salesforce; the sensor asks again
            context.log.warning(str(deferred))
            return
        finally:
            store.close()
        context.add_output_metadata(result.metadata())
        for observation in micro_sync_observations(integration, result):
            context.log_event(observation)
        lag = f", lag median {result.lag.median_seconds:.2f} s, max {result.lag.max_seconds:.2f} s" if result.lag else ""
        context.log.info(f"micro-sync of {plan.events} change events: {result.counts.changed} records stored{lag}")

    @dg.job(name=micro_sync_job_name(integration.id), tags={INTEGRATION_TAG: integration.id},
            description=f"Apply a batch of integration {integration.id!r}'s change events (requested by its "
                        f"change_capture sensor).")
    def micro_sync_job() -> None:
        apply_changes()

    return micro_sync_job


def micro_sync_observations(integration: IntegrationConfig, result: MicroSyncResult,
                            **extra: str) -> list[dg.AssetObservation]:
    """One observation per object a micro-sync stored: its counts and the lag, so the object's asset page shows
    the change capture's progress (from a micro_sync run, or reported runless by a standing listener)."""
    metadata = result.metadata()
    return [dg.AssetObservation(asset_key(integration.id, object_type), metadata={
        **metadata, **extra, "records_imported": counts.imported, "records_updated": counts.updated,
        "records_deleted": counts.deleted, "records_skipped": counts.skipped})
        for object_type, counts in result.by_object.items()]


_FEEDS: dict[str, tuple[contextlib.ExitStack, SalesforceClient, ChangeFeed | None]] = {}
"""Per integration (by its settings): the connection and open subscription a sensor keeps between ticks, so an
idle stream is not reopened every few seconds and events committed between ticks are already on their way."""


def _connection(integration: IntegrationConfig) -> tuple[SalesforceClient, ChangeFeed | None]:
    key = integration.model_dump_json()
    if key not in _FEEDS:
        stack = contextlib.ExitStack()
        _FEEDS[key] = (stack, stack.enter_context(connect(integration)), None)
    return _FEEDS[key][1], _FEEDS[key][2]


def _forget(integration: IntegrationConfig) -> None:
    stack, _, feed = _FEEDS.pop(integration.model_dump_json(), (None, None, None))
    if feed is not None:
        feed.close()
    if stack is not None:
        stack.close()


def build_change_capture_sensor(integration: IntegrationConfig, job: dg.JobDefinition) -> dg.SensorDefinition:
    """Each tick (while no micro-sync of the integration is queued or running): the events since the stored
    replay id, read for at most `drain_seconds` and until a debounce window passes quietly or `max_batch`
    arrived; a run request when they ask for work, else their position stored at once (nothing to apply)."""
    settings = integration.change_capture

    @dg.sensor(name=change_capture_sensor_name(integration.id), job=job,
               minimum_interval_seconds=settings.sensor_interval_seconds,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Change events of integration {integration.id!r} into micro-syncs.")
    def change_capture(context: dg.SensorEvaluationContext,
                       audience_store: AudienceStoreResource) -> dg.SensorResult | dg.SkipReason:
        active = context.instance.get_runs(filters=dg.RunsFilter(job_name=job.name, statuses=ACTIVE_RUN_STATUSES),
                                           limit=1)
        if active:
            return dg.SkipReason(f"micro-sync run {active[0].run_id} is still queued or running")
        store = audience_store.open()
        try:
            client, feed = _connection(integration)
            plan, feed = read_plan(store, client, integration, max_seconds=settings.drain_seconds, feed=feed,
                                   return_when_idle=True)
            key = integration.model_dump_json()
            _FEEDS[key] = (*_FEEDS[key][:2], feed)
            if not plan.needs_work:
                settle_without_work(store, integration, plan)
                return dg.SkipReason(f"{plan.events} change events, none to apply ({plan.own} our own write-back's)")
            oldest = datetime.fromtimestamp(min(plan.commits_ms) / 1000, UTC)
            store.record_change_capture_heard(integration.id, settings.topic, pending_since=oldest)
        except (ConfigError, SalesforceAuthError, SalesforceRequestError, PubSubError, grpc.RpcError,
                requests.RequestException) as err:
            _forget(integration)
            return dg.SkipReason(f"integration {integration.id!r}: cannot read its change events: {err}")
        finally:
            store.close()
        until = plan.until.hex() if plan.until else ""
        return dg.SensorResult(run_requests=[dg.RunRequest(
            run_key=f"{integration.id}:{until}:{time.time_ns()}",
            run_config={"ops": {f"apply_changes_{integration.id}": {"config": {"plan": plan.to_json()}}}},
            tags={INTEGRATION_TAG: integration.id})], cursor=until)

    return change_capture

