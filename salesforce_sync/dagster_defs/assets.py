"""One asset per (integration, object), partitioned by sync window."""

import inspect
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.config.status import missing_settings
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.runs.health import SyncBlocked, SyncDeferred, preflight, with_auto_mappings
from salesforce_sync.runs.window import (
    SyncWindow,
    WindowSync,
    check_settings,
    plan_window,
    record_window_failure,
    window_for_run,
)
from salesforce_sync.salesforce.org_clock import OrgClock, org_clock, skew_problem
from salesforce_sync.store import AudienceStore, OrgAlreadyRegisteredError, SyncEvent
from salesforce_sync.store.lease import LeaseHolder
from salesforce_sync.store.schema import audience_users
from salesforce_sync.runs.lease import SyncLease, SyncLeaseBusy, acquire_lease, dagster_holder

INTEGRATION_TAG = "salesforce_sync/integration"
PARTITION_FORMAT = "%Y-%m-%d-%H:%M"


def asset_key(integration_id: str, object_type: str) -> dg.AssetKey:
    return dg.AssetKey(["salesforce", integration_id, object_type])


def sync_job_name(integration_id: str) -> str:
    return f"sync_{integration_id}"


def synced_integration_id(run: dg.DagsterRun) -> str | None:
    """The integration whose records a run syncs, however it was launched: a UI Materialize or backfill runs
    the implicit asset job with the integration's assets selected and no integration tag; the sync job
    carries the tag. None for write-backs, health checks, previews and anything else."""
    for key in run.asset_selection or ():
        if key.path[0] == "salesforce" and len(key.path) == 3:  # not salesforce/<integration>/write_back/<Object>
            return key.path[1]
    integration_id = run.tags.get(INTEGRATION_TAG)
    return integration_id if integration_id and run.job_name == sync_job_name(integration_id) else None


def sync_partitions(integration: IntegrationConfig) -> dg.TimeWindowPartitionsDefinition:
    """Windows of the integration's frequency from its start; only complete windows exist."""
    return dg.TimeWindowPartitionsDefinition(cron_schedule=integration.partition_cron(), start=integration.start,
                                             fmt=PARTITION_FORMAT, timezone="UTC")


def pending_windows(integration: IntegrationConfig, partitions: dg.TimeWindowPartitionsDefinition,
                    store: AudienceStore, *, full: bool = False) -> tuple[str, str] | None:
    """First and last partition keys still to sync: every window for a full re-sync or a first sync,
    else from the window holding the oldest object's last synced end to the last complete window (for a
    manual integration at least the last complete window: "sync now" reads on to the present).
    Closes `store`. Reads only the ends of the partition range, never enumerating every key."""
    try:
        last = partitions.get_last_partition_key()
        if last is None:
            return None
        first = partitions.get_first_partition_key()
        if full:
            return first, last
        ends = [state.last_success_window_end for state in store.states(integration.id)
                if state.object_type in integration.object_types]
    finally:
        store.close()
    if len(ends) < len(integration.object_types) or any(end is None for end in ends):
        return first, last
    resume = min(ends)
    if resume >= partitions.time_window_for_partition_key(last).end:
        # A manual integration syncs on demand up to the present: the last window again, read on from there.
        return (last, last) if integration.manual else None
    return partitions.get_partition_key_for_timestamp(resume.timestamp()), last


def run_created_at(context: dg.AssetExecutionContext) -> datetime:
    """When the run was created: the moment every step of it judges "now" by."""
    record = context.instance.get_run_record_by_id(context.run_id)
    created = record.create_timestamp if record is not None else datetime.now(UTC)
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)


def sync_window(context: dg.AssetExecutionContext, partitions: dg.TimeWindowPartitionsDefinition,
                integration: IntegrationConfig, clock: OrgClock, watermark: datetime | None) -> SyncWindow:
    """The run's window (a single-run backfill spans its whole range), with first/full and the read bounds
    judged as of the run's creation, so every object of one run gets the same."""
    window = context.partition_time_window
    as_of = run_created_at(context)
    with dg.partition_loading_context(effective_dt=as_of):
        last_key = partitions.get_last_partition_key()
    last_end = partitions.time_window_for_partition_key(last_key).end if last_key else window.end
    return window_for_run(integration, window.start, window.end, first_start=partitions.start,
                          last_complete_end=last_end, org_as_of=clock.org_time(as_of), watermark=watermark)


LEASE_OWNER_TAG = "salesforce_sync/lease_owner"
"""Set by a launcher that already holds the integration's lease (the CLI): the run's steps re-enter it."""
LEASE_HOLDER_TAG = "salesforce_sync/lease_holder"


def run_holder(context: dg.AssetExecutionContext) -> LeaseHolder:
    tags = context.run.tags
    return dagster_holder(context.run_id, tags.get(LEASE_OWNER_TAG), tags.get(LEASE_HOLDER_TAG))


def standard_metadata(integration: IntegrationConfig, object_type: str) -> dict:
    """Dagster's own keys: the store table, the object's mapped properties as its columns, and where the
    asset is built (code reference)."""
    columns = [dg.TableColumn(mapping.property, mapping.type, description=" or ".join(mapping.fields))
               for mapping in integration.mappings(object_type)]
    source = inspect.getsourcefile(build_object_asset)
    line = inspect.getsourcelines(build_object_asset)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)  # code references are beta in Dagster 1.13
        references = dg.CodeReferencesMetadataValue(code_references=[
            dg.LocalFileCodeReference(file_path=str(source), line_number=line, label="asset definition")])
    return {"dagster/table_name": audience_users.name, "dagster/column_schema": dg.TableSchema(columns=columns),
            "dagster/code_references": references}


