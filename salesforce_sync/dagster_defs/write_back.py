"""Write-back in Dagster: one unpartitioned asset per integration and object, `salesforce/<integration>/write_back/
<Object>`, downstream of its source (an external asset unless something else defines it), with the push's counts
as metadata; the `write_back_rejections` check on each; and a `write_back_<integration>` job."""

from collections.abc import Iterable, Iterator
from functools import partial

import dagster as dg

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import (
    ACTIVITY,
    IntegrationConfig,
    SyncConfig,
    WriteBackActivities,
    WriteBackObjectConfig,
)
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, run_holder
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.demo.prospects import ensure_demo_source
from salesforce_sync.runs.health import SyncDeferred
from salesforce_sync.runs.lease import SyncLeaseBusy, acquire_lease
from salesforce_sync.runs.push import check_pushable, push_object
from salesforce_sync.runs.push_activities import push_activities
from salesforce_sync.store import SyncEvent
from salesforce_sync.sync.write_back import rejection_rate

WRITE_BACK = "write_back"
REJECTIONS_CHECK = "write_back_rejections"


def write_back_asset_key(integration_id: str, object_type: str) -> dg.AssetKey:
    return dg.AssetKey(["salesforce", integration_id, WRITE_BACK, object_type])


def write_back_job_name(integration_id: str) -> str:
    return f"write_back_{integration_id}"


def source_settings(integration: IntegrationConfig, object_type: str) -> WriteBackObjectConfig | WriteBackActivities:
    """The write-back settings of an object, or of the activities (`Activity`)."""
    write_back = integration.write_back
    assert write_back is not None
    if object_type == ACTIVITY:
        assert write_back.activities is not None
        return write_back.activities
    return write_back.objects[object_type]  # type: ignore[index]


def source_asset_key(integration: IntegrationConfig, object_type: str) -> dg.AssetKey | None:
    """The asset a write-back reads: the configured upstream key, else audience/<project>/<table>; none for a
    query source without one."""
    settings = source_settings(integration, object_type)
    if settings.upstream_asset_key:
        return dg.AssetKey(list(settings.upstream_asset_key))
    return dg.AssetKey(["audience", integration.project, settings.table]) if settings.table else None


def build_write_back_asset(integration: IntegrationConfig, object_type: str) -> dg.AssetsDefinition:
    settings = source_settings(integration, object_type)
    source = source_asset_key(integration, object_type)
    where = f"table `{settings.table}`" if settings.table else "a query"
    key = write_back_asset_key(integration.id, object_type)
    deps = [source] if source else []
    if object_type == ACTIVITY:  # the people an activity is written on are written first
        deps += [write_back_asset_key(integration.id, person) for person in ("Contact", "Lead")
                 if person in integration.write_back.objects]  # type: ignore[union-attr]

    @dg.asset(
        key=key,
        group_name=integration.id,
        deps=deps,
        output_required=False,  # a push deferred by the API budget materializes nothing
        kinds={"salesforce", "python"},
        pool=f"salesforce_{integration.id}",
        tags={INTEGRATION_TAG: integration.id},
        owners=list(integration.owners),
        description=(f"New and changed rows of {where} in the audience store written to Salesforce "
                     f"{'Tasks and Events' if object_type == ACTIVITY else object_type + 's'} "
                     f"of integration `{integration.id}` (project `{integration.project}`)."),
        metadata={"project": integration.project, "object_type": object_type,
                  **({"types": {name: kind.object for name, kind in settings.types.items()}}
                     if isinstance(settings, WriteBackActivities) else {"match": list(settings.match_order(
                         object_type))}),  # type: ignore[arg-type]
                  "external_id_field": settings.external_id_field or "-"},
    )
    def write_back(context: dg.AssetExecutionContext, salesforce: SalesforceResource,
                   audience_store: AudienceStoreResource) -> Iterator[dg.MaterializeResult]:
        if not integration.active:
            raise dg.Failure(f"integration {integration.id!r} is Inactive (active: false) and does not push")
        try:
            check_pushable(integration)
        except ConfigError as err:
            raise dg.Failure(str(err)) from None
        store = audience_store.open()
        try:
            ensure_demo_source(store, integration)
            lease = acquire_lease(store, integration.id, run_holder(context), wait=integration.lease_wait)
            try:
                push = push_activities if object_type == ACTIVITY else partial(push_object, object_type=object_type)
                result = push(store, salesforce.client(integration), integration, run_id=context.run_id,
                              confirm=lease.confirm)
            finally:
                lease.release()
        except SyncDeferred as err:
            context.log.warning(str(err))
            store.log_event(integration.project, integration.id, SyncEvent.SYNC_DEFERRED, object_type=object_type,
                            run_id=context.run_id, message=str(err))
            return
        except SyncLeaseBusy as err:
            raise dg.Failure(str(err)) from None
        finally:
            store.close()
        yield dg.MaterializeResult(metadata={
            **{name: dg.MetadataValue.int(count) for name, count in result.counts.items()},
            "api_calls": dg.MetadataValue.int(result.api_calls),
            "write_calls": dg.MetadataValue.int(result.write_calls),
            "rejection_rate": dg.MetadataValue.float(round(result.rejection_rate, 4)),
            "duration_seconds": dg.MetadataValue.float(round(result.duration_seconds, 3)),
        })

    return write_back


