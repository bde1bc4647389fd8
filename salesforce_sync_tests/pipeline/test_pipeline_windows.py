"""Window syncs through the plain pipeline against an emulated org over HTTPS, on SQLite and PostgreSQL:
the first sync, incremental windows, reruns, late commits, sync rules, Bulk against REST, bad configs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import SyncBlocked
from salesforce_sync.runs.window import SyncWindow
from salesforce_sync.store import AudienceStore, IntegrationStatus, SyncEvent
from salesforce_sync.sync.errors import SyncRuleError
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    MAPPINGS,
    OBJECTS,
    RULES,
    assert_same_rows,
    counts_of,
    https_integration,
    load_config,
    objects_config,
    oracle_rows,
    stored_rows,
    sync_window,
)

PROJECT = "acme"
INTEGRATION = "crm"
ORG_SEED = 11
ORG_COUNTS = {"Lead": 300, "Contact": 150, "CampaignMember": 120}
INJECTION = "x' OR Name != '"


@pytest.fixture
def integration(org: EmulatedOrg, start: datetime) -> IntegrationConfig:
    return load_config(https_integration(org, INTEGRATION, PROJECT, start)).integrations[0]


def window(start: datetime, index: int) -> SyncWindow:
    return SyncWindow(start + index * HOUR, start + (index + 1) * HOUR, first=index == 0)


def assert_store_matches_org(store: AudienceStore, sf: Salesforce, end: datetime,
                             integration_id: str = INTEGRATION) -> None:
    for object_type in OBJECTS:
        assert_same_rows(stored_rows(store, PROJECT, integration_id, object_type),
                         oracle_rows(sf, integration_id, object_type, end))


def test_first_sync_equals_the_orgs_matching_records_field_by_field(
        store: AudienceStore, sf: Salesforce, integration: IntegrationConfig, start: datetime) -> None:
    results = sync_window(store, integration, window(start, 0))

    assert_store_matches_org(store, sf, start + HOUR)
    for object_type in OBJECTS:
        expected = oracle_rows(sf, INTEGRATION, object_type, start + HOUR)
        deleted = sum(row["deleted"] for row in expected.values())
        assert counts_of(results)[object_type] == (len(expected) - deleted, 0, deleted)
    # The comparison above only proves something if every kind of value occurs in the org.
    leads = stored_rows(store, PROJECT, INTEGRATION, "Lead")
    assert len(leads) < ORG_COUNTS["Lead"]  # the rules filtered some out
    assert any(row["deleted"] for row in leads.values()) and any(row["unsubscribed"] for row in leads.values())
    assert any(isinstance(row["properties"]["lead_score"], float) for row in leads.values())
    assert any(isinstance(row["properties"]["interests"], list) for row in leads.values())
    contacts = stored_rows(store, PROJECT, INTEGRATION, "Contact")
    assert any(len(row["properties"]["birthdate"] or "") == 10 for row in contacts.values())
    members = stored_rows(store, PROJECT, INTEGRATION, "CampaignMember")
    assert any(row["unsubscribed"] for row in members.values())
    assert {key.split("_")[2] for key in members} == {"CampaignMember"}


def live_leads(sf: Salesforce, *, in_campaign: bool, count: int) -> list[str]:
    """Ids of synced, updatable Leads that are (or are not) campaign members."""
    membership = "IN" if in_campaign else "NOT IN"
    soql = (f"SELECT Id FROM Lead WHERE Email != null AND Status = 'Working - Contacted' AND IsConverted = false "
            f"AND HasOptedOutOfEmail = false AND Id {membership} (SELECT LeadId FROM CampaignMember) ORDER BY Id")
    return [record["Id"] for record in sf.query_all(soql)["records"][:count]]


def test_incremental_window_moves_exactly_the_changes_and_leaves_other_rows_untouched(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, integration: IntegrationConfig,
        start: datetime) -> None:
    sync_window(store, integration, window(start, 0))
    before = {name: stored_rows(store, PROJECT, INTEGRATION, name, with_sync_times=True) for name in OBJECTS}
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)

    renamed = live_leads(sf, in_campaign=False, count=3)
    opted_out_lead = live_leads(sf, in_campaign=True, count=1)[0]
    opted_out_contact = sf.query("SELECT ContactId FROM CampaignMember WHERE ContactId != null AND "
                                 "Contact.HasOptedOutOfEmail = false ORDER BY Id LIMIT 1")["records"][0]["ContactId"]
    rephoned_contact = sf.query(f"SELECT Id FROM Contact WHERE IsDeleted = false AND Id != '{opted_out_contact}' "
                                "AND Id NOT IN (SELECT ContactId FROM CampaignMember) ORDER BY Id LIMIT 1"
                                )["records"][0]["Id"]
    created_lead = sf.Lead.create({"LastName": "Okafor", "FirstName": "Ngozi", "Company": "Umbrella Ltd",
                                   "Email": "ngozi.okafor@umbrella.example", "Lead_Score__c": 73,
                                   "Interests__c": "Automation;Events"})["id"]
    sf.Lead.create({"LastName": "NoEmail", "Company": "Filtered Inc"})  # outside the Email rule: never synced
    created_contact = sf.Contact.create({"LastName": "Lindqvist", "Email": "e.lindqvist@example.org"})["id"]
    sf.Lead.update(renamed[0], {"FirstName": "Renamed"})
    sf.Lead.update(renamed[1], {"Lead_Score__c": 99})
    sf.Lead.delete(renamed[2])
    sf.Lead.update(opted_out_lead, {"HasOptedOutOfEmail": True})
    sf.Contact.update(opted_out_contact, {"HasOptedOutOfEmail": True})
    sf.Contact.update(rephoned_contact, {"Phone": "+1 415 555 0100"})
    members = sf.query_all(f"SELECT Id FROM CampaignMember WHERE (LeadId = '{opted_out_lead}' OR ContactId = "
                           f"'{opted_out_contact}') AND (Status = 'Responded' OR Email != null)")["records"]
    assert members

    results = sync_window(store, integration, window(start, 1))

    assert counts_of(results) == {"Lead": (1, 3, 1), "Contact": (1, 2, 0), "CampaignMember": (0, len(members), 0)}
    assert_store_matches_org(store, sf, start + 2 * HOUR)
    after = {name: stored_rows(store, PROJECT, INTEGRATION, name, with_sync_times=True) for name in OBJECTS}
    changed = {f"sf_{INTEGRATION}_Lead_{lead_id}" for lead_id in [created_lead, *renamed, opted_out_lead]}
    changed |= {f"sf_{INTEGRATION}_Contact_{contact_id}"
                for contact_id in (created_contact, opted_out_contact, rephoned_contact)}
    changed |= {f"sf_{INTEGRATION}_CampaignMember_{member['Id']}" for member in members}
    for object_type in OBJECTS:
        untouched = set(before[object_type]) - changed
        assert {key: after[object_type][key] for key in untouched} == {key: before[object_type][key]
                                                                       for key in untouched}
        for key in set(after[object_type]) & changed:
            assert after[object_type][key]["last_synced_at"] > before[object_type].get(
                key, {"last_synced_at": after[object_type][key]["first_synced_at"] - HOUR})["last_synced_at"]
    assert after["Lead"][f"sf_{INTEGRATION}_Lead_{opted_out_lead}"]["unsubscribed"] is True
    assert all(after["CampaignMember"][f"sf_{INTEGRATION}_CampaignMember_{m['Id']}"]["unsubscribed"] for m in members)
    assert after["Lead"][f"sf_{INTEGRATION}_Lead_{renamed[2]}"]["deleted"] is True

    second_window = [entry for entry in store.sync_log(INTEGRATION, limit=1000)
                     if entry.window_start == start + HOUR]
    logged = {(entry.object_type, entry.event): entry.count for entry in second_window}
    assert logged[("Lead", SyncEvent.RECORDS_IMPORTED)] == 1
    assert logged[("Lead", SyncEvent.RECORDS_UPDATED)] == 3
    assert logged[("Lead", SyncEvent.RECORDS_DELETED)] == 1
    assert logged[("CampaignMember", SyncEvent.SYNC_COMPLETED)] == len(members)
    state = store.get_state(INTEGRATION, "Lead")
    assert (state.status, state.last_success_window_end) == (IntegrationStatus.ACTIVE, start + 2 * HOUR)


def test_rerunning_a_window_changes_nothing(store: AudienceStore, integration: IntegrationConfig,
                                            start: datetime) -> None:
    first = sync_window(store, integration, window(start, 0))
    before = {name: stored_rows(store, PROJECT, INTEGRATION, name, with_sync_times=True) for name in OBJECTS}

    rerun = sync_window(store, integration, window(start, 0))

    assert counts_of(rerun) == {name: (0, 0, 0) for name in OBJECTS}
    assert {name: result.counts.skipped for name, result in rerun.items()} == {
        name: result.counts.imported + result.counts.deleted for name, result in first.items()}
    assert {name: stored_rows(store, PROJECT, INTEGRATION, name, with_sync_times=True) for name in OBJECTS} == before


def test_a_late_commit_inside_the_overlap_is_caught_by_the_next_window(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, integration: IntegrationConfig,
        start: datetime) -> None:
    sync_window(store, integration, window(start, 0))
    org.control.set_clock(start + 2 * HOUR + timedelta(minutes=1), freeze=True)
    assert counts_of(sync_window(store, integration, window(start, 1))) == {name: (0, 0, 0) for name in OBJECTS}

    # A long transaction stamped three minutes before the second window closed becomes visible only now.
    stamp = start + 2 * HOUR - timedelta(minutes=3)
    late_lead = org.control.late_commit("Lead", stamp, {"LastName": "Late", "Company": "Slow Commit GmbH",
                                                        "Email": "late@slow-commit.example"})
    contact = sf.query("SELECT Id FROM Contact WHERE IsDeleted = false ORDER BY Id LIMIT 1")["records"][0]["Id"]
    org.control.late_commit("Contact", stamp, {"Title": "Late Editor", "Phone": "+49 30 1234567"}, record_id=contact)
    third = window(start, 2)
    assert stamp < third.start  # only the overlap re-reads it

    results = sync_window(store, integration, third)

    assert counts_of(results) == {"Lead": (1, 0, 0), "Contact": (0, 1, 0), "CampaignMember": (0, 0, 0)}
    leads = stored_rows(store, PROJECT, INTEGRATION, "Lead")
    assert leads[f"sf_{INTEGRATION}_Lead_{late_lead}"]["sf_modified_at"] == stamp
    assert_store_matches_org(store, sf, third.end)


def test_sync_rules_select_what_the_same_soql_selects_and_values_stay_literal(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    rules = {
        "Lead": ({"match": "any", "rules": [
            {"field": "Company", "operator": "equals", "value": INJECTION},
            {"field": "Status", "operator": "equals", "value": "Working - Contacted"},
            {"field": "Lead_Score__c", "operator": "greater_than", "value": 80}]},
            "Company = 'x\\' OR Name != \\'' OR Status = 'Working - Contacted' OR Lead_Score__c > 80"),
        "Contact": ({"match": "all", "rules": [
            {"field": "Email", "operator": "contains", "value": "_"},
            {"field": "Account.Name", "operator": "not_equals", "value": INJECTION}]},
            "Email LIKE '%\\_%' AND Account.Name != 'x\\' OR Name != \\''"),
        "CampaignMember": ({"rules": [{"field": "Campaign.Name", "operator": "starts_with",
                                        "value": "2026' OR Id != '"}]},
                           "Campaign.Name LIKE '2026\\' OR Id != \\'%'"),
    }
    objects = objects_config(**{name: {"sync_rules": rule, "field_mappings": MAPPINGS[name]}
                                for name, (rule, _) in rules.items()})
    integration = load_config(https_integration(org, INTEGRATION, PROJECT, start, objects=objects)).integrations[0]

    sync_window(store, integration, window(start, 0))

    sizes = {}
    for object_type, (_, soql) in rules.items():
        expected = oracle_rows(sf, INTEGRATION, object_type, start + HOUR, rules_soql=soql)
        assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, object_type), expected)
        everything = oracle_rows(sf, INTEGRATION, object_type, start + HOUR, rules_soql="")
        sizes[object_type] = (len(expected), len(everything))
    lead_count, all_leads = sizes["Lead"]
    contact_count, all_contacts = sizes["Contact"]
    assert 0 < lead_count < all_leads and 0 < contact_count < all_contacts  # the rules filtered, the quotes held
    assert sizes["CampaignMember"][0] == 0


@pytest.mark.parametrize("broken, named", [
    ({"Lead": {"sync_rules": RULES["Lead"],
               "field_mappings": [*MAPPINGS["Lead"], {"field": "Favourite_Colour__c", "property": "colour",
                                                      "type": "string"}]}},
     ("integration 'crm'", "Lead", "Favourite_Colour__c")),
    ({"Contact": {"sync_rules": {"rules": [{"field": "Nickname__c", "operator": "equals", "value": "Bob"}]},
                  "field_mappings": MAPPINGS["Contact"]}},
     ("integration 'crm'", "Contact", "Nickname__c")),
], ids=["mapping", "rule"])
def test_an_unknown_field_fails_the_sync_before_anything_is_fetched(
        org: EmulatedOrg, store: AudienceStore, start: datetime, broken: dict, named: tuple[str, ...]) -> None:
    integration = load_config(https_integration(org, INTEGRATION, PROJECT, start, objects=broken)).integrations[0]
    (object_type,) = broken
    org.control.reset_api_calls()

    with pytest.raises((SyncBlocked, SyncRuleError)) as failure:
        sync_window(store, integration, window(start, 0))

    assert all(part in str(failure.value) for part in named), str(failure.value)
    calls = org.control.api_calls()["by_endpoint"]
    assert not {"query", "queryMore", "bulk2.query.create"} & set(calls), calls
    assert store.users(PROJECT).empty and store.get_state(INTEGRATION, object_type) is None


def test_bulk_and_rest_give_the_same_store_rows_in_small_chunks(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    config = load_config(https_integration(org, "viarest", PROJECT, start, chunk_size=100),
                         https_integration(org, "viabulk", PROJECT, start, chunk_size=100, bulk_threshold=100))
    org.control.reset_api_calls()

    for integration in config.integrations:
        sync_window(store, integration, window(start, 0))

    calls = org.control.api_calls()["by_endpoint"]
    completed = {(entry.integration_id, entry.object_type): entry.details["bulk"]
                 for entry in store.sync_log(event=SyncEvent.SYNC_COMPLETED)}
    assert {key for key, bulk in completed.items() if bulk} == {("viabulk", name) for name in OBJECTS}
    assert calls["bulk2.query.create"] == len(OBJECTS)
    assert calls["bulk2.query.results"] > len(OBJECTS)  # several 100-record chunks per object
    assert calls["queryMore"] >= 1  # REST pages of 200 records: the Leads take two
    for object_type in OBJECTS:
        via_rest = stored_rows(store, PROJECT, "viarest", object_type)
        via_bulk = stored_rows(store, PROJECT, "viabulk", object_type)
        assert {key.replace("viarest", "viabulk", 1): row for key, row in via_rest.items()} == via_bulk
        assert_same_rows(via_bulk, oracle_rows(sf, "viabulk", object_type, start + HOUR))


def test_field_names_match_in_any_case_as_soql_reads_them(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    mappings = [{**mapping, "field": spelling} for mapping, spelling in zip(
        MAPPINGS["Lead"], ("company", "LEAD_SCORE__C", "interests__c"))]
    rules = {"match": "all", "rules": [
        {"field": "email", "operator": "is_set"},
        {"field": "STATUS", "operator": "not_equals", "value": "Closed - Not Converted"}]}
    objects = {"Lead": {"sync_rules": rules, "field_mappings": mappings}}
    integration = load_config(https_integration(org, INTEGRATION, PROJECT, start, objects=objects)).integrations[0]

    sync_window(store, integration, window(start, 0))

    assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, "Lead"),
                     oracle_rows(sf, INTEGRATION, "Lead", start + HOUR))
