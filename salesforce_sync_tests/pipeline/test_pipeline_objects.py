"""Accounts, Opportunities and Campaigns synced like the people objects, against an emulated org over HTTPS, on
SQLite and PostgreSQL: a full then an incremental window (changes made through the org's REST API, a delete, a
record leaving its rules), their sync rules and typed mappings, Contacts linked to their Account, preview counts,
and people built from the person objects only."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.assets import asset_key
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.dagster_defs.people import people_asset_key
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.runs.preview import preview_counts
from salesforce_sync.runs.window import SyncWindow
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    assert_same_rows,
    counts_of,
    https_integration,
    load_config,
    objects_config,
    soql_datetime,
    stored_rows,
    sync_window,
)

PROJECT = "acme"
INTEGRATION = "crm"
ORG_SEED = 23
ORG_COUNTS = {"Lead": 60, "Contact": 80, "CampaignMember": 30, "Account": 25, "Opportunity": 60, "Campaign": 6}
NON_PERSON = ("Account", "Opportunity", "Campaign")

#: (field, property, type) per object, and its rules as settings and as hand-written SOQL for the oracle.
MAPPINGS: dict[str, list[tuple[str, str, str]]] = {
    "Account": [("Industry", "industry", "string"), ("AnnualRevenue", "annual_revenue", "number"),
                ("Tier__c", "tier", "string"), ("Phone", "phone", "string")],
    "Opportunity": [("StageName", "stage", "string"), ("Amount", "amount", "number"),
                    ("CloseDate", "close_date", "date"), ("IsWon", "won", "boolean"),
                    ("Account.Name", "company", "string")],
    "Campaign": [("Status", "status", "string"), ("IsActive", "active", "boolean"),
                 ("StartDate", "start_date", "date"), ("BudgetedCost", "budget", "number")],
}
RULES: dict[str, dict[str, Any]] = {
    "Account": {"rules": []},
    "Opportunity": {"match": "all", "rules": [{"field": "StageName", "operator": "not_equals", "value": "Closed Lost"}]},
    "Campaign": {"rules": [{"field": "Name", "operator": "is_set"}]},
}
RULES_SOQL = {"Account": None, "Opportunity": "StageName != 'Closed Lost'", "Campaign": "Name != null"}
#: What every row of the object carries whatever its mappings: its Name by default, an Opportunity its Account.
DEFAULTS = {"Account": {"name": "Name"}, "Opportunity": {"name": "Name", "account_id": "AccountId"},
            "Campaign": {"name": "Name"}}


def settings(object_type: str) -> dict[str, Any]:
    return {"sync_rules": RULES[object_type],
            "field_mappings": [{"field": f, "property": p, "type": t} for f, p, t in MAPPINGS[object_type]]}


@pytest.fixture(params=["LastModifiedDate", "SystemModstamp"])
def integration(request: pytest.FixtureRequest, org: EmulatedOrg, start: datetime) -> IntegrationConfig:
    objects = objects_config(**{name: settings(name) for name in NON_PERSON})
    return load_config(https_integration(org, INTEGRATION, PROJECT, start, objects=objects,
                                         cursor_field=request.param)).integrations[0]


def window(start: datetime, index: int) -> SyncWindow:
    return SyncWindow(start + index * HOUR, start + (index + 1) * HOUR, first=index == 0)


def value_at(record: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        record = record[part] if record else None
    return record


def oracle(sf: Salesforce, object_type: str, end: datetime) -> dict[str, dict[str, Any]]:
    """The rows the org's matching records (modified before `end`) should become, converted by hand: no person
    columns, every mapped value in properties."""
    paths = ["Id", "IsDeleted", "LastModifiedDate", *DEFAULTS[object_type].values(),
             *(field for field, _, _ in MAPPINGS[object_type])]
    rules = RULES_SOQL[object_type]
    soql = (f"SELECT {', '.join(dict.fromkeys(paths))} FROM {object_type} "
            f"WHERE LastModifiedDate < {soql_datetime(end)}" + (f" AND ({rules})" if rules else ""))
    rows = {}
    for record in sf.query_all(soql, include_deleted=True)["records"]:
        properties = {name: record[path] for name, path in DEFAULTS[object_type].items()}
        for field, name, kind in MAPPINGS[object_type]:
            value = value_at(record, field)
            properties[name] = float(value) if kind == "number" and value is not None else value
        rows[f"sf_{INTEGRATION}_{object_type}_{record['Id']}"] = {
            "salesforce_id": record["Id"], "email": None, "first_name": None, "last_name": None, "phone": None,
            "unsubscribed": None, "deleted": record["IsDeleted"], "properties": properties,
            "sf_modified_at": pd.Timestamp(record["LastModifiedDate"])}
    return rows


def assert_objects_match_org(store: AudienceStore, sf: Salesforce, end: datetime) -> None:
    """The stored rows equal the oracle's, but for those kept as out of scope (the oracle lists none)."""
    for object_type in NON_PERSON:
        reasons = removed_reasons(store, object_type)
        stored = {key: row for key, row in stored_rows(store, PROJECT, INTEGRATION, object_type).items()
                  if reasons[row["salesforce_id"]] != "out_of_scope"}
        assert_same_rows(stored, oracle(sf, object_type, end))


