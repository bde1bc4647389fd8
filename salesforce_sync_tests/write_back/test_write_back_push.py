"""Write-back pushes against an emulated org over TLS, with the store on SQLite and PostgreSQL: creates, each match
path, field modes, picklist maps, owners, rejections with Salesforce's codes, retries, and what a second push of
an unchanged source sends (nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.salesforce.writes import OUTCOME_UNKNOWN
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.sync.external_ids import external_id
from salesforce_sync.sync.write_back import PRECHECK_RESTRICTED_PICKLIST
from salesforce_sync_tests.write_back.conftest import lead_source, prospect, push

Source = Callable[[str, list[dict[str, Any]]], None]
Build = Callable[..., IntegrationConfig]


def leads_with_email(sf: Salesforce, email: str) -> list[dict[str, Any]]:
    return sf.query_all(f"SELECT Id, FirstName, LastName, Company, Status, OwnerId, Industry FROM Lead "
                        f"WHERE Email = '{email}'")["records"]


def outcomes(store: AudienceStore, object_type: str = "Lead") -> dict[str, Any]:
    return {o.source_key: o for o in store.write_back.outcomes("crm", object_type)}


def collection_calls(org: EmulatedOrg) -> int:
    return sum(count for endpoint, count in org.control.api_calls()["by_endpoint"].items()
               if "composite" in endpoint)


def test_new_rows_are_created_and_an_unchanged_source_sends_nothing_the_second_time(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    source("prospects", [prospect("p1", "new.one@prospects.test"), prospect("p2", "new.two@prospects.test")])
    config = integration({"objects": {"Lead": lead_source()}})

    first = push(store, config)["Lead"]
    assert first.counts == {"created": 2, "updated": 0, "unchanged": 0, "skipped": 0, "rejected": 0}
    (created,) = leads_with_email(sf, "new.one@prospects.test")
    assert (created["LastName"], created["Company"]) == ("Prospect p1", "Prospect Co")
    assert store.write_back.links("crm", "Lead", ["p1"]) == {"p1": created["Id"]}
    assert outcomes(store)["p1"].outcome == "created"

    calls = collection_calls(org)
    second = push(store, config)["Lead"]
    assert sum(second.counts.values()) == 0 and second.write_calls == 0
    assert collection_calls(org) == calls
    # One entry per event for the push that wrote something; none for the push that had nothing to send.
    logged = sorted((entry.event.value, entry.count) for entry in store.sync_log("crm"))
    assert logged == [("records_created", 2), ("records_rejected", 0), ("records_updated", 0)]

    # A changed mapping is a change of every row: each is sent again, with the new field.
    fields = [*lead_source()["fields"], {"column": "first_name", "field": "Title"}]
    remapped = push(store, integration({"objects": {"Lead": lead_source(fields=fields)}}))["Lead"]
    assert remapped.counts["updated"] == 2
    assert leads_with_email(sf, "new.two@prospects.test")[0]["Id"] == store.write_back.links("crm", "Lead", ["p2"])["p2"]
    assert sf.Lead.get(created["Id"])["Title"] == "Pat"


def test_matches_by_link_then_email_and_skips_a_lead_whose_email_is_a_contacts(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    existing = sf.query("SELECT Id, Email FROM Lead WHERE Email != null AND IsConverted = false "
                        "ORDER BY CreatedDate LIMIT 1")["records"][0]
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    rows = [prospect("by-email", existing["Email"].upper(), company="Matched By Email"),
            prospect("contact", contact["Email"], company="Should Not Be Written"),
            prospect("linked", "linked@prospects.test")]
    source("prospects", rows)
    config = integration({"objects": {"Lead": lead_source()}})
    result = push(store, config)["Lead"]
    assert result.counts == {"created": 1, "updated": 1, "unchanged": 0, "skipped": 1, "rejected": 0}
    assert sf.Lead.get(existing["Id"])["Company"] == "Matched By Email"
    assert outcomes(store)["contact"].message.startswith(f"the person is Contact {contact['Id']}")
    assert not leads_with_email(sf, contact["Email"]) or all(
        lead["Company"] != "Should Not Be Written" for lead in leads_with_email(sf, contact["Email"]))

    # The link wins over the email: a changed email updates the same record.
    linked_id = store.write_back.links("crm", "Lead", ["linked"])["linked"]
    rows[2] = prospect("linked", "renamed@prospects.test", company="Linked Co")
    source("prospects", rows)
    again = push(store, config)["Lead"]
    assert again.counts["updated"] == 1 and again.counts["created"] == 0
    assert sf.Lead.get(linked_id)["Email"] == "renamed@prospects.test"
    assert sf.Lead.get(linked_id)["Company"] == "Linked Co"


def test_a_lead_row_whose_person_is_a_contact_under_another_email_is_skipped(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    # The people identity knows a converted Lead's address belongs to the Contact it became, whose own email
    # differs: Salesforce alone (a query by email) cannot tell.
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    lead = sf.Lead.create({"LastName": "Converted", "Company": "Old Co", "Email": "old.address@prospects.test"})
    config = integration({"objects": {"Lead": lead_source()}})
    chunk = pd.DataFrame({
        "external_id": [external_id("crm", "Lead", lead["id"]), external_id("crm", "Contact", contact["Id"])],
        "salesforce_id": [lead["id"], contact["Id"]], "object_type": ["Lead", "Contact"],
        "email": ["old.address@prospects.test", contact["Email"]], "first_name": None, "last_name": None,
        "phone": None, "properties": [{"converted_contact_id": contact["Id"], "is_converted": True}, {}],
        "unsubscribed": False, "deleted": False, "sf_modified_at": pd.Timestamp("2026-01-01", tz="UTC")})
    store.upsert_users("acme", "crm", chunk)
    rebuild_people(store, "acme")
    source("prospects", [prospect("moved", "Old.Address@prospects.test", company="Should Not Be Written")])

    result = push(store, config)["Lead"]
    assert result.counts["skipped"] == 1 and result.counts["created"] + result.counts["updated"] == 0
    assert outcomes(store)["moved"].message.startswith(f"the person is Contact {contact['Id']}")
    assert sf.Lead.get(lead["id"])["Company"] == "Old Co"


def test_contact_before_lead_can_be_turned_off(sf: Salesforce, store: AudienceStore, source: Source,
                                               integration: Build) -> None:
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null LIMIT 1")["records"][0]
    source("prospects", [prospect("contact", contact["Email"])])
    config = integration({"contact_before_lead": False, "objects": {"Lead": lead_source(match=["linked"])}})
    result = push(store, config)["Lead"]
    assert result.counts["skipped"] == 0
    assert result.counts["created"] + result.counts["rejected"] == 1


def test_accounts_match_by_website_domain_and_upsert_on_the_external_id(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    account = sf.query("SELECT Id, Website, Name FROM Account WHERE Website LIKE '%.%' LIMIT 1")["records"][0]
    from salesforce_sync.sync.write_back import website_domain
    domain = website_domain(account["Website"])
    source("companies", [
        {"company_id": "c1", "name": "Renamed By Domain", "website": f"https://www.{domain}/about", "tier": "Gold"},
        {"company_id": "c2", "name": "Brand New Company Ltd", "website": "https://brand-new-company.test",
         "tier": None}])
    config = integration({"objects": {"Account": {
        "table": "companies", "key": "company_id", "website_column": "website",
        "external_id_field": "Audience_Id__c",
        "fields": [{"column": "name", "field": "Name"}, {"column": "tier", "field": "Tier__c"}]}}})
    result = push(store, config)["Account"]
    assert result.counts == {"created": 1, "updated": 1, "unchanged": 0, "skipped": 0, "rejected": 0}
    matched = sf.Account.get(account["Id"])
    assert (matched["Name"], matched["Tier__c"], matched["Audience_Id__c"]) == ("Renamed By Domain", "Gold", "c1")
    created = sf.query("SELECT Id, Audience_Id__c, Website FROM Account WHERE Name = 'Brand New Company Ltd'")
    assert created["totalSize"] == 1 and created["records"][0]["Audience_Id__c"] == "c2"

    source("companies", [
        {"company_id": "c1", "name": "Renamed Again", "website": f"https://www.{domain}/about", "tier": "Silver"},
        {"company_id": "c2", "name": "Brand New Company Ltd", "website": "https://brand-new-company.test",
         "tier": "Platinum"}])
    again = push(store, config)["Account"]
    assert again.counts["updated"] == 1 and again.counts["rejected"] == 1
    assert sf.Account.get(account["Id"])["Tier__c"] == "Silver"
    refused = outcomes(store, "Account")["c2"]
    assert (refused.status_code, refused.fields, refused.found_before_sending) == (
        PRECHECK_RESTRICTED_PICKLIST, ("Tier__c",), True)
    assert "found before sending" in refused.message and "'Platinum'" in refused.message

    # The refused row is not sent again until it changes.
    third = push(store, config)["Account"]
    assert sum(third.counts.values()) == 0


def test_contacts_are_linked_to_their_companys_account(sf: Salesforce, store: AudienceStore, source: Source,
                                                       integration: Build) -> None:
    other = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    source("companies", [{"company_id": "c1", "name": "Linked Company Ltd", "website": "https://linked-company.test"}])
    source("contacts", [
        {"person_id": "k1", "email": "kim@linked-company.test", "last_name": "Kim", "company_id": "c1"},
        {"person_id": "k2", "email": "lee@linked-company.test", "last_name": "Lee", "company_id": "c9"}])
    accounts = {"table": "companies", "key": "company_id", "website_column": "website",
                "fields": [{"column": "name", "field": "Name"}]}

    def contacts(mode: str) -> dict[str, Any]:
        return {"table": "contacts", "key": "person_id", "email_column": "email",
                "fields": [{"column": "last_name", "field": "LastName"}, {"column": "email", "field": "Email"}],
                "account": {"column": "company_id", "mode": mode}}

    results = push(store, integration({"objects": {"Account": accounts, "Contact": contacts("fill")}}))
    assert results["Account"].counts["created"] == 1 and results["Contact"].counts["created"] == 2
    company = store.write_back.links("crm", "Account", ["c1"])["c1"]
    kim, lee = (sf.query(f"SELECT AccountId FROM Contact WHERE Email = '{email}'")["records"][0]
                for email in ("kim@linked-company.test", "lee@linked-company.test"))
    assert kim["AccountId"] == company
    assert lee["AccountId"] is None  # company c9 has no Account (yet): nothing sent

    # fill keeps an Account a salesperson set; overwrite moves the Contact to its company's Account.
    kim_id = store.write_back.links("crm", "Contact", ["k1"])["k1"]
    sf.Contact.update(kim_id, {"AccountId": other})
    source("contacts", [{"person_id": "k1", "email": "kim@linked-company.test", "last_name": "Kim-Park",
                         "company_id": "c1"}])
    push(store, integration({"objects": {"Account": accounts, "Contact": contacts("fill")}}))
    assert sf.Contact.get(kim_id)["AccountId"] == other
    source("contacts", [{"person_id": "k1", "email": "kim@linked-company.test", "last_name": "Kim-Park",
                         "company_id": "c1"}])
    moved = push(store, integration({"objects": {"Account": accounts, "Contact": contacts("overwrite")}}))
    assert moved["Contact"].counts["updated"] == 1 and sf.Contact.get(kim_id)["AccountId"] == company


def test_field_modes_nulls_picklist_map_and_owners(sf: Salesforce, store: AudienceStore, source: Source,
                                                   integration: Build) -> None:
    users = {u["Email"]: u["Id"] for u in sf.query_all("SELECT Id, Email FROM User WHERE IsActive = true")["records"]}
    owner_email, default_email = sorted(users)[1], sorted(users)[2]
    existing = sf.Lead.create({"LastName": "Modes", "Company": "Kept Co", "Email": "modes@prospects.test",
                               "Industry": None, "Rating": "Hot"})["id"]
    rows = [dict(prospect("modes", "modes@prospects.test", company="Fill Co"), industry="Banking",
                 rating="Cold", stage="mql", title="Never Sent", owner=None, phone=None),
            dict(prospect("owned", "owned@prospects.test"), industry=None, rating=None, stage="sql",
                 title="Never Sent", owner=owner_email.upper(), phone=None),
            dict(prospect("defaulted", "defaulted@prospects.test"), industry=None, rating=None, stage="unknown stage",
                 title=None, owner="nobody@nowhere.test", phone=None)]
    source("prospects", rows)
    fields = [{"column": "company", "field": "Company", "mode": "fill"},
              {"column": "industry", "field": "Industry", "mode": "fill"},
              {"column": "rating", "field": "Rating", "mode": "overwrite"},
              {"column": "last_name", "field": "LastName"},
              {"column": "email", "field": "Email"},
              {"column": "title", "field": "Title", "mode": "dont_sync"},
              {"column": "phone", "field": "Phone"},
              {"column": "stage", "field": "Status",
               "value_map": {"mql": "Working - Contacted", "sql": "Closed - Converted"}}]
    config = integration({"objects": {"Lead": {
        "table": "prospects", "key": "person_id", "email_column": "email", "fields": fields,
        "owner": {"column": "owner", "default_email": default_email}}}})
    result = push(store, config)["Lead"]
    assert result.counts["created"] == 2 and result.counts["updated"] == 1
    lead = sf.Lead.get(existing)
    assert lead["Company"] == "Kept Co"              # fill: Salesforce had a value
    assert lead["Industry"] == "Banking"             # fill: it was empty
    assert lead["Rating"] == "Cold"                  # overwrite
    assert lead["Status"] == "Working - Contacted"   # mapped stage
    assert lead["Title"] is None                     # dont_sync
    owned = leads_with_email(sf, "owned@prospects.test")[0]
    assert owned["OwnerId"] == users[owner_email] and owned["Status"] == "Closed - Converted"
    defaulted = leads_with_email(sf, "defaulted@prospects.test")[0]
    assert defaulted["OwnerId"] == users[default_email] and defaulted["Status"] == "unknown stage"

    # A null is never sent unless asked: then it clears the field.
    sf.Lead.update(existing, {"Phone": "+1 555 0100"})
    rows[0] = dict(rows[0], rating=None, last_name="Modes Changed")
    source("prospects", rows)
    push(store, config)
    lead = sf.Lead.get(existing)
    assert (lead["Rating"], lead["Phone"], lead["LastName"]) == ("Cold", "+1 555 0100", "Modes Changed")
    fields[6] = {"column": "phone", "field": "Phone", "send_nulls": True}
    config = integration({"objects": {"Lead": {
        "table": "prospects", "key": "person_id", "email_column": "email", "fields": fields}}})
    push(store, config, full=True)
    assert sf.Lead.get(existing)["Phone"] is None


def test_without_an_owner_setting_the_connecting_user_owns_new_records(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    source("prospects", [prospect("p1", "mine@prospects.test")])
    push(store, integration({"objects": {"Lead": lead_source()}}))
    me = sf.query(f"SELECT Id FROM User WHERE Username = '{org.connection_info()['username']}'")["records"][0]["Id"]
    assert leads_with_email(sf, "mine@prospects.test")[0]["OwnerId"] == me


def test_refused_rows_end_rejected_with_salesforces_code_and_wait_for_a_change(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    taken = sf.query("SELECT Email FROM Lead WHERE Email != null LIMIT 1")["records"][0]["Email"]
    rows = [prospect("no-name", "no.name@prospects.test", last_name=None),
            prospect("duplicate", taken),
            prospect("bad-email", "not an email address"),
            prospect("fine", "fine@prospects.test")]
    source("prospects", rows)
    config = integration({"objects": {"Lead": lead_source(match=["linked"])}})
    result = push(store, config)["Lead"]
    assert result.counts["rejected"] == 3 and result.counts["created"] == 1
    stored = outcomes(store)
    assert stored["no-name"].status_code == "REQUIRED_FIELD_MISSING" and "LastName" in stored["no-name"].fields
    assert stored["duplicate"].status_code == "DUPLICATES_DETECTED"
    assert "matching records: 00Q" in stored["duplicate"].message
    assert (stored["bad-email"].status_code, stored["bad-email"].fields) == ("INVALID_EMAIL_ADDRESS", ("Email",))
    assert not any(o.found_before_sending or o.retryable for o in stored.values())
    rejected_events = store.sync_log("crm", event=SyncEvent.RECORDS_REJECTED)
    assert rejected_events[0].count == 3

    calls = collection_calls(org)
    assert sum(push(store, config)["Lead"].counts.values()) == 0  # unchanged refused rows are not sent again
    assert collection_calls(org) == calls
    rows[0] = prospect("no-name", "no.name@prospects.test", last_name="Named Now")
    source("prospects", rows)
    fixed = push(store, config)["Lead"]
    assert fixed.counts == {"created": 1, "updated": 0, "unchanged": 0, "skipped": 0, "rejected": 0}
    assert outcomes(store)["no-name"].outcome == "created"


def test_a_locked_row_is_retried_to_success(org: EmulatedOrg, sf: Salesforce, store: AudienceStore,
                                             source: Source, integration: Build) -> None:
    source("prospects", [prospect("p1", "locked@prospects.test")])
    org.control.lock_rows("Lead", 1)
    result = push(store, integration({"objects": {"Lead": lead_source()}}))["Lead"]
    assert result.counts["created"] == 1
    assert outcomes(store)["p1"].attempts == 2
    assert len(leads_with_email(sf, "locked@prospects.test")) == 1


def test_a_create_intent_left_by_a_killed_push_is_matched_before_creating(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    source("prospects", [prospect("p1", "intent@prospects.test")])
    # As a push killed right after Salesforce created the record, before its outcome was stored, leaves it.
    store.write_back.record_intents("crm", "Lead", ["p1"], "killed-run")
    made = sf.Lead.create({"LastName": "Prospect p1", "Company": "Prospect Co", "Email": "intent@prospects.test"})
    result = push(store, integration({"objects": {"Lead": lead_source(match=["linked"])}}))["Lead"]
    assert result.counts["created"] == 0 and result.counts["unchanged"] + result.counts["updated"] == 1
    assert [lead["Id"] for lead in leads_with_email(sf, "intent@prospects.test")] == [made["id"]]
    assert store.write_back.links("crm", "Lead", ["p1"]) == {"p1": made["id"]}
    assert not store.write_back.intents("crm", "Lead", ["p1"])


def test_a_create_whose_answer_is_lost_is_matched_by_the_next_push_not_created_twice(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    source("prospects", [prospect("p1", "lost.answer@prospects.test")])
    config = integration({"objects": {"Lead": lead_source(match=["linked"])}})
    org.control.cut_connection(r"/composite/sobjects$")  # Salesforce creates the Lead; its answer never arrives
    try:
        first = push(store, config)["Lead"]
    finally:
        org.control.clear_faults()
    lost = outcomes(store)["p1"]
    assert first.counts["rejected"] == 1 and (lost.status_code, lost.retryable) == (OUTCOME_UNKNOWN, True)
    assert store.write_back.intents("crm", "Lead", ["p1"])  # kept: the next push must look before creating
    (made,) = leads_with_email(sf, "lost.answer@prospects.test")

    second = push(store, config)["Lead"]
    assert second.counts["created"] == 0 and second.counts["updated"] + second.counts["unchanged"] == 1
    assert [lead["Id"] for lead in leads_with_email(sf, "lost.answer@prospects.test")] == [made["Id"]]
    assert store.write_back.links("crm", "Lead", ["p1"]) == {"p1": made["Id"]}
    assert not store.write_back.intents("crm", "Lead", ["p1"])


def test_dry_run_writes_nothing(org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source,
                                integration: Build) -> None:
    existing = sf.query("SELECT Id, Email FROM Lead WHERE Email != null AND IsConverted = false "
                        "ORDER BY CreatedDate LIMIT 1")["records"][0]
    source("prospects", [prospect("new", "dry@prospects.test"), prospect("old", existing["Email"], company="Dry Co")])
    seen: list[tuple[str, str]] = []
    calls = collection_calls(org)
    result = push(store, integration({"objects": {"Lead": lead_source()}}), dry_run=True,
                  report=lambda name, plan: seen.append((plan.key, plan.action)))["Lead"]
    assert sorted(seen) == [("new", "create"), ("old", "update")]
    assert result.counts["created"] == 1 and result.counts["updated"] == 1
    assert collection_calls(org) == calls
    assert not leads_with_email(sf, "dry@prospects.test")
    assert store.write_back.outcomes("crm") == [] and not store.sync_log("crm")


@pytest.mark.parametrize("bad, message", [
    ({"table": "t", "query": "SELECT 1", "key": "k", "fields": [{"column": "a", "field": "LastName"}]},
     "write_back.objects.Lead.table: give exactly one of table and query"),
    ({"table": "t", "key": "k", "fields": [{"column": "a", "field": "Website"}], "match": ["domain"]},
     "write_back.objects.Lead.match: matching by domain needs website_column"),
    ({"table": "t", "key": "k", "fields": [{"column": "a", "field": "OwnerId"}]},
     "write_back.objects.Lead.fields[0].field: field 'OwnerId' is written by the write-back itself"),
    ({"table": "t", "key": "k", "fields": [{"column": "a", "field": "LastName"}], "account": {"column": "c"}},
     "write_back.objects.Lead.account: only Contacts are linked to an Account"),
])
def test_config_errors_name_the_integration_object_and_field(integration: Build, bad: dict[str, Any],
                                                              message: str) -> None:
    from salesforce_sync.config.errors import ConfigError
    with pytest.raises(ConfigError) as caught:
        integration({"objects": {"Lead": bad}})
    assert f"integration 'crm': {message}" in str(caught.value)


def test_a_row_still_refused_after_the_retries_is_sent_again_by_the_next_push(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    source("prospects", [prospect("p1", "stuck@prospects.test")])
    config = integration({"objects": {"Lead": lead_source()}})
    org.control.lock_rows("Lead", 4)  # one locked write more than the push's 3 attempts
    first = push(store, config)["Lead"]
    refused = outcomes(store)["p1"]
    assert first.counts["rejected"] == 1 and (refused.status_code, refused.retryable) == ("UNABLE_TO_LOCK_ROW", True)
    assert refused.attempts == 3 and not leads_with_email(sf, "stuck@prospects.test")
    second = push(store, config)["Lead"]
    assert second.counts["created"] == 1 and outcomes(store)["p1"].outcome == "created"
    assert len(leads_with_email(sf, "stuck@prospects.test")) == 1


def test_contacts_from_a_query_source(sf: Salesforce, store: AudienceStore, source: Source,
                                      integration: Build) -> None:
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null ORDER BY CreatedDate LIMIT 1")["records"][0]
    source("customers", [dict(prospect("c1", contact["Email"], last_name="Queried"), kind="customer"),
                      dict(prospect("c2", "new.contact@prospects.test"), kind="customer"),
                      dict(prospect("l1", "lead.only@prospects.test"), kind="lead")])
    config = integration({"objects": {"Contact": {
        "query": "SELECT person_id, email, last_name FROM customers WHERE kind = 'customer';", "key": "person_id",
        "email_column": "email", "fields": [{"column": "last_name", "field": "LastName"},
                                            {"column": "email", "field": "Email"}]}}})
    result = push(store, config)["Contact"]
    assert result.counts["updated"] == 1 and result.counts["created"] == 1 and sum(result.counts.values()) == 2
    assert sf.Contact.get(contact["Id"])["LastName"] == "Queried"
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email = 'new.contact@prospects.test'")["totalSize"] == 1
    assert set(o.source_key for o in store.write_back.outcomes("crm", "Contact")) == {"c1", "c2"}


def test_a_push_keeps_to_the_api_budget_and_waits_for_the_lease(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    from salesforce_sync.runs.health import SyncDeferred
    from salesforce_sync.runs.lease import SyncLeaseBusy, acquire_lease, cli_holder

    source("prospects", [prospect("p1", "budget@prospects.test")])
    org.control.set_api_limit(100)
    with pytest.raises(SyncDeferred, match="write-back of Lead deferred"):
        push(store, integration({"objects": {"Lead": lead_source()}}, api_budget_percent=1))
    assert not leads_with_email(sf, "budget@prospects.test") and store.write_back.outcomes("crm") == []
    org.control.set_api_limit(15_000)

    with acquire_lease(store, "crm", cli_holder(), wait=__import__("datetime").timedelta(0)):
        with pytest.raises(SyncLeaseBusy, match="already being synced by CLI pid"):
            push(store, integration({"objects": {"Lead": lead_source()}}, lease_wait_seconds=0))
    assert not leads_with_email(sf, "budget@prospects.test")
