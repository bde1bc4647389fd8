"""Write-back in Dagster: one unpartitioned asset per integration and object (and for Lead conversion, campaign
membership and activities), `salesforce/<integration>/write_back/<Object>`, downstream of its source (an external
asset unless something else defines it), with the push's counts as metadata; the `write_back_rejections` check on
each; and a `write_back_<integration>` job."""

from collections.abc import Iterable, Iterator

import dagster as dg

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import (
    ACTIVITY,
    IntegrationConfig,
    SyncConfig,
    WriteBackActivities,
    WriteBackObjectConfig,
    WriteBackSource,
)
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, run_holder
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.demo.prospects import ensure_demo_source
from salesforce_sync.runs.health import SyncDeferred
from salesforce_sync.runs.lease import SyncLeaseBusy, acquire_lease
from salesforce_sync.runs.write_back import check_pushable, push_one
from salesforce_sync.store import SyncEvent
from salesforce_sync.sync.write_back import rejection_rate

WRITE_BACK = "write_back"
REJECTIONS_CHECK = "write_back_rejections"


def write_back_asset_key(integration_id: str, object_type: str) -> dg.AssetKey:
    return dg.AssetKey(["salesforce", integration_id, WRITE_BACK, object_type])


def write_back_job_name(integration_id: str) -> str:
    return f"write_back_{integration_id}"


def _source(integration: IntegrationConfig, name: str) -> WriteBackSource:
    """The settings holding the source a write-back reads (Lead conversion reads the Leads' source)."""
    assert integration.write_back is not None
    if name == "CampaignMember":
        assert integration.write_back.campaign_members is not None
        return integration.write_back.campaign_members
    if name == ACTIVITY:
        assert integration.write_back.activities is not None
        return integration.write_back.activities
    return integration.write_back.objects["Lead" if name == "LeadConversion" else name]  # type: ignore[index]


def source_asset_key(integration: IntegrationConfig, name: str) -> dg.AssetKey | None:
    """The asset a write-back reads: the configured upstream key, else audience/<project>/<table>; none for a
    query source without one."""
    settings = _source(integration, name)
    if settings.upstream_asset_key:
        return dg.AssetKey(list(settings.upstream_asset_key))
    return dg.AssetKey(["audience", integration.project, settings.table]) if settings.table else None


def _upstream(integration: IntegrationConfig, name: str) -> list[dg.AssetKey]:
    """What a write-back follows: its source; conversions also the Leads' push, and membership and activities
    every push of people before them (they are written on the Contacts and Leads those made)."""
    assert integration.write_back is not None
    pushed = integration.write_back.pushed
    people = ("Contact", "Lead", "LeadConversion")
    before = {"LeadConversion": ("Lead",), "CampaignMember": people, ACTIVITY: people}.get(name, ())
    source = source_asset_key(integration, name)
    return [*([source] if source and name != "LeadConversion" else []),
            *(write_back_asset_key(integration.id, other) for other in before if other in pushed)]


def _described(integration: IntegrationConfig, name: str) -> tuple[str, dict[str, object]]:
    assert integration.write_back is not None
    settings = _source(integration, name)
    where = f"table `{settings.table}`" if settings.table else "a query"
    of = f"of integration `{integration.id}` (project `{integration.project}`)"
    if name == "CampaignMember":
        members = integration.write_back.campaign_members
        assert members is not None
        return (f"People of {where} in the audience store made members of Campaign `{members.campaign}` {of}, "
                "their engagement as the member Status.",
                {"campaign": members.campaign, "create_missing_statuses": members.create_missing_statuses})
    if name == "LeadConversion":
        convert = integration.write_back.objects["Lead"].convert
        assert convert is not None
        return (f"Leads whose row of {where} reached stage {', '.join(convert.at_stage)} converted into Contacts "
                f"{of}.", {"stage_column": convert.stage_column, "at_stage": list(convert.at_stage),
                           "account": convert.account, "create_opportunity": convert.create_opportunity})
    if isinstance(settings, WriteBackActivities):
        return (f"New activities of {where} in the audience store written to Salesforce Tasks and Events {of}, once "
                "each (upsert on their key).",
                {"types": {name: kind.object for name, kind in settings.types.items()},
                 "external_id_field": settings.external_id_field})
    assert isinstance(settings, WriteBackObjectConfig)
    return (f"New and changed rows of {where} in the audience store written to Salesforce {name}s {of}.",
            {"match": list(settings.match_order(name)),  # type: ignore[arg-type]
             "external_id_field": settings.external_id_field or "-"})


def build_write_back_asset(integration: IntegrationConfig, object_type: str) -> dg.AssetsDefinition:
    """The asset of one of the integration's `write_back.pushed` (an object, LeadConversion, CampaignMember)."""
    key = write_back_asset_key(integration.id, object_type)
    description, metadata = _described(integration, object_type)

    @dg.asset(
        key=key,
        group_name=integration.id,
        deps=_upstream(integration, object_type),
        output_required=False,  # a push deferred by the API budget materializes nothing
        kinds={"salesforce", "python"},
        pool=f"salesforce_{integration.id}",
        tags={INTEGRATION_TAG: integration.id},
        owners=list(integration.owners),
        description=description,
        metadata={"project": integration.project, "object_type": object_type, **metadata},
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
                result = push_one(store, salesforce.client(integration), integration, object_type,
                                  run_id=context.run_id, confirm=lease.confirm)
            finally:
                lease.release()
        except SyncDeferred as err:
            context.log.warning(str(err))
            store.log_event(integration.project, integration.id, SyncEvent.SYNC_DEFERRED, object_type=object_type,
                            run_id=context.run_id, message=str(err))
            return
        except (SyncLeaseBusy, ConfigError) as err:  # busy, or a setting only the org can refute (a campaign)
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
