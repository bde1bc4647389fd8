"""Formula freshness against an emulated org over HTTPS, on SQLite and PostgreSQL: a formula's input (the
Account's Tier__c behind Contact.Account_Tier__c) or a grandparent's value (Account.Owner.Name) changes without
the Contact's LastModifiedDate moving, so an incremental window misses it and the next formula refresh writes it,
to the affected rows only, over REST or Bulk, with the content hash a later window agrees with."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import pandas as pd
import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.health import SyncBlocked, SyncDeferred
from salesforce_sync.runs.formula_refresh import FormulaRefresh, refresh_due, refresh_formulas
from salesforce_sync.runs.lease import cli_holder
from salesforce_sync.runs.window import SyncWindow
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync_tests.pipeline.support import HOUR, https_integration, load_config, soql_datetime, sync_window

PROJECT = "acme"
INTEGRATION = "crm"
ORG_SEED = 29
ORG_COUNTS = {"Lead": 20, "Contact": 240, "CampaignMember": 0}
TIERS = ("Gold", "Silver", "Bronze")
#: A formula and plain fields: no relationship path, so no parent's change selects a Contact in a window.
FORMULA_MAPPINGS = [{"field": "Account_Tier__c", "property": "account_tier", "type": "string"},
                    {"field": "Lifetime_Value__c", "property": "lifetime_value", "type": "number"},
                    {"field": "Birthdate", "property": "birthdate", "type": "date"}]
#: Relationship paths: a window selects the Contacts whose Account changed, but not those whose Account's owner did.
PATH_MAPPINGS = [{"field": "Account.Name", "property": "company", "type": "string"},
                 {"field": "Account.Owner.Name", "property": "account_owner", "type": "string"},
                 {"field": "Account_Tier__c", "property": "account_tier", "type": "string"}]


def contacts_integration(org: EmulatedOrg, start: datetime, mappings: list[dict[str, str]],
                         **settings: Any) -> IntegrationConfig:
    objects = {"Contact": {"sync_rules": {"rules": []}, "field_mappings": mappings}}
    return load_config(https_integration(org, INTEGRATION, PROJECT, start, objects=objects, chunk_size=100,
                                         **settings)).integrations[0]


def window(start: datetime, index: int, **flags: bool) -> SyncWindow:
    return SyncWindow(start + index * HOUR, start + (index + 1) * HOUR, first=index == 0, **flags)


def refresh(store: AudienceStore, integration: IntegrationConfig) -> FormulaRefresh:
    with connect(integration) as client:
        [result] = refresh_formulas(store, client, integration, cli_holder(), run_id="refresh-run")
    return result


def contacts_by(sf: Salesforce, parent_field: str, before: datetime) -> dict[str, list[str]]:
    """Live Contact Ids by a parent's Id, for the parents all of whose Contacts were last modified before
    `before` (so no window from `before` on reads them by their own stamp)."""
    records = sf.query_all(f"SELECT Id, LastModifiedDate, {parent_field} FROM Contact WHERE AccountId != null")
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records["records"]:
        parent: Any = record
        for part in parent_field.split("."):
            parent = parent[part]
        groups[parent].append(record)
    cutoff = soql_datetime(before - HOUR)
    return {parent: [r["Id"] for r in group] for parent, group in groups.items()
            if all(r["LastModifiedDate"][:19] + "Z" < cutoff for r in group)}


def stamps(sf: Salesforce, ids: list[str]) -> dict[str, tuple[str, str]]:
    listed = ", ".join(f"'{record_id}'" for record_id in ids)
    records = sf.query_all(f"SELECT Id, LastModifiedDate, SystemModstamp FROM Contact WHERE Id IN ({listed})")
    return {r["Id"]: (r["LastModifiedDate"], r["SystemModstamp"]) for r in records["records"]}


def stored(store: AudienceStore) -> dict[str, dict[str, Any]]:
    frame = store.users(PROJECT, INTEGRATION, "Contact")
    return {row["salesforce_id"]: {name: value if isinstance(value, (dict, list)) or not pd.isna(value) else None
                                   for name, value in row.items()} for row in frame.to_dict("records")}


def org_values(sf: Salesforce, path: str) -> dict[str, Any]:
    """Each live Contact's value of a field path, straight from the org."""
    records = sf.query_all(f"SELECT Id, {path} FROM Contact")["records"]
    values = {}
    for record in records:
        value: Any = record
        for part in path.split("."):
            value = value[part] if value else None
        values[record["Id"]] = value
    return values


