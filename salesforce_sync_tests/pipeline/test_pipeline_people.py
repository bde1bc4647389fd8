"""People end to end: sync an emulated org through Dagster, let the automation condition ask for the project's
people, convert Leads through the org's SOAP convertLead (into a new Contact, and into an existing Contact with
another email), sync again, rebuild the people, and find each Lead and its Contact as one person."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg
import pytest
from simple_salesforce import Salesforce

from salesforce_sync.commands.sync import local_instance, run_sync
from salesforce_sync.dagster_defs.definitions import build_definitions
from salesforce_sync.dagster_defs.people import people_asset_key
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.emulator.test_emulator_convert_lead import convert
from salesforce_sync_tests.pipeline.support import HOUR, hour_floor, https_integration, load_config, set_auth_env

PROJECT = "acme"
ORG_COUNTS = {"Lead": 120, "Contact": 60, "CampaignMember": 40}
IN_SCOPE_LEAD = "SELECT Id, Email FROM Lead WHERE IsConverted = false AND Email != null AND " \
                "Status != 'Closed - Not Converted' ORDER BY Id"


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg], monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=11, counts=ORG_COUNTS)
    set_auth_env(monkeypatch, org)
    return org


def conversion(lead_id: str, *, account_id: str | None = None, contact_id: str | None = None) -> list[tuple[str, str]]:
    """A leadConverts entry, its elements in the WSDL's order."""
    into = [("accountId", account_id)] if account_id else []
    into += [("contactId", contact_id)] if contact_id else []
    return [*into, ("convertedStatus", "Closed - Converted"), ("doNotCreateOpportunity", "true"), ("leadId", lead_id),
            ("overwriteLeadSource", "false"), ("sendNotificationEmail", "false")]


def materialize_people(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, dg.MetadataValue]:
    """Materialize the project's people as the UI would, and return the materialization's metadata."""
    key = people_asset_key(PROJECT)
    result = defs.resolve_implicit_job_def_def_for_assets([key]).execute_in_process(
        instance=instance, asset_selection=[key])
    assert result.success
    (record,) = instance.fetch_materializations(key, limit=1).records
    assert record.run_id == result.run_id
    return record.asset_materialization.metadata


def person_of(store: AudienceStore, email: str) -> str:
    match = store.people.by_email(PROJECT, [email])[email]
    return match.person_id


@pytest.mark.slow
def test_a_converted_lead_and_its_contact_become_one_person(org: EmulatedOrg, store: AudienceStore) -> None:
    start = hour_floor(datetime.now(UTC)) - HOUR
    config = load_config(https_integration(org, "crm", PROJECT, start))
    defs = build_definitions(config)
    sf: Salesforce = org.simple_salesforce()
    instance = local_instance()

    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor's tick before the sync
    assert before.get_num_requested(people_asset_key(PROJECT)) == 0
    assert run_sync(config, ["crm"], full=False) == 0
    evaluated = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    assert evaluated.get_num_requested(people_asset_key(PROJECT)) == 1  # the sync's materializations ask for them
    metadata = materialize_people(defs, instance)
    counts = store.people.counts(PROJECT)
    assert metadata["people"].value == counts.people == metadata["dagster/row_count"].value
    assert metadata["merged_records"].value == counts.merged > 0  # CampaignMembers at least join their people
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluated.cursor)
    assert again.get_num_requested(people_asset_key(PROJECT)) == 0  # nothing synced since: nothing asked

    leads = sf.query(IN_SCOPE_LEAD)["records"]
    contacts = sf.query("SELECT Id, AccountId, Email FROM Contact WHERE AccountId != null AND Email != null "
                        "ORDER BY Id")["records"]
    fresh = leads[0]
    merged = next(lead for lead in leads[1:] if lead["Email"].casefold() != contacts[0]["Email"].casefold())
    existing = contacts[0]
    assert person_of(store, merged["Email"]) != person_of(store, existing["Email"])
    results = convert(sf, conversion(fresh["Id"]),
                      conversion(merged["Id"], account_id=existing["AccountId"], contact_id=existing["Id"]))
    assert [r["success"] for r in results] == ["true", "true"], results
    new_contact = results[0]["contactId"]

    assert run_sync(config, ["crm"], full=True) == 0  # reads up to now, so the conversions are synced
    assert materialize_people(defs, instance)["rebuilt"].value is True

    # the Lead converted into an existing Contact with another address: one person through ConvertedContactId
    person = person_of(store, merged["Email"])
    assert person == person_of(store, existing["Email"])
    members = {(m.object_type, m.salesforce_id): m for m in store.people.members(PROJECT, person)}
    assert {("Lead", merged["Id"]), ("Contact", existing["Id"])} <= set(members)
    assert members[("Lead", merged["Id"])].converted and members[("Contact", existing["Id"])].primary
    match = store.people.by_email(PROJECT, [merged["Email"]])[merged["Email"]]
    assert existing["Id"] in match.contacts["crm"] and merged["Id"] not in match.leads.get("crm", ())
    # the Lead converted into a new Contact
    fresh_person = person_of(store, fresh["Email"])
    fresh_members = {(m.object_type, m.salesforce_id) for m in store.people.members(PROJECT, fresh_person)}
    assert {("Lead", fresh["Id"]), ("Contact", new_contact)} <= fresh_members
    lead_row = store.users(PROJECT, "crm", "Lead").set_index("salesforce_id").loc[merged["Id"]]
    assert not lead_row["deleted"] and lead_row["properties"]["converted_contact_id"] == existing["Id"]
    assert lead_row["properties"]["is_converted"] is True
