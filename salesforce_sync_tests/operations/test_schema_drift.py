"""schema_drift: fields the org added since an object's mappings were written (the describe's field names kept
when its settings fingerprint was recorded), custom fields first; with auto_map_new_fields the new custom fields
are mapped by describe type and the next sync re-reads the object. Against the emulator over TLS."""

from __future__ import annotations

import dagster as dg
import pytest

from salesforce_sync.config.models import FieldMapping
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.sync.schema_drift import auto_mappings, new_fields, property_name
from salesforce_sync_tests.operations.support import (
    OBJECTS,
    build_config,
    check_evaluations,
    key,
    last_complete_window_start,
    org_integration,
    range_tags,
    run_job,
)

DESCRIBE = {"fields": [{"name": "Id", "type": "id"}, {"name": "Email", "type": "email"},
                       {"name": "Region", "type": "string"}, {"name": "Zeta__c", "type": "double"},
                       {"name": "Alpha_Tier__c", "type": "picklist"}, {"name": "Owner__c", "type": "reference"},
                       {"name": "Is_VIP__c", "type": "boolean"}, {"name": "Email__c", "type": "email"},
                       {"name": "Topics__c", "type": "multipicklist"}, {"name": "Signed_Up_On__c", "type": "date"}]}


def test_property_names_come_from_the_api_name_in_snake_case_without_the_suffix() -> None:
    assert property_name("Favorite_Color__c") == "favorite_color"
    assert property_name("AnnualSpend__c") == "annual_spend"
    assert property_name("NPSScore__c") == "nps_score"
    assert property_name("Is_VIP__c") == "is_vip"


def test_new_fields_skip_the_baseline_and_mapped_fields_and_list_custom_fields_first() -> None:
    mapped = (FieldMapping(fields=("Topics__c",), property="topics", type="array"),)
    found = new_fields(DESCRIBE, ["Id", "EMAIL"], mapped)
    assert [new.name for new in found] == ["Alpha_Tier__c", "Email__c", "Is_VIP__c", "Owner__c", "Signed_Up_On__c",
                                           "Zeta__c", "Region"]


def test_only_new_custom_fields_of_a_mappable_type_and_a_free_name_are_mapped() -> None:
    taken = (FieldMapping(fields=("Other",), property="is_vip", type="string"),)
    mapped = auto_mappings(new_fields(DESCRIBE, ["Id", "Email"], ()), taken)
    assert {(m.fields, m.property, m.type) for m in mapped} == {
        (("Alpha_Tier__c",), "alpha_tier", "string"), (("Zeta__c",), "zeta", "number"),
        (("Topics__c",), "topics", "array"), (("Signed_Up_On__c",), "signed_up_on", "date")}
    # Not mapped: Region (standard), Owner__c (a reference), Email__c (the email store column), Is_VIP__c (taken).


@pytest.mark.slow
def test_added_custom_fields_are_listed_then_mapped_and_re_read_when_opted_in(
        org: EmulatedOrg, app_store_url: str, instance: dg.DagsterInstance) -> None:
    lead_only = {"Lead": OBJECTS["Lead"]}
    watching = build_definitions(build_config(org_integration(org, objects=lead_only)))
    context = dg.build_sensor_context(instance=instance, definitions=watching,
                                      resources={"audience_store": watching.resources["audience_store"]})
    tags = watching.resolve_sensor_def("sync_acme_windows")(context).run_requests[0].tags
    assert run_job(watching, "sync_acme", instance, tags).success  # records the baseline with the fingerprint
    with AudienceStore(app_store_url) as store:
        baseline = store.object_settings("acme", "Lead").known_fields
    assert "Company" in baseline and "Favorite_Color__c" not in baseline

    assert check_evaluations(run_job(watching, "health_acme", instance), "schema_drift")["Lead"].passed
    org.control.add_field("Lead", "Favorite_Color__c", "string", label="Favorite Color")
    org.control.add_field("Lead", "Yearly_Spend__c", "currency", label="Yearly Spend")
    drift = check_evaluations(run_job(watching, "health_acme", instance), "schema_drift")["Lead"]
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    assert "2 field(s) added" in drift.description and "Favorite_Color__c (string), Yearly_Spend__c" in drift.description
    assert drift.metadata["auto_mapped"].value == 0

    mapping = build_definitions(build_config(org_integration(org, objects=lead_only, auto_map_new_fields=True)))
    mapped = check_evaluations(run_job(mapping, "health_acme", instance), "schema_drift")["Lead"]
    assert "Favorite_Color__c -> favorite_color (string), Yearly_Spend__c -> yearly_spend (number)" in \
        mapped.description
    sf = org.simple_salesforce()
    lead_id = sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.Lead.update(lead_id, {"Favorite_Color__c": "teal", "Yearly_Spend__c": 1250.5})

    latest = key(last_complete_window_start())  # an incremental window: only the new fingerprint re-reads all
    synced = run_job(mapping, "sync_acme", instance, range_tags(latest, latest))

    assert synced.success
    with AudienceStore(app_store_url) as store:
        [changed] = store.sync_log("acme", SyncEvent.SETTINGS_CHANGED)
        users = store.users("ops", "acme", "Lead").set_index("salesforce_id")
        settings = store.object_settings("acme", "Lead")
    assert changed.run_id == synced.run_id and "re-reading every record" in changed.message
    assert {"Favorite_Color__c", "Yearly_Spend__c"} <= set(settings.known_fields)
    properties = users.loc[lead_id, "properties"]
    assert (properties["favorite_color"], properties["yearly_spend"]) == ("teal", 1250.5)
    assert all("favorite_color" in row for row in users["properties"])  # every stored Lead was re-read
    assert check_evaluations(run_job(mapping, "health_acme", instance), "schema_drift")["Lead"].passed