def assert_only_changed(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], changed: set[str],
                        property_name: str) -> None:
    """Rows in `changed` differ in `property_name` (and their sync time) only; every other row is untouched."""
    assert before.keys() == after.keys()
    for record_id, row in before.items():
        if record_id not in changed:
            assert after[record_id] == row, record_id
            continue
        assert after[record_id]["properties"][property_name] != row["properties"][property_name]
        assert after[record_id]["sf_modified_at"] == row["sf_modified_at"]
        assert after[record_id]["last_synced_at"] > row["last_synced_at"]
        others = {k: v for k, v in row["properties"].items() if k != property_name}
        assert {k: v for k, v in after[record_id]["properties"].items() if k != property_name} == others
        assert {k: after[record_id][k] for k in ("email", "unsubscribed", "deleted")} == \
            {k: row[k] for k in ("email", "unsubscribed", "deleted")}


def test_a_changed_formula_input_reaches_the_store_on_the_next_refresh_not_in_a_window(
        store: AudienceStore, sf: Salesforce, org: EmulatedOrg, start: datetime) -> None:
    integration = contacts_integration(org, start, FORMULA_MAPPINGS)
    sync_window(store, integration, window(start, 0))
    org.control.move_clock(HOUR)
    account, contacts = max(contacts_by(sf, "AccountId", start).items(), key=lambda item: len(item[1]))
    assert len(contacts) >= 2
    current = sf.Account.get(account)["Tier__c"]
    before_stamps = stamps(sf, contacts)
    sf.Account.update(account, {"Tier__c": next(tier for tier in TIERS if tier != current)})

    assert stamps(sf, contacts) == before_stamps  # the formula changed, the Contacts' stamps did not
    before = stored(store)
    results = sync_window(store, integration, window(start, 1))
    assert results["Contact"].counts.updated == 0
    assert stored(store) == before  # the incremental window missed the change

    result = refresh(store, integration)
    after = stored(store)
    assert (result.rows_changed, result.bulk, result.fields) == (len(contacts), False, ("Account_Tier__c",))
    assert result.rows_read == sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    assert_only_changed(before, after, set(contacts), "account_tier")
    tiers = org_values(sf, "Account_Tier__c")
    assert {i: row["properties"]["account_tier"] for i, row in after.items() if not row["deleted"]} == tiers

    again = refresh(store, integration)
    assert (again.rows_read, again.rows_changed) == (result.rows_read, 0)
    assert stored(store) == after
    # A full re-read of the same versions finds the refreshed content hashes right: nothing to update.
    full = sync_window(store, integration, window(start, 0, full=True))
    assert (full["Contact"].counts.imported, full["Contact"].counts.updated) == (0, 0)
    assert {i: row["properties"] for i, row in stored(store).items()} == {i: row["properties"] for i, row in after.items()}
    entries = store.sync_log(INTEGRATION, event=SyncEvent.FORMULAS_REFRESHED)
    assert [(e.count, e.details["read"], e.details["bulk"]) for e in entries] == [
        (0, result.rows_read, False), (len(contacts), result.rows_read, False)]


def test_a_grandparents_change_reaches_the_store_on_the_next_refresh(
        store: AudienceStore, sf: Salesforce, org: EmulatedOrg, start: datetime) -> None:
    integration = contacts_integration(org, start, PATH_MAPPINGS)
    sync_window(store, integration, window(start, 0))
    org.control.move_clock(HOUR)
    owners = contacts_by(sf, "Account.OwnerId", start)
    owner, contacts = max(owners.items(), key=lambda item: len(item[1]))
    before_stamps = stamps(sf, contacts)
    sf.User.update(owner, {"LastName": "Lindqvist-Okafor"})

    assert stamps(sf, contacts) == before_stamps
    before = stored(store)
    sync_window(store, integration, window(start, 1))
    assert stored(store) == before  # the Account (the first hop a window follows) did not change

    result = refresh(store, integration)
    assert result.fields == ("Account.Name", "Account.Owner.Name", "Account_Tier__c")
    assert result.rows_changed == len(contacts)
    after = stored(store)
    assert_only_changed(before, after, set(contacts), "account_owner")
    assert all(after[i]["properties"]["account_owner"].endswith(" Lindqvist-Okafor") for i in contacts)
    assert refresh(store, integration).rows_changed == 0


def test_with_the_parent_mapped_a_window_already_reads_its_change_and_the_refresh_finds_nothing_left(
        store: AudienceStore, sf: Salesforce, org: EmulatedOrg, start: datetime) -> None:
    """Account.Name makes the Account a parent a window follows: a tier changed through the API moves the
    Account's stamp, so that window re-reads its Contacts, formula included."""
    integration = contacts_integration(org, start, [*FORMULA_MAPPINGS, PATH_MAPPINGS[0]])
    sync_window(store, integration, window(start, 0))
    org.control.move_clock(HOUR)
    account, contacts = max(contacts_by(sf, "AccountId", start).items(), key=lambda item: len(item[1]))
    current = sf.Account.get(account)["Tier__c"]
    sf.Account.update(account, {"Tier__c": next(tier for tier in TIERS if tier != current)})

    results = sync_window(store, integration, window(start, 1))

    assert results["Contact"].counts.updated == len(contacts)
    assert refresh(store, integration).rows_changed == 0


