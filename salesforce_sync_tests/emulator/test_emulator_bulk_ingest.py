"""Bulk API 2.0 ingest through simple-salesforce's bulk2: successful, failed and unprocessed results in
Salesforce's CSV formats, `#N/A` nulls and empty cells, a header that fails the whole job, row locks, injected job
failures and the 10,000-record batch accounting."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

from salesforce_sync.emulator import EmulatedOrg


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def lead_by_key(sf: Salesforce, key: str) -> dict[str, Any]:
    return sf.Lead.get_by_custom_id("External_Key__c", key)


def test_failed_rows_carry_salesforces_error_cells(sf: Salesforce, tmp_path: Path) -> None:
    upload = tmp_path / "leads.csv"
    upload.write_text("LastName,Company,Email,External_Key__c\n"
                      "Good,G,good@bulk-ingest.test,BI-1\n"
                      ",Missing,missing@bulk-ingest.test,BI-2\n"
                      "Bad Mail,B,not-an-email,BI-3\n"
                      "Clash,C,clash@bulk-ingest.test,bi-1\n")
    (result,) = sf.bulk2.Lead.insert(str(upload), wait=0)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (4, 3)
    failed = {r["External_Key__c"]: r for r in csv_rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))}
    assert failed["BI-2"]["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    assert failed["BI-3"]["sf__Error"] == "INVALID_EMAIL_ADDRESS:Email: invalid email address: not-an-email:Email --"
    assert failed["bi-1"]["sf__Error"].startswith("DUPLICATE_VALUE:duplicate value found: External_Key__c ")
    assert {r["sf__Id"] for r in failed.values()} == {""}
    (success,) = csv_rows(sf.bulk2.Lead.get_successful_records(result["job_id"]))
    assert (success["sf__Created"], success["LastName"]) == ("true", "Good")
    assert lead_by_key(sf, "BI-1")["Id"] == success["sf__Id"]


def test_na_nulls_a_field_and_an_empty_cell_leaves_it(sf: Salesforce) -> None:
    sf.Lead.create({"LastName": "Cells", "Company": "C", "Title": "Keep me", "Phone": "555-0100",
                    "External_Key__c": "BI-CELLS"})
    (result,) = sf.bulk2.Lead.upsert(records=[{"External_Key__c": "BI-CELLS", "Title": "", "Phone": "#N/A",
                                               "City": "Lyon"}], external_id_field="External_Key__c", wait=0)
    assert result["numberRecordsFailed"] == 0
    record = lead_by_key(sf, "BI-CELLS")
    assert (record["Title"], record["Phone"], record["City"]) == ("Keep me", None, "Lyon")


def test_update_and_delete_failures_name_the_record(sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Updatable", "Company": "U"})["id"]
    gone = sf.Lead.create({"LastName": "Gone", "Company": "U"})["id"]
    sf.Lead.delete(gone)
    (updated,) = sf.bulk2.Lead.update(records=[{"Id": lead_id, "Status": "Working - Contacted"},
                                               {"Id": gone, "Status": "Working - Contacted"}], wait=0)
    (failed,) = csv_rows(sf.bulk2.Lead.get_failed_records(updated["job_id"]))
    assert (failed["sf__Id"], failed["sf__Error"]) == (gone, "ENTITY_IS_DELETED:entity is deleted:--")
    assert sf.Lead.get(lead_id)["Status"] == "Working - Contacted"
    account_id = sf.Account.create({"Name": "Not a Lead"})["id"]
    (deleted,) = sf.bulk2.Lead.delete(records=[{"Id": lead_id}, {"Id": gone}, {"Id": account_id}], wait=0)
    assert (deleted["numberRecordsProcessed"], deleted["numberRecordsFailed"]) == (3, 2)
    assert sf.Account.get(account_id)["Name"] == "Not a Lead"


def test_an_unknown_column_fails_the_job_and_leaves_every_row_unprocessed(sf: Salesforce) -> None:
    with pytest.raises(SalesforceOperationError, match="InvalidBatch : Field name not found : Industryy"):
        sf.bulk2.Lead.insert(records=[{"LastName": "Never", "Company": "N", "Industryy": "Tech"}], wait=0)
    client = sf.bulk2.Lead._client
    job = client.create_job("insert")
    client.upload_job_data(job["id"], "LastName,Company,Shoe_Size__c\nNever,N,9\nNor,M,10\n")
    assert client.close_job(job["id"])["state"] == "UploadComplete"  # accepted; it fails while processing
    info = client.get_job(job["id"], False)
    assert (info["state"], info["errorMessage"]) == ("Failed", "InvalidBatch : Field name not found : Shoe_Size__c")
    assert csv_rows(sf.bulk2.Lead.get_unprocessed_records(job["id"])) == [
        {"LastName": "Never", "Company": "N", "Shoe_Size__c": "9"},
        {"LastName": "Nor", "Company": "M", "Shoe_Size__c": "10"}]
    assert sf.query("SELECT COUNT() FROM Lead WHERE LastName IN ('Never', 'Nor')")["totalSize"] == 0


def test_locked_rows_fail_as_retryable_rows(org: EmulatedOrg, sf: Salesforce) -> None:
    org.control.lock_rows("Lead", count=1)
    (result,) = sf.bulk2.Lead.insert(records=[{"LastName": "Locked", "Company": "L", "External_Key__c": "BI-LOCK"},
                                              {"LastName": "Free", "Company": "F", "External_Key__c": "BI-FREE"}],
                                     wait=0)
    (failed,) = csv_rows(sf.bulk2.Lead.get_failed_records(result["job_id"]))
    assert failed["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record")
    assert failed["sf__Error"].endswith(":--")
    assert lead_by_key(sf, "BI-FREE")["LastName"] == "Free"


def test_an_injected_failure_fails_the_next_ingest_job_of_the_object(org: EmulatedOrg, sf: Salesforce) -> None:
    org.control.fail_bulk_jobs("Lead", "InternalServerError : retry later", job_type="V2Ingest")
    assert sf.bulk2.Contact.insert(records=[{"LastName": "Other object"}], wait=0)[0]["numberRecordsFailed"] == 0
    with pytest.raises(SalesforceOperationError, match="InternalServerError : retry later"):
        sf.bulk2.Lead.insert(records=[{"LastName": "Refused", "Company": "R"}], wait=0)
    (retried,) = sf.bulk2.Lead.insert(records=[{"LastName": "Refused", "Company": "R"}], wait=0)
    assert retried["numberRecordsFailed"] == 0


def test_ingest_counts_one_bulk_batch_per_10000_records(sf: Salesforce) -> None:
    before = sf.limits()["DailyBulkApiBatches"]["Remaining"]
    records = [{"LastName": f"Batch {i}", "Company": "B", "External_Key__c": f"BI-BATCH-{i}"} for i in range(10_001)]
    (result,) = sf.bulk2.Lead.insert(records=records, wait=0)
    assert (result["numberRecordsProcessed"], result["numberRecordsFailed"]) == (10_001, 0)
    assert sf.limits()["DailyBulkApiBatches"]["Remaining"] == before - 2
    assert lead_by_key(sf, "BI-BATCH-10000")["LastName"] == "Batch 10000"


def test_relationship_columns_name_the_parent_by_its_external_id(sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Parent", "Company": "P", "External_Key__c": "BI-PARENT"})["id"]
    campaign_id = sf.Campaign.create({"Name": "Bulk Relationship Campaign"})["id"]
    (result,) = sf.bulk2.CampaignMember.insert(records=[
        {"CampaignId": campaign_id, "Lead.External_Key__c": "BI-PARENT"},
        {"CampaignId": campaign_id, "Lead.External_Key__c": "BI-NOBODY"}], wait=0)
    (failed,) = csv_rows(sf.bulk2.CampaignMember.get_failed_records(result["job_id"]))
    assert failed["sf__Error"] == ("INVALID_FIELD:Foreign key external ID: BI-NOBODY not found for field "
                                   "External_Key__c in entity Lead:--")
    (member,) = sf.query(f"SELECT LeadId FROM CampaignMember WHERE CampaignId = '{campaign_id}'")["records"]
    assert member["LeadId"] == lead_id
    with pytest.raises(SalesforceOperationError,
                       match="InvalidBatch : type is not needed for non polymorphic foreign key references: Lead"):
        sf.bulk2.CampaignMember.insert(records=[{"CampaignId": campaign_id, "Lead:Lead.External_Key__c": "BI-PARENT"}],
                                       wait=0)
    task = sf.Task.create({"Subject": "Call", "Who": {"attributes": {"type": "Lead"}, "External_Key__c": "BI-PARENT"}})
    assert sf.Task.get(task["id"])["WhoId"] == lead_id
