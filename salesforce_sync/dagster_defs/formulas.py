"""Formula refresh in Dagster: the `formula_refresh_<integration>` job, and the `refresh_<integration>_formulas`
sensor that requests it when an object's formula values are due for a re-read (see `runs.formula_refresh`). Each
run reports per object, as an observation on the object's asset, when it refreshed and what it changed."""

from datetime import UTC, datetime
from typing import Any

import dagster as dg

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, LEASE_HOLDER_TAG, LEASE_OWNER_TAG, asset_key
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.runs.formula_refresh import FormulaRefresh, refresh_due, refresh_formulas
from salesforce_sync.runs.health import SyncBlocked, SyncDeferred
from salesforce_sync.runs.lease import SyncLeaseBusy, dagster_holder


def formula_refresh_job_name(integration_id: str) -> str:
    return f"formula_refresh_{integration_id}"


def formula_refresh_sensor_name(integration_id: str) -> str:
    return f"refresh_{integration_id}_formulas"


def build_formula_refresh_job(integration: IntegrationConfig) -> dg.JobDefinition:
    """Re-reads the mapped formula fields and relationship paths of every synced object of the integration. A
    refresh over the API budget is deferred (a `sync_deferred` entry, the run succeeds)."""

    @dg.op(name=f"refresh_formulas_{integration.id}", tags={INTEGRATION_TAG: integration.id},
           pool=f"salesforce_{integration.id}")
    def refresh_op(context: dg.OpExecutionContext, salesforce: SalesforceResource,
                   audience_store: AudienceStoreResource) -> None:
        tags = context.run.tags
        holder = dagster_holder(context.run_id, tags.get(LEASE_OWNER_TAG), tags.get(LEASE_HOLDER_TAG))
        store = audience_store.open()
        try:
            results = refresh_formulas(store, salesforce.client(integration), integration, holder,
                                       run_id=context.run_id, say=context.log.info)
        except SyncDeferred as err:  # logged as sync_deferred; the sensor asks again at the next cadence
            context.log.warning(str(err))
            return
        except (SyncBlocked, SyncLeaseBusy) as err:
            raise dg.Failure(str(err)) from None
        finally:
            store.close()
        for result in results:
            context.log_event(dg.AssetObservation(asset_key(integration.id, result.object_type),
                                                  metadata=refresh_metadata(integration, result)))

    @dg.job(name=formula_refresh_job_name(integration.id), tags={INTEGRATION_TAG: integration.id},
            description=f"Re-read the mapped formula fields and relationship paths of integration "
                        f"{integration.id!r} and write the values that changed.")
    def formula_refresh_job() -> None:
        refresh_op()

    return formula_refresh_job


def refresh_metadata(integration: IntegrationConfig, result: FormulaRefresh) -> dict[str, Any]:
    """What the object's asset shows of a refresh: the cadence, when it ran and what it read and changed."""
    metadata: dict[str, Any] = {"formula_refresh_minutes": integration.formula_refresh_minutes}
    if result.skipped:
        return metadata | {"formula_refresh_skipped": result.skipped}
    return metadata | {
        "last_formula_refresh": dg.MetadataValue.timestamp(result.refreshed_at),
        "formula_fields": ", ".join(result.fields) or "none", "formula_rows_read": result.rows_read,
        "formula_rows_changed": result.rows_changed, "api_calls": result.api_calls, "bulk": result.bulk}


def build_formula_refresh_sensor(integration: IntegrationConfig, job: dg.JobDefinition) -> dg.SensorDefinition:
    """Requests a refresh when an object synced at least once last had its formula values all read the cadence
    ago or more (a first or full sync counts). One request per cadence slot: a deferred or failed refresh is
    asked again one cadence later, and the formula_freshness check fails at twice the cadence."""
    cadence_seconds = integration.formula_refresh_minutes * 60

    @dg.sensor(name=formula_refresh_sensor_name(integration.id), job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description=f"Re-reads integration {integration.id!r}'s formula fields and relationship paths every "
                           f"{integration.formula_refresh_minutes} minutes.")
    def refresh_due_formulas(context: dg.SensorEvaluationContext,
                             audience_store: AudienceStoreResource) -> dg.RunRequest | dg.SkipReason:
        now = datetime.now(UTC)
        store = audience_store.open()
        try:
            due = refresh_due(store, integration, now)
        finally:
            store.close()
        if not due:
            return dg.SkipReason(f"no object's formula refresh is due (every {integration.formula_refresh_minutes} "
                                 "minutes)")
        slot = int(now.timestamp()) // cadence_seconds
        return dg.RunRequest(run_key=f"{integration.id}:formulas:{slot}", tags={INTEGRATION_TAG: integration.id})

    return refresh_due_formulas
