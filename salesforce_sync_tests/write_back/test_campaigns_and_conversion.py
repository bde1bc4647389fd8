"""Campaign membership and Lead conversion pushes against an emulated org over TLS, with the store on SQLite and
PostgreSQL: members created and their Status moved, statuses the campaign lacks refused before sending (or
created when allowed), Leads converted at their stage with the store linked to the new Contact, Salesforce's
refusals kept with their codes, and a push killed with SIGKILL right after Salesforce acted creating no member
and converting no Lead twice on the rerun."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.sync.campaign_members import PRECHECK_UNKNOWN_MEMBER_STATUS
from salesforce_sync.sync.lead_conversion import PRECHECK_CONVERTED_STATUS
from salesforce_sync_tests.pipeline.support import LEADS_ONLY, hour_floor, https_integration
from salesforce_sync_tests.write_back.conftest import lead_source, prospect, push

Source = Callable[[str, list[dict[str, Any]]], None]
Build = Callable[..., IntegrationConfig]


def new_campaign(sf: Salesforce, name: str = "Spring Webinar") -> str:
    """A Campaign with the two member statuses a new campaign gets: Sent (default) and Responded."""
    campaign = sf.Campaign.create({"Name": name})["id"]
    sf.CampaignMemberStatus.create({"CampaignId": campaign, "Label": "Sent", "IsDefault": True, "SortOrder": 1})
    sf.CampaignMemberStatus.create({"CampaignId": campaign, "Label": "Responded", "HasResponded": True,
                                    "SortOrder": 2})
    return campaign


def members(sf: Salesforce, campaign: str) -> list[dict[str, Any]]:
    return sf.query_all(f"SELECT Id, LeadId, ContactId, Status FROM CampaignMember "
                        f"WHERE CampaignId = '{campaign}'")["records"]


def campaign_source(**settings: Any) -> dict[str, Any]:
    return {"campaign": "Spring Webinar", "table": "engagement", "key": "person_id", "email_column": "email",
            "status_column": "engagement", "status_map": {"opened": "Sent", "clicked": "Responded"}, **settings}


def outcomes(store: AudienceStore, object_type: str) -> dict[str, Any]:
    return {o.source_key: o for o in store.write_back.outcomes("crm", object_type)}


def a_contact_and_a_lead(sf: Salesforce) -> tuple[dict[str, Any], dict[str, Any]]:
    contact = sf.query("SELECT Id, Email FROM Contact WHERE Email != null ORDER BY CreatedDate LIMIT 1")["records"][0]
    lead = sf.Lead.create({"LastName": "Member", "Company": "Member Co", "Email": "member.lead@prospects.test"})
    return contact, {"Id": lead["id"], "Email": "member.lead@prospects.test"}


def test_members_are_created_their_status_moved_and_an_unknown_status_refused_before_sending(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    campaign = new_campaign(sf)
    contact, lead = a_contact_and_a_lead(sf)
    rows = [{"person_id": "c", "email": contact["Email"].upper(), "engagement": "opened"},
            {"person_id": "l", "email": lead["Email"], "engagement": "clicked"},
            {"person_id": "nobody", "email": "nobody@nowhere.test", "engagement": "opened"},
            {"person_id": "odd", "email": contact["Email"], "engagement": "attended"}]
    source("engagement", rows)
    config = integration({"campaign_members": campaign_source()})

    first = push(store, config)["CampaignMember"]
    assert first.counts == {"created": 2, "updated": 0, "unchanged": 0, "skipped": 1, "rejected": 1}
    found = {(m["ContactId"] or m["LeadId"]): m for m in members(sf, campaign)}
    assert set(found) == {contact["Id"], lead["Id"]}
    assert (found[contact["Id"]]["Status"], found[lead["Id"]]["Status"]) == ("Sent", "Responded")
    assert found[lead["Id"]]["LeadId"] == lead["Id"] and found[contact["Id"]]["LeadId"] is None
    stored = outcomes(store, "CampaignMember")
    assert stored["c"].salesforce_id == found[contact["Id"]]["Id"]
    assert stored["nobody"].outcome == "skipped"
    odd = stored["odd"]
    assert (odd.status_code, odd.fields, odd.found_before_sending) == (PRECHECK_UNKNOWN_MEMBER_STATUS, ("Status",), True)
    assert "'attended'" in odd.message and "Responded, Sent" in odd.message
    assert store.sync_log("crm", event=SyncEvent.RECORDS_CREATED)[0].object_type == "CampaignMember"

    assert sum(push(store, config)["CampaignMember"].counts.values()) == 0  # nothing changed, nothing sent

    rows[0] = dict(rows[0], engagement="clicked")
    rows[1] = dict(rows[1], engagement=None)  # no engagement: the member's Status stays
    source("engagement", rows)
    moved = push(store, config)["CampaignMember"]
    assert moved.counts["updated"] == 1 and moved.counts["unchanged"] == 1 and moved.counts["created"] == 0
    found = {(m["ContactId"] or m["LeadId"]): m for m in members(sf, campaign)}
    assert (found[contact["Id"]]["Status"], found[lead["Id"]]["Status"]) == ("Responded", "Responded")
    assert len(members(sf, campaign)) == 2


def test_missing_statuses_are_created_when_allowed_and_the_campaign_is_named_by_id(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    campaign = new_campaign(sf, "Field Day")
    contact, _ = a_contact_and_a_lead(sf)
    source("engagement", [{"person_id": "c", "email": contact["Email"], "engagement": "attended"}])
    config = integration({"campaign_members": campaign_source(campaign=campaign, create_missing_statuses=True,
                                                              status_map={"attended": "Attended"})})
    result = push(store, config)["CampaignMember"]
    assert result.counts["created"] == 1
    statuses = sf.query(f"SELECT Label, HasResponded, SortOrder FROM CampaignMemberStatus "
                        f"WHERE CampaignId = '{campaign}' ORDER BY SortOrder")["records"]
    assert [(s["Label"], s["SortOrder"]) for s in statuses] == [("Sent", 1), ("Responded", 2), ("Attended", 3)]
    assert [m["Status"] for m in members(sf, campaign)] == ["Attended"]


def test_a_member_already_there_is_matched_not_created_and_duplicate_value_needs_a_re_read(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    campaign = new_campaign(sf)
    contact, _ = a_contact_and_a_lead(sf)
    existing = sf.CampaignMember.create({"CampaignId": campaign, "ContactId": contact["Id"], "Status": "Sent"})["id"]
    source("engagement", [{"person_id": "c", "email": contact["Email"], "engagement": "clicked"}])
    result = push(store, integration({"campaign_members": campaign_source()}))["CampaignMember"]
    assert result.counts["updated"] == 1 and result.counts["created"] == 0
    assert [(m["Id"], m["Status"]) for m in members(sf, campaign)] == [(existing, "Responded")]

    # A DUPLICATE_VALUE refusal whose re-read finds no member stays a rejection with Salesforce's code.
    other = sf.query("SELECT Id, Email FROM Contact WHERE Email != null ORDER BY CreatedDate DESC LIMIT 1")[
        "records"][0]
    source("engagement", [{"person_id": "o", "email": other["Email"], "engagement": "opened"}])
    org.control.inject_error(r"/composite/sobjects$", 400, "DUPLICATE_VALUE", "Already a campaign member.",
                             method="POST")
    refused = push(store, integration({"campaign_members": campaign_source()}))["CampaignMember"]
    assert refused.counts["rejected"] == 1
    assert outcomes(store, "CampaignMember")["o"].status_code == "DUPLICATE_VALUE"
    assert not [m for m in members(sf, campaign) if m["ContactId"] == other["Id"]]


def test_a_lead_reaching_its_stage_is_converted_once_and_the_store_links_its_contact(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    account = sf.Account.create({"Name": "Converted Domain Co", "Website": "https://www.converted-domain.test"})["id"]
    rows = [dict(prospect("p1", "ana@converted-domain.test"), stage="customer"),
            dict(prospect("p2", "ben@fresh-company.test", company="Fresh Company"), stage="customer"),
            dict(prospect("p3", "cy@later.test"), stage="mql")]
    source("prospects", rows)
    fields = [*lead_source()["fields"], {"column": "stage", "field": "Status", "value_map": {
        "mql": "Working - Contacted", "customer": "Working - Contacted"}}]
    config = integration({"objects": {"Lead": lead_source(fields=fields, convert={
        "stage_column": "stage", "at_stage": "customer"})}})
    results = push(store, config)
    assert results["Lead"].counts["created"] == 3
    converted = results["LeadConversion"]
    assert converted.counts == {"created": 0, "updated": 2, "unchanged": 0, "skipped": 0, "rejected": 0}
    assert converted.write_calls == 1  # both Leads in one convertLead call

    links = store.write_back.links("crm", "Lead", ["p1", "p2", "p3"])
    leads = {r["Id"]: r for r in sf.query_all(
        "SELECT Id, IsConverted, Status, ConvertedContactId, ConvertedAccountId, ConvertedOpportunityId FROM Lead "
        f"WHERE Id IN ('{links['p1']}', '{links['p2']}', '{links['p3']}')")["records"]}
    p1, p2, p3 = leads[links["p1"]], leads[links["p2"]], leads[links["p3"]]
    assert p1["IsConverted"] and p1["Status"] == "Closed - Converted" and p1["ConvertedAccountId"] == account
    assert p2["IsConverted"] and p2["ConvertedAccountId"] != account and p2["ConvertedOpportunityId"] is None
    assert not p3["IsConverted"]
    assert store.write_back.links("crm", "Contact", ["p1", "p2", "p3"]) == {
        "p1": p1["ConvertedContactId"], "p2": p2["ConvertedContactId"]}
    assert outcomes(store, "LeadConversion")["p1"].salesforce_id == p1["ConvertedContactId"]

    # A converted Lead is never written again: the Lead push skips it, the conversion has nothing to do.
    rows[0] = dict(rows[0], company="Changed After Conversion")
    rows[2] = dict(rows[2], stage="customer")
    source("prospects", rows)
    again = push(store, config)
    assert again["Lead"].counts["skipped"] == 1 and again["Lead"].counts["rejected"] == 0
    assert p1["ConvertedContactId"] in outcomes(store, "Lead")["p1"].message  # the person is that Contact now
    leads_first = integration({"contact_before_lead": False, "objects": {"Lead": lead_source(fields=fields, convert={
        "stage_column": "stage", "at_stage": "customer"})}})
    linked = push(store, leads_first, objects=["Lead"], full=True)["Lead"]
    assert linked.counts["skipped"] == 3 and linked.counts["rejected"] == 0  # every Lead is converted now
    assert outcomes(store, "Lead")["p1"].message.startswith("the Lead was converted")
    assert sf.Lead.get(links["p1"])["Company"] == "Prospect Co"
    assert again["LeadConversion"].counts == {"created": 0, "updated": 1, "unchanged": 0, "skipped": 0,
                                              "rejected": 0}
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email = 'ana@converted-domain.test'")["totalSize"] == 1

    # A Contact row with the same key now updates the Contact the Lead became.
    source("customers", [dict(prospect("p1", "ana@converted-domain.test"), last_name="Contact Now")])
    contact_config = integration({"objects": {"Contact": {
        "table": "customers", "key": "person_id", "match": ["linked"],
        "fields": [{"column": "last_name", "field": "LastName"}]}}})
    assert push(store, contact_config)["Contact"].counts["updated"] == 1
    assert sf.Contact.get(p1["ConvertedContactId"])["LastName"] == "Contact Now"


def test_conversion_refusals_keep_salesforces_code_and_a_bad_status_is_refused_before_sending(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    source("prospects", [dict(prospect("q", "queued@prospects.test"), stage="customer")])
    config = integration({"objects": {"Lead": lead_source(convert={
        "stage_column": "stage", "at_stage": ["customer", "won"], "create_opportunity": True})}})
    push(store, config, objects=["Lead"])
    lead_id = store.write_back.links("crm", "Lead", ["q"])["q"]
    # The platform busy through all three attempts: refused with its code, tried again by the next push.
    org.control.inject_error(r"/services/Soap/u/", 503, "SERVER_UNAVAILABLE", "Server is unavailable", count=3)
    refused = push(store, config, objects=["LeadConversion"])["LeadConversion"]
    assert refused.counts["rejected"] == 1 and refused.write_calls == 3
    stored = outcomes(store, "LeadConversion")["q"]
    assert (stored.status_code, stored.retryable, stored.found_before_sending) == ("SERVER_UNAVAILABLE", True, False)
    assert not sf.Lead.get(lead_id)["IsConverted"]

    # The answer lost on the wire after Salesforce converted: a re-read of the Lead settles it, no second try.
    org.control.cut_connection(r"/services/Soap/u/")
    try:
        lost = push(store, config, objects=["LeadConversion"])["LeadConversion"]
    finally:
        org.control.clear_faults()
    converted = sf.Lead.get(lead_id)
    assert lost.counts["updated"] == 1 and converted["IsConverted"] and converted["ConvertedOpportunityId"]
    assert store.write_back.links("crm", "Contact", ["q"]) == {"q": converted["ConvertedContactId"]}

    source("prospects", [dict(prospect("q", "queued@prospects.test"), stage="customer"),
                         dict(prospect("w", "won.big@prospects.test"), stage="customer")])
    bad = integration({"objects": {"Lead": lead_source(convert={
        "stage_column": "stage", "at_stage": "customer", "converted_status": "Won Big"})}})
    push(store, bad, objects=["Lead"])
    result = push(store, bad, objects=["LeadConversion"])["LeadConversion"]
    assert result.counts["rejected"] == 1 and result.counts["unchanged"] == 1 and result.write_calls == 0
    stored = outcomes(store, "LeadConversion")["w"]
    assert (stored.status_code, stored.found_before_sending) == (PRECHECK_CONVERTED_STATUS, True)
    assert "'Won Big'" in stored.message and "Closed - Converted" in stored.message


KILLED_PUSH = textwrap.dedent("""
    import os, signal, sys
    from salesforce_sync.config.loader import load_config
    from salesforce_sync.runs.lease import cli_holder
    from salesforce_sync.runs.write_back import push_integration
    from salesforce_sync.store import AudienceStore
    from salesforce_sync.store.write_back import WriteBackStore

    def killed(*args, **kwargs):  # Salesforce has acted; the store never hears of it
        os.kill(os.getpid(), signal.SIGKILL)

    WriteBackStore.record_outcomes = killed
    WriteBackStore.record_links = killed
    with AudienceStore(os.environ["AUDIENCE_STORE_URL"]) as store:
        push_integration(store, load_config(sys.argv[1]).integration("crm"), holder=cli_holder(),
                         objects=[sys.argv[2]])
