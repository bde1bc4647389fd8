"""sObject Collections and Composite through simple-salesforce's `restful`: 200 with per-record results in input
order (`statusCode`, not `errorCode`), allOrNone rolling everything back, references between Composite
subrequests, and each request counted as one API call."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.emulator.ids import make_id

HALTED = [{"errorCode": "PROCESSING_HALTED",
           "message": "The transaction was rolled back since another operation in the same transaction failed."}]


def rec(object_name: str, **values: Any) -> dict[str, Any]:
    return {"attributes": {"type": object_name}, **values}


def collection(sf: Salesforce, method: str, records: list[dict[str, Any]], *, all_or_none: bool = False,
               path: str = "composite/sobjects") -> list[dict[str, Any]]:
    return sf.restful(path, method=method, json={"allOrNone": all_or_none, "records": records})


def names(sf: Salesforce, soql_where: str, object_name: str = "Lead") -> list[str]:
    rows = sf.query_all(f"SELECT LastName FROM {object_name} WHERE {soql_where} ORDER BY LastName")["records"]
    return [r["LastName"] for r in rows]


# ---- Collections ------------------------------------------------------------------------------------------------

def test_mixed_types_in_input_order_with_each_records_own_error(sf: Salesforce) -> None:
    results = collection(sf, "POST", [
        rec("Lead", LastName="Col A", Company="A", Email="col-a@collections.test"),
        rec("Contact", LastName="Col B", Email="bad address"),
        rec("Account", Name="Collections Account"),
        rec("Lead", LastName="Col D", Company="D", Email="col-a@collections.test"),
    ])
    assert [r["success"] for r in results] == [True, False, True, False]
    assert results[0]["id"].startswith("00Q") and results[2]["id"].startswith("001")
    assert results[1] == {"success": False, "errors": [{
        "statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: bad address",
        "fields": ["Email"]}]}
    duplicate = results[3]["errors"][0]
    assert (duplicate["statusCode"], duplicate["fields"]) == ("DUPLICATES_DETECTED", [])
    assert duplicate["duplicateResut"]["matchResults"][0]["matchRecords"][0]["record"]["Id"] == results[0]["id"]
    assert names(sf, "Email = 'col-a@collections.test'") == ["Col A"]
    (allowed,) = sf.restful("composite/sobjects", method="POST", headers={
        "Sforce-Duplicate-Rule-Header": "allowSave=true"}, json={"records": [
            rec("Lead", LastName="Col E", Company="E", Email="col-a@collections.test")]})
    assert allowed["success"]
    assert names(sf, "Email = 'col-a@collections.test'") == ["Col A", "Col E"]


def test_all_or_none_rolls_back_every_record(sf: Salesforce) -> None:
    kept = sf.Lead.create({"LastName": "Untouched", "Company": "U"})["id"]
    results = collection(sf, "PATCH", [rec("Lead", id=kept, Title="Changed"),
                                       rec("Lead", id=make_id("00Q", 999_999, pod="5h"), Title="Missing")],
                         all_or_none=True)
    assert results[0] == {"success": False, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                   "header", "fields": []}]}
    assert results[1]["errors"] == [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
    assert sf.Lead.get(kept)["Title"] is None


def test_update_needs_ids_and_create_refuses_them(sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Has Id", "Company": "I"})["id"]
    (no_id,) = collection(sf, "PATCH", [rec("Lead", Title="Nobody")])
    assert no_id["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        collection(sf, "POST", [rec("Lead", id=lead_id, LastName="Again", Company="I")])
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_upsert_by_external_id_reports_created_in_order(sf: Salesforce) -> None:
    sf.Lead.create({"LastName": "Upsert Existing", "Company": "U", "External_Key__c": "COLL-1"})
    results = collection(sf, "PATCH", [
        rec("Lead", External_Key__c="COLL-2", LastName="Upsert New", Company="U"),
        rec("Lead", External_Key__c="COLL-1", Title="Matched"),
        rec("Lead", External_Key__c="COLL-3", LastName="No company"),
    ], path="composite/sobjects/Lead/External_Key__c")
    assert [(r["success"], r.get("created")) for r in results] == [(True, True), (True, False), (False, None)]
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Lead.get_by_custom_id("External_Key__c", "COLL-1")["Title"] == "Matched"


def test_delete_reports_each_id(sf: Salesforce) -> None:
    first = sf.Lead.create({"LastName": "Del 1", "Company": "D"})["id"]
    second = sf.Lead.create({"LastName": "Del 2", "Company": "D"})["id"]
    sf.Lead.delete(second)
    results = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{first},{second},garbage", "allOrNone": "false"})
    assert results[0] == {"id": first, "success": True, "errors": []}
    assert results[1]["errors"] == [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
    assert results[2]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert names(sf, f"Id = '{first}'") == []


def test_collections_are_one_api_call_and_over_200_records_are_refused(org: EmulatedOrg, sf: Salesforce) -> None:
    org.control.reset_api_calls()
    collection(sf, "POST", [rec("Lead", LastName=f"Batch {i}", Company="B") for i in range(200)])
    assert org.control.api_calls()["by_endpoint"] == {"composite.create": 1}
    with pytest.raises(SalesforceMalformedRequest) as caught:
        collection(sf, "POST", [rec("Lead", LastName=f"Over {i}", Company="O") for i in range(201)])
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert names(sf, "LastName LIKE 'Over %'") == []


# ---- Composite --------------------------------------------------------------------------------------------------

def composite(sf: Salesforce, subrequests: list[dict[str, Any]], *, all_or_none: bool = False) -> list[dict[str, Any]]:
    return sf.restful("composite", method="POST",
                      json={"allOrNone": all_or_none, "compositeRequest": subrequests})["compositeResponse"]


def sub(sf: Salesforce, method: str, path: str, reference_id: str, body: Any = None) -> dict[str, Any]:
    entry = {"method": method, "url": f"/services/data/v{sf.sf_version}/{path}", "referenceId": reference_id}
    if body is not None:
        entry["body"] = body
    return entry


def test_composite_chains_references_and_counts_one_call(org: EmulatedOrg, sf: Salesforce) -> None:
    org.control.reset_api_calls()
    items = composite(sf, [
        sub(sf, "POST", "sobjects/Account", "acct", {"Name": "Composite Parent"}),
        sub(sf, "POST", "sobjects/Contact", "cont", {"LastName": "Composite Child", "AccountId": "@{acct.id}"}),
        sub(sf, "GET", "sobjects/Contact/@{cont.id}?fields=AccountId", "read"),
        sub(sf, "GET", "query?q=SELECT+Id+FROM+Contact+WHERE+LastName='Composite Child'", "found"),
        sub(sf, "PATCH", "sobjects/Contact/@{found.records[0].Id}", "edit", {"Title": "Chained"}),
    ])
    assert [i["httpStatusCode"] for i in items] == [201, 201, 200, 200, 204]
    account_id, contact_id = items[0]["body"]["id"], items[1]["body"]["id"]
    assert items[0]["httpHeaders"]["Location"] == f"/services/data/v{sf.sf_version}/sobjects/Account/{account_id}"
    assert items[2]["body"]["AccountId"] == account_id
    assert org.control.api_calls()["by_endpoint"] == {"composite": 1}
    assert sf.Contact.get(contact_id)["Title"] == "Chained"


def test_composite_all_or_none_halts_and_rolls_back(sf: Salesforce) -> None:
    items = composite(sf, [
        sub(sf, "POST", "sobjects/Account", "acct", {"Name": "Rolled Back Parent"}),
        sub(sf, "POST", "sobjects/Contact", "bad", {"FirstName": "No last name", "AccountId": "@{acct.id}"}),
        sub(sf, "POST", "sobjects/Lead", "later", {"LastName": "Never", "Company": "N"}),
    ], all_or_none=True)
    assert [i["httpStatusCode"] for i in items] == [400, 400, 400]
    assert items[0]["body"] == HALTED and items[2]["body"] == HALTED
    assert items[1]["body"] == [{"message": "Required fields are missing: [LastName]",
                                 "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName"]}]
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Rolled Back Parent'")["totalSize"] == 0
    assert names(sf, "LastName = 'Never'") == []


def test_composite_without_all_or_none_commits_the_rest_and_halts_dependants(sf: Salesforce) -> None:
    items = composite(sf, [
        sub(sf, "POST", "sobjects/Account", "bad", {"Website": "no-name.test"}),
        sub(sf, "POST", "sobjects/Contact", "dependant", {"LastName": "Needs parent", "AccountId": "@{bad.id}"}),
        sub(sf, "POST", "sobjects/Lead", "independent", {"LastName": "Committed", "Company": "C"}),
    ])
    assert [i["httpStatusCode"] for i in items] == [400, 400, 201]
    assert items[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert "bad.id" in items[1]["body"][0]["message"]
    assert names(sf, "LastName = 'Committed'") == ["Committed"]
    assert names(sf, "LastName = 'Needs parent'", "Contact") == []


def test_composite_over_25_subrequests_is_refused_whole(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        composite(sf, [sub(sf, "POST", "sobjects/Lead", f"l{i}", {"LastName": f"Many {i}", "Company": "M"})
                       for i in range(26)])
    assert caught.value.content[0]["message"] == "Limit of 25 subrequests exceeded: 26"
    assert names(sf, "LastName LIKE 'Many %'") == []
