"""Stored rows follow what we map and what the rules select, through the plain pipeline against an emulated
org on SQLite and PostgreSQL: a new mapping and a renamed parent reach every stored row on the next sync,
changed settings re-read the object in full (logged), records leaving the rules and hard-deleted records
stop being live without a full re-sync, and records that come back are live again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from simple_salesforce import Salesforce

from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.health import preflight
from salesforce_sync.runs.window import SyncWindow, plan_window
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.sync.soql import soql_datetime
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    MAPPINGS,
    OBJECTS,
    assert_same_rows,
    https_integration,
    load_config,
    objects_config,
    oracle_rows,
    stored_rows,
    sync_window,
)

PROJECT = "acme"
INTEGRATION = "crm"
ORG_SEED = 23
ORG_COUNTS = {"Lead": 120, "Contact": 80, "CampaignMember": 60}
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def window(start: datetime, index: int) -> SyncWindow:
    return SyncWindow(start + index * HOUR, start + (index + 1) * HOUR, first=index == 0)


def integration_with(org: EmulatedOrg, start: datetime, **settings):
    return load_config(https_integration(org, INTEGRATION, PROJECT, start, **settings)).integrations[0]


def live(store: AudienceStore, object_type: str) -> dict[str, dict]:
    return {key: row for key, row in stored_rows(store, PROJECT, INTEGRATION, object_type).items()
            if not row["deleted"]}


def reasons(store: AudienceStore, object_type: str) -> dict[str, str | None]:
    frame = store.users(PROJECT, INTEGRATION, object_type)
    return {sf_id: reason if isinstance(reason, str) else None
            for sf_id, reason in zip(frame["salesforce_id"], frame["removed_reason"])}


def test_a_new_mapping_re_reads_the_object_in_full_and_reaches_every_stored_row(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    sync_window(store, integration_with(org, start), window(start, 0))
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    lead_mappings = [*MAPPINGS["Lead"], {"field": "Industry", "property": "industry", "type": "string"}]
    changed = integration_with(org, start, objects=objects_config(
        Lead={"sync_rules": {"match": "all", "rules": [{"field": "Email", "operator": "is_set"},
                                                       {"field": "Status", "operator": "not_equals",
                                                        "value": "Closed - Not Converted"}]},
              "field_mappings": lead_mappings}))

    results = sync_window(store, changed, window(start, 1))  # nothing was modified in this window

    events = store.sync_log(INTEGRATION, event=SyncEvent.SETTINGS_CHANGED)
    assert [(entry.object_type, entry.window_start) for entry in events] == [("Lead", start + HOUR)]
    assert "field mappings or sync rules changed" in events[0].message
    expected = oracle_rows(sf, INTEGRATION, "Lead", FAR_FUTURE)
    industries = {record["Id"]: record["Industry"] for record in sf.query_all(
        "SELECT Id, Industry FROM Lead", include_deleted=True)["records"]}
    for row in expected.values():
        row["properties"]["industry"] = industries[row["salesforce_id"]]
    assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, "Lead"), expected)
    assert any(row["properties"]["industry"] for row in expected.values())
    assert results["Lead"].counts.updated == len(expected)  # every stored Lead rewritten, same version
    assert (results["Contact"].counts.updated, results["CampaignMember"].counts.updated) == (0, 0)

    again = sync_window(store, changed, window(start, 1))
    assert len(store.sync_log(INTEGRATION, event=SyncEvent.SETTINGS_CHANGED)) == 1  # settings recorded
    assert again["Lead"].counts.updated == 0


def test_a_renamed_account_reaches_every_contact_on_the_next_window(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    integration = integration_with(org, start)
    sync_window(store, integration, window(start, 0))
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    account = sf.query("SELECT AccountId FROM Contact WHERE AccountId != null AND IsDeleted = false "
                       "ORDER BY Id LIMIT 1")["records"][0]["AccountId"]
    contacts = [r["Id"] for r in sf.query_all(f"SELECT Id FROM Contact WHERE AccountId = '{account}'")["records"]]
    sf.Account.update(account, {"Name": "Renamed Holdings"})

    results = sync_window(store, integration, window(start, 1))

    assert results["Contact"].counts.updated == len(contacts)
    stored = live(store, "Contact")
    assert {stored[f"sf_{INTEGRATION}_Contact_{c}"]["properties"]["company"] for c in contacts} == {
        "Renamed Holdings"}
    assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, "Contact"),
                     oracle_rows(sf, INTEGRATION, "Contact", FAR_FUTURE))
    assert not store.sync_log(INTEGRATION, event=SyncEvent.SETTINGS_CHANGED)


def test_records_leaving_the_rules_and_hard_deletes_are_not_live_after_the_next_incremental_and_come_back(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    integration = integration_with(org, start, reconcile_every_hours=0)
    sync_window(store, integration, window(start, 0))
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    leads = [r["Id"] for r in sf.query(
        "SELECT Id FROM Lead WHERE Email != null AND Status = 'Working - Contacted' AND IsConverted = false "
        "AND IsDeleted = false AND Id NOT IN (SELECT LeadId FROM CampaignMember) ORDER BY Id LIMIT 3")["records"]]
    # (not campaign members: the emulator's hard delete leaves a Lead's CampaignMembers behind, Salesforce does not)
    left, closed, hard_deleted = leads
    sf.Lead.update(left, {"Email": None})
    sf.Lead.update(closed, {"Status": "Closed - Not Converted"})
    assert org.control.hard_delete("Lead", [hard_deleted]) == 1
    member = sf.query("SELECT Id FROM CampaignMember ORDER BY Id LIMIT 1")["records"][0]["Id"]
    sf.CampaignMember.delete(member)  # junction rows skip the recycle bin: a hard delete

    results = sync_window(store, integration, window(start, 1))

    assert (results["Lead"].out_of_scope, results["Lead"].scrubbed) == (2, 1)
    assert results["CampaignMember"].scrubbed == 1
    lead_reasons = reasons(store, "Lead")
    assert [lead_reasons[i] for i in leads] == ["out_of_scope", "out_of_scope", "hard_deleted"]
    assert reasons(store, "CampaignMember")[member] == "hard_deleted"
    for object_type in OBJECTS:
        expected = {key: row for key, row in oracle_rows(sf, INTEGRATION, object_type, FAR_FUTURE).items()
                    if not row["deleted"]}
        assert_same_rows(live(store, object_type), expected)
    assert [e.details for e in store.sync_log(INTEGRATION, event=SyncEvent.RECONCILED) if e.object_type == "Lead"] \
        == [{"hard_deleted": 1, "out_of_scope": 0}]  # the window itself caught the two rule leavers

    # Back in scope: a newer version revives the row; nothing else changes.
    org.control.set_clock(start + 2 * HOUR + timedelta(minutes=5), freeze=True)
    sf.Lead.update(left, {"Email": "back@example.org"})
    sync_window(store, integration, window(start, 2))
    assert reasons(store, "Lead")[left] is None
    assert live(store, "Lead")[f"sf_{INTEGRATION}_Lead_{left}"]["email"] == "back@example.org"


def test_a_row_marked_gone_revives_when_listed_again_with_the_same_version(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    """What the store itself marked (hard deleted, out of scope) is undone by the next listing of the
    record, even though its LastModifiedDate never moved: changed rules bring a record back in scope."""
    integration = integration_with(org, start)
    sync_window(store, integration, window(start, 0))
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    closed = {r["Id"] for r in sf.query_all("SELECT Id FROM Lead WHERE Email != null AND IsDeleted = false AND "
                                            "Status = 'Closed - Not Converted'")["records"]}
    assert closed
    widened = integration_with(org, start, objects=objects_config(
        Lead={"sync_rules": {"rules": [{"field": "Email", "operator": "is_set"}]},
              "field_mappings": MAPPINGS["Lead"]}))
    sync_window(store, widened, window(start, 1))
    assert closed <= {row["salesforce_id"] for row in live(store, "Lead").values()}

    narrowed = integration_with(org, start)  # the original rules again: the closed Leads leave the scope
    sync_window(store, narrowed, window(start, 1))
    lead_reasons = reasons(store, "Lead")
    assert {lead_reasons[i] for i in closed} == {"out_of_scope"}

    sync_window(store, widened, window(start, 1))  # and come back, at the same LastModifiedDate
    assert {reasons(store, "Lead")[i] for i in closed} == {None}
    expected = oracle_rows(sf, INTEGRATION, "Lead", FAR_FUTURE, rules_soql="Email != null")
    assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, "Lead"), expected)
    assert [e.object_type for e in store.sync_log(INTEGRATION, event=SyncEvent.SETTINGS_CHANGED)] == ["Lead"] * 3


def test_reconciliation_follows_the_integrations_cadence(
        org: EmulatedOrg, store: AudienceStore, sf: Salesforce, start: datetime) -> None:
    daily = integration_with(org, start)
    assert daily.reconcile_every_hours == 24
    sync_window(store, daily, window(start, 0))
    org.control.set_clock(start + HOUR + timedelta(minutes=5), freeze=True)
    member = sf.query("SELECT Id FROM CampaignMember ORDER BY Id LIMIT 1")["records"][0]["Id"]
    assert org.control.hard_delete("CampaignMember", [member]) == 1

    sync_window(store, daily, window(start, 1))  # the first window just listed everything: not due for a day
    assert reasons(store, "CampaignMember")[member] is None
    assert not store.sync_log(INTEGRATION, event=SyncEvent.RECONCILED)

    sync_window(store, integration_with(org, start, reconcile_every_hours=0), window(start, 1))
    assert reasons(store, "CampaignMember")[member] == "hard_deleted"
    assert {entry.object_type for entry in store.sync_log(INTEGRATION, event=SyncEvent.RECONCILED)} == set(OBJECTS)


def test_a_re_read_covers_what_the_integration_covers_from_its_first_window_up_to_now(
        org: EmulatedOrg, start: datetime) -> None:
    # forward_only reads from `start` itself: its first window re-reads no overlap before it.
    for history, since in (("historical_and_forward", None), ("forward_only", start)):
        integration = integration_with(org, start, history=history)
        with connect(integration) as client:
            describes = preflight(client, integration, "Lead")
            sync = plan_window(client, integration, "Lead",
                               SyncWindow(start + 2 * HOUR, start + 3 * HOUR, reread="mappings changed"), describes)
        assert "LastModifiedDate <" not in sync.soql and sync.out_of_scope_soql is None
        lower = f"LastModifiedDate >= {soql_datetime(since)}" if since else "LastModifiedDate >="
        assert (lower in sync.soql) == (since is not None), sync.soql