def build_object_asset(integration: IntegrationConfig, object_type: str,
                       partitions: dg.TimeWindowPartitionsDefinition) -> dg.AssetsDefinition:
    missing = missing_settings(integration)
    description = (f"Salesforce {object_type} records of integration `{integration.id}` (project "
                   f"`{integration.project}`), upserted into the audience store by sync window.")
    if missing:
        description += " **Incomplete**: " + "; ".join(missing)

    @dg.asset(
        key=asset_key(integration.id, object_type),
        group_name=integration.id,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="audience_store_io",
        output_required=False,  # a sync deferred by the API budget materializes nothing
        kinds={"salesforce", "python"},
        pool=f"salesforce_{integration.id}",
        tags={INTEGRATION_TAG: integration.id},
        description=description,
        owners=list(integration.owners),
        metadata={"project": integration.project, "object_type": object_type,
                  "frequency_minutes": integration.window_minutes, "history": integration.history,
                  "formula_refresh_minutes": integration.formula_refresh_minutes,
                  **standard_metadata(integration, object_type)},
    )
    def sync_object(context: dg.AssetExecutionContext, salesforce: SalesforceResource,
                    audience_store: AudienceStoreResource) -> Iterator[dg.Output[WindowSync]]:
        if missing:
            raise dg.Failure(f"integration {integration.id!r} is Incomplete and does not sync: " + "; ".join(missing))
        if not integration.active:
            raise dg.Failure(f"integration {integration.id!r} is Inactive (active: false) and does not sync")
        window = context.partition_time_window
        store = audience_store.open()
        lease: SyncLease | None = None
        try:
            store.log_event(integration.project, integration.id, SyncEvent.SYNC_STARTED, object_type=object_type,
                            window_start=window.start, window_end=window.end, run_id=context.run_id)
            lease = acquire_lease(store, integration.id, run_holder(context), wait=integration.lease_wait)
            client = salesforce.client(integration)
            clock = org_clock(client)
            calls_at_start = client.api_calls
            org_id = client.identity()["organization_id"]
            _refuse_another_org(store, integration, org_id)
            store.register_org(org_id, integration.project, integration.id)
            effective = with_auto_mappings(store, integration, object_type)
            describes = preflight(client, effective, object_type)
            state = store.get_state(integration.id, object_type)
            window = sync_window(context, partitions, integration, clock,
                                 state.last_success_window_end if state else None)
            skew = skew_problem(integration.id, clock.skew, integration.overlap) if clock.skew is not None else None
            if skew:
                context.log.warning(skew)
            window = check_settings(store, effective, object_type, window, run_id=context.run_id)
            plan = plan_window(client, effective, object_type, window, describes, calls_at_start=calls_at_start)
            plan.lease, plan.clock_skew = lease, clock.skew
        except SyncDeferred as err:
            _record_deferral(context, store, integration, object_type, window, str(err))
            if lease is not None:
                lease.release()
            return
        except (SyncBlocked, OrgAlreadyRegisteredError, SyncLeaseBusy) as err:
            _end_failed(store, integration, object_type, window, context.run_id, str(err), lease)
            raise dg.Failure(str(err)) from None
        except Exception as err:
            _end_failed(store, integration, object_type, window, context.run_id, str(err), lease)
            raise
        finally:
            store.close()
        yield dg.Output(plan)

    return sync_object


def _record_deferral(context: dg.AssetExecutionContext, store: AudienceStore, integration: IntegrationConfig,
                     object_type: str, window: SyncWindow, reason: str) -> None:
    """A deferred sync is neither success nor failure: a `sync_deferred` entry and a warning, the watermark
    and the status untouched; the sensor's next request (its range then ends at a newer window) retries it."""
    context.log.warning(reason)
    store.log_event(integration.project, integration.id, SyncEvent.SYNC_DEFERRED, object_type=object_type,
                    window_start=window.start, window_end=window.end, run_id=context.run_id, message=reason)


def _refuse_another_org(store: AudienceStore, integration: IntegrationConfig, org_id: str) -> None:
    """An integration's records come from one org: logging in to another would mix two orgs under one id."""
    others = [o.org_id for o in store.orgs(integration_id=integration.id) if o.org_id[:15] != org_id[:15]]
    if others:
        raise SyncBlocked(f"integration {integration.id!r} is connected to Salesforce org {others[0]}, but its "
                          f"credentials now log in to org {org_id}; use a new integration id for another org")


def _end_failed(store: AudienceStore, integration: IntegrationConfig, object_type: str,
                window: SyncWindow | dg.TimeWindow, run_id: str, error: str, lease: SyncLease | None) -> None:
    """Record why the step failed and let go of the lease (the IO manager never runs to release it)."""
    try:
        record_window_failure(store, integration, object_type, window, run_id=run_id, error=error)
    finally:
        if lease is not None:
            lease.release()


def build_integration_assets(integration: IntegrationConfig) -> list[dg.AssetsDefinition]:
    partitions = sync_partitions(integration)
    return [build_object_asset(integration, object_type, partitions) for object_type in integration.object_types]