def removed_reasons(store: AudienceStore, object_type: str) -> dict[str, str | None]:
    frame = store.users(PROJECT, INTEGRATION, object_type)
    return {sf_id: None if pd.isna(reason) else reason for sf_id, reason in zip(frame["salesforce_id"],
                                                                                  frame["removed_reason"])}


def test_accounts_opportunities_and_campaigns_sync_in_full_then_incrementally(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, integration: IntegrationConfig,
        start: datetime) -> None:
    results = sync_window(store, integration, window(start, 0))

    assert_objects_match_org(store, sf, start + HOUR)
    for object_type in NON_PERSON:
        expected = oracle(sf, object_type, start + HOUR)
        deleted = sum(row["deleted"] for row in expected.values())
        assert expected and counts_of(results)[object_type] == (len(expected) - deleted, 0, deleted)
    opportunities = stored_rows(store, PROJECT, INTEGRATION, "Opportunity")
    closed_lost = sf.query("SELECT COUNT() FROM Opportunity WHERE StageName = 'Closed Lost'")["totalSize"]
    assert closed_lost and len(opportunities) == ORG_COUNTS["Opportunity"] - closed_lost  # the StageName rule
    assert {row["properties"]["stage"] for row in opportunities.values()} >= {"Closed Won", "Prospecting"}
    assert any(isinstance(row["properties"]["amount"], float) for row in opportunities.values())
    assert any(row["properties"]["won"] is True for row in opportunities.values())
    # A Contact's row names its Account: the person can be joined to the company's row.
    contacts = stored_rows(store, PROJECT, INTEGRATION, "Contact")
    accounts = stored_rows(store, PROJECT, INTEGRATION, "Account")
    org_links = {r["Id"]: r["AccountId"] for r in sf.query_all("SELECT Id, AccountId FROM Contact", include_deleted=True)["records"]}
    linked = {row["salesforce_id"]: row["properties"]["account_id"] for row in contacts.values()}
    assert linked == {contact: org_links[contact] for contact in linked} and any(linked.values())
    assert all(f"sf_{INTEGRATION}_Account_{account}" in accounts for account in linked.values() if account)

    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    live = "SELECT Id FROM Opportunity WHERE IsDeleted = false AND StageName = 'Prospecting' ORDER BY Id"
    repriced, lost, removed = [r["Id"] for r in sf.query_all(live)["records"][:3]]
    sf.Opportunity.update(repriced, {"Amount": 12345.5})
    sf.Opportunity.update(lost, {"StageName": "Closed Lost"})
    sf.Opportunity.delete(removed)
    account = next(iter(accounts.values()))["salesforce_id"]
    sf.Account.update(account, {"Industry": "Biotechnology", "Tier__c": "Gold"})
    created = sf.Campaign.create({"Name": "Spring Webinar", "Status": "Planned", "IsActive": True,
                                  "StartDate": "2027-03-01", "BudgetedCost": 2500})["id"]

    results = sync_window(store, integration, window(start, 1))

    # One Opportunity repriced; one deleted and one lost (out of its rules) are no longer live.
    assert counts_of(results) == {"Lead": (0, 0, 0), "Contact": (0, 0, 0), "CampaignMember": (0, 0, 0),
                                  "Account": (0, 1, 0), "Opportunity": (0, 1, 2), "Campaign": (1, 0, 0)}
    assert_objects_match_org(store, sf, start + 2 * HOUR)
    reasons = removed_reasons(store, "Opportunity")
    assert reasons[removed] == "deleted" and reasons[lost] == "out_of_scope" and reasons[repriced] is None
    stored = stored_rows(store, PROJECT, INTEGRATION, "Opportunity")[f"sf_{INTEGRATION}_Opportunity_{repriced}"]
    assert stored["properties"]["amount"] == 12345.5
    campaign = stored_rows(store, PROJECT, INTEGRATION, "Campaign")[f"sf_{INTEGRATION}_Campaign_{created}"]
    assert campaign["properties"] == {"name": "Spring Webinar", "status": "Planned", "active": True,
                                      "start_date": "2027-03-01", "budget": 2500.0}


