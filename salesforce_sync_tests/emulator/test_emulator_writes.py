"""Writes through simple-salesforce: single records, upsert, sObject Collections and Bulk 2.0 ingest, each
stamping LastModifiedDate from the emulator clock, and each DML error reaching the client as Salesforce sends it."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from salesforce_sync.emulator import EmulatedOrg

T0 = dt.datetime(2031, 5, 4, 10, 0, tzinfo=dt.timezone.utc)


def rest_stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """Shared by the write tests: each freezes the clock at its own moment and writes its own records."""
    with EmulatedOrg(counts={"Lead": 450, "Contact": 20, "CampaignMember": 10},
                     tls_dir=tmp_path_factory.mktemp("tls")) as emulated:
        yield emulated


def client_at(org: EmulatedOrg, at: dt.datetime) -> Salesforce:
    """Freeze the org clock at `at` and log in (a token issued earlier may have expired on the org clock)."""
    org.control.set_clock(at, freeze=True)
    return org.simple_salesforce()


def stamps(sf: Salesforce, record_id: str) -> dict[str, Any]:
    return sf.query_all(f"SELECT CreatedDate, LastModifiedDate, SystemModstamp, IsDeleted FROM Lead "
                        f"WHERE Id = '{record_id}'", include_deleted=True)["records"][0]


def dml_error(caught: pytest.ExceptionInfo) -> tuple[str, str, list[str]]:
    error = caught.value.content[0]
    return error["errorCode"], error["message"], error.get("fields", [])


# ---- single records --------------------------------------------------------------------------------------------

def test_create_update_delete_move_last_modified_with_the_org_clock(org: EmulatedOrg) -> None:
    sf = client_at(org, T0)
    created = sf.Lead.create({"LastName": "Lovelace", "Company": "Analytical Engines", "Email": "ada@example.com"})
    assert created["success"] and created["id"].startswith("00Q") and len(created["id"]) == 18
    lead_id = created["id"]
    assert stamps(sf, lead_id) == {**stamps(sf, lead_id), "CreatedDate": rest_stamp(T0),
                                   "LastModifiedDate": rest_stamp(T0), "SystemModstamp": rest_stamp(T0)}

    org.control.move_clock(dt.timedelta(minutes=20))
    assert sf.Lead.update(lead_id, {"FirstName": "Ada"}) == 204
    record = sf.Lead.get(lead_id)
    assert (record["Name"], record["Email"]) == ("Ada Lovelace", "ada@example.com")
    assert record["CreatedDate"] == rest_stamp(T0)
    assert record["LastModifiedDate"] == rest_stamp(T0 + dt.timedelta(minutes=20))

    org.control.move_clock(dt.timedelta(minutes=20))
    assert sf.Lead.delete(lead_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(lead_id)
    gone = stamps(sf, lead_id)
    assert gone["IsDeleted"] is True
    assert gone["LastModifiedDate"] == rest_stamp(T0 + dt.timedelta(minutes=40))
    with pytest.raises(SalesforceResourceNotFound) as again:
        sf.Lead.delete(lead_id)
    assert dml_error(again)[0] == "ENTITY_IS_DELETED"


def test_upsert_by_external_id_creates_then_updates(org: EmulatedOrg) -> None:
    at = T0 + dt.timedelta(days=1)
    sf = client_at(org, at)
    assert sf.Lead.upsert("External_Key__c/EXT-1", {"LastName": "Hopper", "Company": "Navy"}) == 201
    org.control.move_clock(dt.timedelta(minutes=5))
    assert sf.Lead.upsert("External_Key__c/EXT-1", {"Title": "Rear Admiral"}) == 200
    record = sf.Lead.get_by_custom_id("External_Key__c", "EXT-1")
    assert (record["LastName"], record["Title"]) == ("Hopper", "Rear Admiral")
    assert record["CreatedDate"] == rest_stamp(at)
    assert record["LastModifiedDate"] == rest_stamp(at + dt.timedelta(minutes=5))

    raw = org.session().patch(f"{org.base_url}/services/data/v59.0/sobjects/Lead/External_Key__c/EXT-1",
                              json={"Title": "Admiral"}, headers=sf.headers, timeout=30)
    assert raw.status_code == 200
    assert (raw.json()["created"], raw.json()["id"]) == (False, record["Id"])


def test_dml_errors_reach_simple_salesforce_as_malformed_requests(org: EmulatedOrg) -> None:
    sf = client_at(org, T0 + dt.timedelta(days=2))
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.Lead.create({"FirstName": "No", "Email": "no-name@example.com"})
    assert dml_error(missing) == ("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName, Company]",
                                  ["LastName", "Company"])

    sf.Lead.create({"LastName": "First", "Company": "Dup", "External_Key__c": "DUP-1"})
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Lead.create({"LastName": "Second", "Company": "Dup", "External_Key__c": "dup-1"})
    code, message, fields = dml_error(duplicate)
    assert (code, fields) == ("DUPLICATE_VALUE", ["External_Key__c"])
    assert message.startswith("duplicate value found: External_Key__c duplicates value on record with id: 00Q")

    with pytest.raises(SalesforceMalformedRequest) as dangling:
        sf.Lead.create({"LastName": "Orphan", "Company": "X", "OwnerId": "005000000000999AAA"})
    assert dml_error(dangling) == ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["OwnerId"])

    with pytest.raises(SalesforceMalformedRequest) as unknown_field:
        sf.Lead.create({"LastName": "X", "Company": "Y", "Shoe_Size__c": 9})
    assert dml_error(unknown_field)[0] == "INVALID_FIELD"

    with pytest.raises(SalesforceResourceNotFound) as missing_record:
        sf.Lead.update("00Q5g0000099999AAA", {"Title": "Nobody"})
    assert dml_error(missing_record)[0] == "NOT_FOUND"


def test_failed_writes_leave_no_trace(org: EmulatedOrg) -> None:
    sf = client_at(org, T0 + dt.timedelta(days=3))
    before = org.org.count("Lead")
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.create({"LastName": "Orphan", "Company": "X", "OwnerId": "005000000000999AAA"})
    assert org.org.count("Lead") == before


# ---- sObject Collections ---------------------------------------------------------------------------------------

def collection(sf: Salesforce, method: str, records: list[dict[str, Any]], *, all_or_none: bool) -> list[dict]:
    return sf.restful("composite/sobjects", method=method, json={"allOrNone": all_or_none, "records": records})


def lead(**values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, **values}


def test_collection_create_reports_each_record_and_commits_the_good_ones(org: EmulatedOrg) -> None:
    sf = client_at(org, T0 + dt.timedelta(days=4))
    results = collection(sf, "POST", [lead(LastName="Good", Company="A"), lead(LastName="Bad"),
                                      lead(LastName="Also good", Company="B")], all_or_none=False)
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                     "message": "Required fields are missing: [Company]", "fields": ["Company"]}]
    for result in (results[0], results[2]):
        assert stamps(sf, result["id"])["LastModifiedDate"] == rest_stamp(T0 + dt.timedelta(days=4))

    org.control.move_clock(dt.timedelta(minutes=30))
    updated = collection(sf, "PATCH", [lead(id=results[0]["id"], Title="CEO")], all_or_none=False)
    assert updated == [{"id": results[0]["id"], "success": True, "errors": []}]
    assert stamps(sf, results[0]["id"])["LastModifiedDate"] == rest_stamp(T0 + dt.timedelta(days=4, minutes=30))

    deleted = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{results[0]['id']},{results[2]['id']}", "allOrNone": "false"})
    assert [r["success"] for r in deleted] == [True, True]
    assert all(stamps(sf, r["id"])["IsDeleted"] for r in deleted)


def test_collection_all_or_none_commits_nothing_when_one_record_fails(org: EmulatedOrg) -> None:
    sf = client_at(org, T0 + dt.timedelta(days=5))
    before = org.org.count("Lead")
    results = collection(sf, "POST", [lead(LastName="Fine", Company="A"), lead(Company="No last name")],
                         all_or_none=True)
    assert results[0] == {"success": False, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                   "header", "fields": []}]}
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert org.org.count("Lead") == before


def test_collection_upsert_reports_created_flags(org: EmulatedOrg) -> None:
    sf = client_at(org, T0 + dt.timedelta(days=6))
    sf.Lead.create({"LastName": "Existing", "Company": "C", "External_Key__c": "COL-1"})
    results = sf.restful("composite/sobjects/Lead/External_Key__c", method="PATCH", json={
        "allOrNone": False, "records": [lead(External_Key__c="COL-1", Title="Updated"),
                                        lead(External_Key__c="COL-2", LastName="New", Company="D")]})
    assert [(r["success"], r["created"]) for r in results] == [(True, False), (True, True)]


def test_collection_over_200_records_is_refused(org: EmulatedOrg) -> None:
    sf = client_at(org, T0 + dt.timedelta(days=7))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        collection(sf, "POST", [lead(LastName=f"L{i}", Company="X") for i in range(201)], all_or_none=False)
    assert dml_error(caught)[0] == "EXCEEDED_ID_LIMIT"


# ---- Bulk 2.0 ingest -------------------------------------------------------------------------------------------

def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bulk_ingest_insert_reports_successful_and_failed_rows(org: EmulatedOrg) -> None:
    at = T0 + dt.timedelta(days=8)
    sf = client_at(org, at)
    (result,) = sf.bulk2.Lead.insert(records=[
        {"LastName": "Bulk One", "Company": "B1", "Email": "one@bulk.example"},
        {"LastName": "Bulk Two", "Company": ""},
        {"LastName": "Bulk Three", "Company": "B3", "Email": "three@bulk.example"},
    ], wait=0)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"], result["numberRecordsTotal"]) == (3, 1, 3)

    successful = csv_rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
    assert [(r["sf__Created"], r["LastName"]) for r in successful] == [("true", "Bulk One"), ("true", "Bulk Three")]
    failed = csv_rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
    assert [r["LastName"] for r in failed] == ["Bulk Two"]
    assert failed[0]["sf__Error"].startswith("REQUIRED_FIELD_MISSING:Required fields are missing: [Company]")
    for row in successful:
        record = sf.Lead.get(row["sf__Id"])
        assert (record["Email"], record["LastModifiedDate"]) == (row["Email"], rest_stamp(at))


def test_bulk_ingest_update_upsert_and_delete(org: EmulatedOrg) -> None:
    at = T0 + dt.timedelta(days=9)
    sf = client_at(org, at)
    first = sf.Lead.create({"LastName": "Target", "Company": "T", "External_Key__c": "BULK-UP-1"})["id"]
    org.control.move_clock(dt.timedelta(minutes=40))

    (updated,) = sf.bulk2.Lead.update(records=[{"Id": first, "Title": "Bulk updated"}], wait=0)
    assert updated["numberRecordsFailed"] == 0
    assert stamps(sf, first)["LastModifiedDate"] == rest_stamp(at + dt.timedelta(minutes=40))

    (upserted,) = sf.bulk2.Lead.upsert(records=[
        {"External_Key__c": "BULK-UP-1", "Title": "Via upsert"},
        {"External_Key__c": "BULK-UP-2", "LastName": "Fresh", "Company": "F"},
    ], external_id_field="External_Key__c", wait=0)
    assert upserted["numberRecordsFailed"] == 0
    created_flags = [r["sf__Created"] for r in csv_rows(sf.bulk2.Lead.get_successful_records(upserted["job_id"]))]
    assert created_flags == ["false", "true"]
    assert sf.Lead.get(first)["Title"] == "Via upsert"

    (deleted,) = sf.bulk2.Lead.delete(records=[{"Id": first}, {"Id": "00Q5g0000099999AAA"}], wait=0)
    assert (deleted["numberRecordsProcessed"], deleted["numberRecordsFailed"]) == (2, 1)
    assert stamps(sf, first)["IsDeleted"] is True


# ---- paging while records change ---------------------------------------------------------------------------------

def test_a_write_between_pages_shows_on_the_next_rest_page_and_bulk_chunk(org: EmulatedOrg) -> None:
    """The emulator renders the next page ahead while the client reads; a write in between must not be missed."""
    sf = client_at(org, T0 + dt.timedelta(days=10))
    soql = "SELECT Id, Title FROM Lead ORDER BY Id"
    later = [r["Id"] for r in sf.query_all(soql)["records"]][250]
    options = {"Sforce-Query-Options": "batchSize=200"}

    first = sf.query(soql, headers=options)
    sf.Lead.update(later, {"Title": "Changed mid-paging"})
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=options)
    assert {r["Id"]: r["Title"] for r in second["records"]}[later] == "Changed mid-paging"

    session, jobs = org.session(), f"{org.base_url}/services/data/v59.0/jobs/query"
    job = session.post(jobs, json={"operation": "query", "query": soql}, headers=sf.headers, timeout=30).json()
    chunk = session.get(f"{jobs}/{job['id']}/results", params={"maxRecords": 200}, headers=sf.headers, timeout=30)
    sf.Lead.update(later, {"Title": "Changed again"})
    rest = session.get(f"{jobs}/{job['id']}/results", headers=sf.headers, timeout=30,
                       params={"maxRecords": 200, "locator": chunk.headers["Sforce-Locator"]})
    assert f'"{later}","Changed again"' in rest.text