""")


def test_a_push_killed_after_salesforce_acted_creates_no_member_and_converts_no_lead_twice(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, source: Source, tmp_path: Path) -> None:
    campaign = new_campaign(sf)
    contact, lead = a_contact_and_a_lead(sf)
    source("engagement", [{"person_id": "c", "email": contact["Email"], "engagement": "clicked"},
                          {"person_id": "l", "email": lead["Email"], "engagement": "opened"}])
    source("prospects", [dict(prospect("p1", "killed@convert.test"), stage="customer")])
    write_back = {"campaign_members": campaign_source(),
                  "objects": {"Lead": lead_source(convert={"stage_column": "stage", "at_stage": "customer"})}}
    settings = https_integration(org, "crm", "acme", hour_floor(datetime.now(UTC)), objects=LEADS_ONLY,
                                 write_back=write_back)
    config_file = tmp_path / "integrations.yaml"
    config_file.write_text(yaml.safe_dump({"projects": ["acme"], "integrations": [settings]}, sort_keys=False))
    from salesforce_sync.config.loader import load_config
    config = load_config(config_file).integration("crm")
    push(store, config, objects=["Lead"])

    for name in ("CampaignMember", "LeadConversion"):
        killed = subprocess.run([sys.executable, "-c", KILLED_PUSH, str(config_file), name],
                                capture_output=True, timeout=120)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert len(members(sf, campaign)) == 2  # Salesforce acted ...
    assert store.write_back.outcomes("crm", "CampaignMember") == []  # ... the store never heard of it
    lead_id = store.write_back.links("crm", "Lead", ["p1"])["p1"]
    converted = sf.Lead.get(lead_id)
    assert converted["IsConverted"] and not store.write_back.links("crm", "Contact", ["p1"])

    rerun = push(store, config)
    assert rerun["CampaignMember"].counts["created"] == 0
    assert rerun["CampaignMember"].counts["unchanged"] == 2
    assert len(members(sf, campaign)) == 2
    assert rerun["LeadConversion"].counts == {"created": 0, "updated": 0, "unchanged": 1, "skipped": 0,
                                              "rejected": 0}
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email = 'killed@convert.test'")["totalSize"] == 1
    assert store.write_back.links("crm", "Contact", ["p1"]) == {"p1": converted["ConvertedContactId"]}


def test_the_conversion_and_membership_assets_follow_the_lead_push_in_the_write_back_job(
        sf: Salesforce, store: AudienceStore, source: Source, integration: Build) -> None:
    import dagster as dg

    from salesforce_sync.dagster_defs.definitions import build_definitions
    from salesforce_sync.dagster_defs.write_back import REJECTIONS_CHECK, write_back_asset_key, write_back_job_name
    from salesforce_sync_tests.pipeline.support import load_config

    campaign = new_campaign(sf)
    source("prospects", [dict(prospect("p1", "asset@convert.test"), stage="customer", engagement="clicked"),
                         dict(prospect("p2", "asset.two@convert.test"), stage="mql", engagement="opened")])
    crm = integration({"objects": {"Lead": lead_source(convert={"stage_column": "stage", "at_stage": "customer"})},
                       "campaign_members": campaign_source(table="prospects")})
    config = load_config(crm.model_dump(mode="json", by_alias=True, exclude_none=True))
    defs = build_definitions(config)
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    conversion, membership = (write_back_asset_key("crm", name) for name in ("LeadConversion", "CampaignMember"))
    assert {d.asset_key for d in specs[conversion].deps} == {write_back_asset_key("crm", "Lead")}
    assert {d.asset_key for d in specs[membership].deps} == {
        dg.AssetKey(["audience", "acme", "prospects"]), write_back_asset_key("crm", "Lead"), conversion}

    result = defs.resolve_job_def(write_back_job_name("crm")).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    metadata = {node: {k: v.value for k, v in m.metadata.items()} for node in (
        "salesforce__crm__write_back__LeadConversion", "salesforce__crm__write_back__CampaignMember")
        for m in result.asset_materializations_for_node(node)}
    assert metadata["salesforce__crm__write_back__LeadConversion"]["updated"] == 1
    assert metadata["salesforce__crm__write_back__CampaignMember"]["created"] == 2
    contact = store.write_back.links("crm", "Contact", ["p1"])["p1"]
    assert {(m["ContactId"], m["Status"]) for m in members(sf, campaign) if m["ContactId"]} == {(contact, "Responded")}
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert sorted(c.asset_key.path[-1] for c in checks if c.check_name == REJECTIONS_CHECK) == [
        "CampaignMember", "Lead", "LeadConversion"]
    assert all(c.passed for c in checks)