def test_preview_counts_what_a_full_sync_stores_live(
        store: AudienceStore, sf: Salesforce, integration: IntegrationConfig, start: datetime) -> None:
    with connect(integration) as client:
        counts = {r.object_type: r.count for r in preview_counts(client, integration, NON_PERSON)}
    sync_window(store, integration, window(start, 0))

    for object_type in NON_PERSON:
        live = store.users(PROJECT, INTEGRATION, object_type, include_deleted=False)
        assert counts[object_type] == len(live) > 0, object_type
    assert counts["Opportunity"] == sf.query("SELECT COUNT() FROM Opportunity WHERE StageName != 'Closed Lost'"
                                             )["totalSize"]


def test_people_are_built_from_leads_contacts_and_members_only(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, integration: IntegrationConfig,
        start: datetime) -> None:
    sync_window(store, integration, window(start, 0))
    built = rebuild_people(store, PROJECT)

    people_rows = sum(len(store.users(PROJECT, INTEGRATION, name, include_deleted=False))
                      for name in ("Lead", "Contact", "CampaignMember"))
    assert built.rebuilt and built.records == people_rows
    # An Account is nobody: a change to it alone does not even rebuild the people.
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    account = stored_rows(store, PROJECT, INTEGRATION, "Account")
    sf.Account.update(next(iter(account.values()))["salesforce_id"], {"Industry": "Energy"})
    accounts_only = integration.model_copy(update={"objects": {"Account": integration.objects["Account"]}})
    assert counts_of(sync_window(store, accounts_only, window(start, 1)))["Account"] == (0, 1, 0)
    assert rebuild_people(store, PROJECT).rebuilt is False
    assert rebuild_people(store, PROJECT, force=True).records == people_rows

    # In Dagster the people asset follows only the person objects' assets.
    repository = build_definitions(load_config(
        https_integration(org, INTEGRATION, PROJECT, start,
                          objects=objects_config(**{name: settings(name) for name in NON_PERSON})))
    ).get_repository_def()
    deps = repository.asset_graph.get(people_asset_key(PROJECT)).parent_keys
    assert deps == {asset_key(INTEGRATION, name) for name in ("Lead", "Contact", "CampaignMember")}
    assert {asset_key(INTEGRATION, name) for name in NON_PERSON} <= repository.asset_graph.get_all_asset_keys()