def test_above_the_bulk_threshold_the_refresh_reads_through_bulk_api(
        store: AudienceStore, sf: Salesforce, org: EmulatedOrg, start: datetime) -> None:
    integration = contacts_integration(org, start, FORMULA_MAPPINGS, bulk_threshold=50)
    sync_window(store, integration, window(start, 0))
    org.control.move_clock(HOUR)
    changed: set[str] = set()
    for account, contacts in list(contacts_by(sf, "AccountId", start).items())[:3]:
        current = sf.Account.get(account)["Tier__c"]
        sf.Account.update(account, {"Tier__c": next(tier for tier in TIERS if tier != current)})
        changed |= set(contacts)
    before = stored(store)
    org.control.reset_api_calls()

    result = refresh(store, integration)

    calls = org.control.api_calls()["by_endpoint"]
    assert any(endpoint.startswith("bulk2") for endpoint in calls), calls
    assert result.bulk and result.rows_changed == len(changed)
    assert result.rows_read == sf.query("SELECT COUNT() FROM Contact")["totalSize"] > 100  # several chunks
    assert_only_changed(before, stored(store), changed, "account_tier")
    assert refresh(store, integration).rows_changed == 0


def test_an_object_is_refreshed_only_once_synced_with_its_current_mappings(
        store: AudienceStore, sf: Salesforce, org: EmulatedOrg, start: datetime) -> None:
    integration = contacts_integration(org, start, FORMULA_MAPPINGS)
    assert refresh(store, integration).skipped.startswith("never synced")
    sync_window(store, integration, window(start, 0))
    assert refresh_due(store, integration, start + HOUR) == ()  # the first sync read every formula value
    assert refresh_due(store, integration, start + 7 * HOUR) == ("Contact",)
    remapped = contacts_integration(org, start, FORMULA_MAPPINGS[:2])
    assert "next sync re-reads every record" in refresh(store, remapped).skipped


def test_a_zero_cadence_turns_the_scheduled_refresh_off(store: AudienceStore, org: EmulatedOrg,
                                                         start: datetime) -> None:
    integration = contacts_integration(org, start, FORMULA_MAPPINGS, formula_refresh_minutes=0)
    sync_window(store, integration, window(start, 0))
    assert integration.formula_refresh_every is None
    assert refresh_due(store, integration, start + 100 * HOUR) == ()


def test_a_refresh_over_the_api_budget_is_deferred_before_reading_and_runs_once_the_quota_allows(
        store: AudienceStore, sf: Salesforce, org: EmulatedOrg, start: datetime) -> None:
    integration = contacts_integration(org, start, FORMULA_MAPPINGS, bulk_threshold=0, api_budget_percent=50)
    sync_window(store, integration, window(start, 0))
    account, contacts = next(iter(contacts_by(sf, "AccountId", start).items()))
    current = sf.Account.get(account)["Tier__c"]
    sf.Account.update(account, {"Tier__c": next(tier for tier in TIERS if tier != current)})
    before = stored(store)
    preflight_and_count = 3  # /limits, the Contact describe, the COUNT()
    org.control.reset_api_calls()
    org.control.set_api_limit(2 * (org.control.api_calls()["used"] + preflight_and_count + 3))  # a 50% budget

    with pytest.raises(SyncDeferred, match="the Contact formula refresh of .* deferred"):
        refresh(store, integration)

    assert not any(endpoint.startswith("bulk2") for endpoint in org.control.api_calls()["by_endpoint"])
    assert stored(store) == before
    [deferred] = store.sync_log(INTEGRATION, event=SyncEvent.SYNC_DEFERRED)
    assert deferred.details == {"formula_refresh": True} and deferred.object_type == "Contact"
    assert store.object_settings(INTEGRATION, "Contact").formula_refreshed_at is None
    org.control.set_api_limit(15_000)
    assert refresh(store, integration).rows_changed == len(contacts)


def test_a_mapping_the_org_no_longer_has_stops_the_refresh_with_the_checks_message(
        store: AudienceStore, org: EmulatedOrg, start: datetime) -> None:
    org.control.add_field("Contact", "Segment__c", "string", label="Segment")
    integration = contacts_integration(org, start, [*FORMULA_MAPPINGS, {"field": "Segment__c", "property": "segment",
                                                                        "type": "string"}])
    sync_window(store, integration, window(start, 0))
    org.control.delete_field("Contact", "Segment__c")

    with pytest.raises(SyncBlocked, match="Contact.Segment__c \\(property 'segment'\\) does not exist in the org"):
        refresh(store, integration)

    [failed] = store.sync_log(INTEGRATION, event=SyncEvent.SYNC_FAILED)
    assert failed.details == {"formula_refresh": True} and "Segment__c" in failed.message
