"""Change Data Capture end to end: writes made through simple-salesforce (REST, Collections, Bulk 2.0) and test
control arrive as change events through our Pub/Sub client over TLS, exactly and in order, from EARLIEST, LATEST
and a stored replay id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.salesforce.pubsub import ChangeEvent
from salesforce_sync_tests.emulator.pubsub_support import COUNTS, SETTINGS, collect, pubsub_client

def brief(events: list[ChangeEvent]) -> list[tuple[str, str, list[str]]]:
    return [(e.entity, e.change_type, e.record_ids) for e in events]


def write_script(sf: Salesforce, org: EmulatedOrg) -> dict[str, Any]:
    """The scripted writes; returns the ids and the events they must produce, in order."""
    sf.session.headers["Sforce-Call-Options"] = "client=audience-writer"
    lead = sf.Lead.create({"LastName": "Durand", "FirstName": "Léa", "Company": "Acme", "Email": "lea@acme.test",
                           "City": "Paris"})["id"]
    sf.Lead.update(lead, {"Email": None, "Title": "CTO", "City": "Lyon"})
    account = sf.Account.create({"Name": "Acme SA"})["id"]
    contact = sf.Contact.create({"LastName": "Martin", "AccountId": account})["id"]
    sf.Account.update(account, {"Phone": "+33 1 23 45 67 89"})  # the parent changes; its Contact emits nothing
    collection = [r["id"] for r in sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Lead"}, "LastName": f"Batch {i}", "Company": "Beta"} for i in range(2)]})]
    (job,) = sf.bulk2.Lead.update(records=[{"Id": collection[0], "Title": "Bulk title"}], wait=0)
    assert job["numberRecordsProcessed"] == 1 and job["numberRecordsFailed"] == 0
    sf.Lead.delete(lead)
    org.control.hard_delete("Lead", [lead])  # already in the recycle bin: purging it emits nothing
    org.control.hard_delete("Contact", [contact])  # a live record deleted for good emits DELETE
    gap = org.control.force_gap_event("Lead", [collection[1]], "GAP_UPDATE")
    overflow = org.control.force_overflow_event("Account")
    expected = [("Lead", "CREATE", [lead]), ("Lead", "UPDATE", [lead]), ("Account", "CREATE", [account]),
                ("Contact", "CREATE", [contact]), ("Account", "UPDATE", [account]),
                ("Lead", "CREATE", [collection[0]]), ("Lead", "CREATE", [collection[1]]),
                ("Lead", "UPDATE", [collection[0]]), ("Lead", "DELETE", [lead]), ("Contact", "DELETE", [contact]),
                ("Lead", "GAP_UPDATE", [collection[1]]), ("Account", "GAP_OVERFLOW", [])]
    return {"lead": lead, "account": account, "contact": contact, "collection": collection, "gap": gap,
            "overflow": overflow, "expected": expected}


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatedOrg, dict[str, Any]]]:
    with EmulatedOrg(counts=COUNTS, settings=SETTINGS, tls_dir=tmp_path_factory.mktemp("tls")) as org:
        yield org, write_script(org.simple_salesforce(), org)


def test_generated_data_emits_nothing(emulated_org_factory: Any) -> None:
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
        assert collect(sub, 0) == []
        assert sub.latest_replay_id == bytes(8)


def test_earliest_replays_exactly_the_scripted_writes(scripted: tuple[EmulatedOrg, dict[str, Any]]) -> None:
    org, script = scripted
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
        events = collect(sub, len(script["expected"]))
    assert brief(events) == script["expected"]
    assert int.from_bytes(events[-2].replay_id, "big") == script["gap"]
    assert int.from_bytes(events[-1].replay_id, "big") == script["overflow"]
    assert len({e.replay_id for e in events}) == len(events)


def test_create_update_and_delete_carry_salesforce_bodies(scripted: tuple[EmulatedOrg, dict[str, Any]]) -> None:
    org, script = scripted
    with pubsub_client(org) as client, client.subscribe("/data/LeadChangeEvent", replay_preset="EARLIEST") as sub:
        created, updated, *_ = collect(sub, 7)
    assert created.changed_fields == [] and created.nulled_fields == []
    assert created.values["Name"] == {"LastName": "Durand", "FirstName": "Léa", "Salutation": None}
    assert created.values["Email"] == "lea@acme.test" and created.values["Address"]["City"] == "Paris"
    assert created.values["Status"] == "Open - Not Contacted"  # the default a create fills in
    assert created.values["CreatedDate"] == created.values["LastModifiedDate"] > 1_600_000_000_000  # epoch ms
    integration_user = org.simple_salesforce().query(
        f"SELECT Id FROM User WHERE Username = '{org.connection_info()['username']}'")["records"][0]["Id"]
    assert created.commit_user == integration_user
    assert updated.change_type == "UPDATE"
    assert sorted(updated.changed_fields) == ["Address.City", "Email", "LastModifiedDate", "Title"]
    assert updated.nulled_fields == ["Email"]
    # An update carries only what changed: the unchanged Company is null although the record has one.
    assert updated.values["Title"] == "CTO" and updated.values["Company"] is None and updated.values["Email"] is None
    assert updated.values["Address"] == {"Street": None, "City": "Lyon", "State": None, "PostalCode": None,
                                         "Country": None, "Latitude": None, "Longitude": None,
                                         "GeocodeAccuracy": None}
    assert created.transaction_key != updated.transaction_key and created.sequence_number == 1


def test_delete_gap_and_overflow_are_header_only(scripted: tuple[EmulatedOrg, dict[str, Any]]) -> None:
    org, script = scripted
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
        events = collect(sub, len(script["expected"]))
    for event in events:
        if event.change_type in ("DELETE", "GAP_UPDATE", "GAP_OVERFLOW"):
            assert all(value is None for value in event.values.values()), event
            assert event.changed_fields == []
    assert events[-1].record_ids == [] and events[-1].entity == "Account"


def test_change_origin_names_the_api_and_the_calling_client(scripted: tuple[EmulatedOrg, dict[str, Any]]) -> None:
    org, script = scripted
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
        events = collect(sub, len(script["expected"]))
    origins = [e.change_origin for e in events]
    assert origins[0].startswith("com/salesforce/api/rest/") and origins[0].endswith(";client=audience-writer")
    assert origins[7].startswith("com/salesforce/api/bulkapi/") and origins[7].endswith(";client=audience-writer")
    assert origins[9:] == ["", "", ""]  # test control is no API call


def test_stored_replay_id_resumes_after_it(scripted: tuple[EmulatedOrg, dict[str, Any]]) -> None:
    org, script = scripted
    with pubsub_client(org) as client:
        with client.subscribe("/data/ChangeEvents", replay_preset="EARLIEST") as sub:
            stored = collect(sub, len(script["expected"]))[4].replay_id
        with client.subscribe("/data/ChangeEvents", replay_preset="CUSTOM", replay_id=stored) as sub:
            resumed = collect(sub, len(script["expected"]) - 5)
    assert brief(resumed) == script["expected"][5:]


def test_latest_delivers_only_new_writes_and_an_object_channel_only_its_object(emulated_org_factory: Any) -> None:
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    sf = org.simple_salesforce()
    sf.Lead.create({"LastName": "Before", "Company": "Old"})
    with pubsub_client(org) as client, client.subscribe("/data/LeadChangeEvent") as sub:
        assert collect(sub, 0, quiet_seconds=0.3) == []
        account = sf.Account.create({"Name": "Not a lead"})["id"]
        lead = sf.Lead.create({"LastName": "After", "Company": "New"})["id"]
        sf.Account.update(account, {"Name": "Still not a lead"})
        events = collect(sub, 1)
        latest = sub.latest_replay_id
    assert brief(events) == [("Lead", "CREATE", [lead])]
    # The channel's position moves past the other objects' events too, keepalives included.
    assert int.from_bytes(latest, "big") > int.from_bytes(events[0].replay_id, "big")


def test_parent_change_and_mirrored_fields_emit_nothing_for_the_child(emulated_org_factory: Any) -> None:
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    sf = org.simple_salesforce()
    lead = sf.Lead.create({"LastName": "Member", "Company": "Gamma", "Email": "m@gamma.test"})["id"]
    campaign = sf.query("SELECT Id FROM Campaign LIMIT 1")["records"][0]["Id"]
    member = sf.CampaignMember.create({"CampaignId": campaign, "LeadId": lead})["id"]
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents") as sub:
        assert collect(sub, 0, quiet_seconds=0.3) == []  # subscribed (LATEST): the writes above are not replayed
        sf.Lead.update(lead, {"Email": "new@gamma.test"})  # CampaignMember.Email follows, as a copy
        events = collect(sub, 1)
    assert sf.CampaignMember.get(member)["Email"] == "new@gamma.test"
    assert brief(events) == [("Lead", "UPDATE", [lead])]


def test_identical_changes_of_one_transaction_arrive_as_one_event(emulated_org_factory: Any) -> None:
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    org.control.freeze_clock()  # one transaction, one second
    sf = org.simple_salesforce()
    leads = [sf.Lead.create({"LastName": f"Same {i}", "Company": "Delta"})["id"] for i in range(4)]
    with pubsub_client(org) as client, client.subscribe("/data/LeadChangeEvent") as sub:
        assert collect(sub, 0, quiet_seconds=0.3) == []
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": True, "records": [
            {"attributes": {"type": "Lead"}, "Id": lead, "Status": "Working - Contacted"} for lead in leads[:3]]
            + [{"attributes": {"type": "Lead"}, "Id": leads[3], "Status": "Closed - Not Converted"}]})
        sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(leads[:2]), "allOrNone": "true"})
        events = collect(sub, 3)
    assert brief(events) == [("Lead", "UPDATE", leads[:3]), ("Lead", "UPDATE", [leads[3]]),
                             ("Lead", "DELETE", leads[:2])]
    assert events[0].values["Status"] == "Working - Contacted"
    assert events[0].transaction_key == events[1].transaction_key != events[2].transaction_key


def test_a_transaction_past_the_change_limit_ends_in_one_overflow_event(emulated_org_factory: Any) -> None:
    """Salesforce: the first 100,000 changes of a transaction become events, the rest one GAP_OVERFLOW per object
    (here the limit is 5)."""
    org = emulated_org_factory(counts=COUNTS, settings={**SETTINGS, "change_event_overflow_changes": 5})
    sf = org.simple_salesforce()
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents") as sub:
        assert collect(sub, 0, quiet_seconds=0.3) == []
        (job,) = sf.bulk2.Lead.insert(records=[{"LastName": f"Many {i}", "Company": "Epsilon"} for i in range(8)],
                                      wait=0.1)
        created = sf.Lead.create({"LastName": "Next transaction", "Company": "Epsilon"})["id"]
        events = collect(sub, 7)
    assert job["numberRecordsProcessed"] == 8
    assert [(e.change_type, len(e.record_ids)) for e in events] == [("CREATE", 1)] * 5 + [("GAP_OVERFLOW", 0),
                                                                                           ("CREATE", 1)]
    assert events[5].entity == "Lead" and events[5].transaction_key == events[0].transaction_key
    assert events[6].record_ids == [created]


def test_undelete_carries_the_restored_record(emulated_org_factory: Any) -> None:
    """The org has no undelete call yet; restoring from the recycle bin writes IsDeleted back to false with a new
    stamp, which is what the capture sees."""
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    sf = org.simple_salesforce()
    lead = sf.Lead.create({"LastName": "Back", "Company": "Zeta", "Title": "Returns"})["id"]
    sf.Lead.delete(lead)
    with org.org.write(records=True) as conn:
        conn.execute('UPDATE "Lead" SET "IsDeleted" = 0, "SystemModstamp" = "SystemModstamp" + 1 WHERE "Id" = ?',
                     (lead,))
    with pubsub_client(org) as client, client.subscribe("/data/LeadChangeEvent", replay_preset="EARLIEST") as sub:
        events = collect(sub, 3)
    assert brief(events) == [("Lead", "CREATE", [lead]), ("Lead", "DELETE", [lead]), ("Lead", "UNDELETE", [lead])]
    assert events[2].values["Title"] == "Returns" and events[2].values["Company"] == "Zeta"


def test_a_new_field_appears_under_a_new_schema_id(emulated_org_factory: Any) -> None:
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    sf = org.simple_salesforce()
    with pubsub_client(org) as client:
        before = client.get_topic("/data/ContactChangeEvent").schema_id
        org.control.add_field("Contact", "Segment__c", "string", "Segment")
        org.control.delete_field("Contact", "Department")
        after = client.get_topic("/data/ContactChangeEvent").schema_id
        contact = sf.Contact.create({"LastName": "Schema", "Segment__c": "B2B"})["id"]
        with client.subscribe("/data/ContactChangeEvent", replay_preset="EARLIEST") as sub:
            (event,) = collect(sub, 1)
    assert before != after
    assert event.record_ids == [contact] and event.values["Segment__c"] == "B2B" and "Department" not in event.values
