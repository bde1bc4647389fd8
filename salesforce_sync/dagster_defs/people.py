"""One people asset per project, `audience/<project>/people`, rebuilt after its integrations' syncs."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from salesforce_sync.config.models import PERSON_OBJECTS, IntegrationConfig, ObjectType, SyncConfig
from salesforce_sync.dagster_defs.assets import asset_key
from salesforce_sync.dagster_defs.resources import AudienceStoreResource
from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.store.schema import people

PEOPLE_AUTOMATION_SENSOR = "people_automation"

#: After any synced object of the project updates, once no sync of it is running (a partition of an
#: object that was never synced does not hold the people back: a deferred window would hold them forever).
AFTER_SYNCS = (dg.AutomationCondition.any_deps_updated().since_last_handled()
               & ~dg.AutomationCondition.any_deps_in_progress()
               & ~dg.AutomationCondition.in_progress()).with_label("after_syncs")


def people_asset_key(project: str) -> dg.AssetKey:
    return dg.AssetKey(["audience", project, "people"])


def person_objects(integration: IntegrationConfig) -> tuple[ObjectType, ...]:
    """The integration's objects whose records are people: only their syncs change the people."""
    return tuple(o for o in integration.object_types if o in PERSON_OBJECTS)


def build_people_asset(project: str, integrations: Sequence[IntegrationConfig]) -> dg.AssetsDefinition:
    deps = [asset_key(i.id, object_type) for i in integrations for object_type in person_objects(i)]

    @dg.asset(
        key=people_asset_key(project),
        group_name="audience",
        deps=deps,
        automation_condition=AFTER_SYNCS,
        kinds={"python"},
        description=(f"The people of project `{project}`: its live synced Leads, Contacts and CampaignMembers "
                     "grouped (a converted Lead with its Contact, a CampaignMember with its Lead or Contact, "
                     "records sharing a normalised email), with a primary record and a merged opt-out."),
        metadata={"project": project, "dagster/table_name": people.name},
    )
    def people_of_project(audience_store: AudienceStoreResource) -> dg.MaterializeResult:
        store = audience_store.open()
        try:
            counts = rebuild_people(store, project)
        finally:
            store.close()
        return dg.MaterializeResult(metadata={
            "people": counts.people, "records": counts.records, "merged_records": counts.merged,
            "rebuilt": counts.rebuilt, "dagster/row_count": counts.people})

    return people_of_project


def build_people_definitions(config: SyncConfig) -> dg.Definitions:
    """A people asset for every project with synced person objects, and the sensor that evaluates their automation
    (running by default: Dagster's own automation sensor starts stopped)."""
    assets = []
    for project in config.projects:
        integrations = [i for i in config.integrations if i.project == project.id and person_objects(i)]
        if integrations:
            assets.append(build_people_asset(project.id, integrations))
    if not assets:
        return dg.Definitions()
    sensor = dg.AutomationConditionSensorDefinition(
        PEOPLE_AUTOMATION_SENSOR, target=dg.AssetSelection.assets(*assets),
        default_status=dg.DefaultSensorStatus.RUNNING)
    return dg.Definitions(assets=assets, sensors=[sensor])