def build_rejections_check(integration: IntegrationConfig, object_type: str) -> dg.AssetChecksDefinition:
    assert integration.write_back is not None
    threshold = integration.write_back.max_rejection_rate

    @dg.asset_check(asset=write_back_asset_key(integration.id, object_type), name=REJECTIONS_CHECK,
                    description=f"At most {threshold:.0%} of the source rows pushed stand rejected by Salesforce.")
    def rejections(audience_store: AudienceStoreResource) -> dg.AssetCheckResult:
        store = audience_store.open()
        try:
            counts = store.write_back.outcome_counts(integration.id, object_type)
        finally:
            store.close()
        rate, rejected, rows = rejection_rate(counts), counts.get("rejected", 0), sum(counts.values())
        return dg.AssetCheckResult(
            passed=rate <= threshold, severity=dg.AssetCheckSeverity.ERROR,
            description=(f"{rejected} of {rows} rows stand rejected ({rate:.1%}; at most {threshold:.0%} allowed); "
                         f"see salesforce-sync rejected {integration.id}"),
            metadata={"rejected": rejected, "rows": rows, "rejection_rate": round(rate, 4),
                      "max_rejection_rate": threshold})

    return rejections


def build_write_back_definitions(integration: IntegrationConfig) -> dg.Definitions:
    """An integration's write-back assets, their rejection checks and its write_back job (empty without one)."""
    if integration.write_back is None:
        return dg.Definitions()
    objects = integration.write_back.pushed
    assets = [build_write_back_asset(integration, object_type) for object_type in objects]
    return dg.Definitions(
        assets=assets,
        asset_checks=[build_rejections_check(integration, object_type) for object_type in objects],
        jobs=[dg.define_asset_job(name=write_back_job_name(integration.id), selection=dg.AssetSelection.assets(*assets),
                                  tags={INTEGRATION_TAG: integration.id},
                                  description=f"Push integration {integration.id!r}'s write-back to Salesforce.")])


def source_specs(config: SyncConfig, defined: Iterable[dg.AssetKey]) -> list[dg.AssetSpec]:
    """External assets for the write-back sources nothing else defines (each once), so lineage shows them."""
    known = set(defined)
    specs: dict[dg.AssetKey, dg.AssetSpec] = {}
    for integration in config.integrations:
        for object_type in integration.write_back.pushed if integration.write_back else ():
            key = source_asset_key(integration, object_type)
            if key is not None and key not in known and key not in specs:
                specs[key] = dg.AssetSpec(key, group_name=f"audience_{integration.project}", kinds={"sql"},
                                          description="A table of the audience store that a write-back reads.")
    return list(specs.values())
