"""The test-control knobs (clock and its skew, faults after N requests, failed Bulk jobs, sessions, limits, schema,
users, record updates, hard deletes, late commits, API-call counts) and the Salesforce errors they stage, as
simple-salesforce sees them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession, SalesforceGeneralError, SalesforceMalformedRequest, SalesforceOperationError,
    SalesforceRefusedRequest, SalesforceResourceNotFound,
)

from salesforce_sync.emulator import EmulatedOrg

SMALL = {"Lead": 500, "Contact": 20, "CampaignMember": 10}
NOON = dt.datetime(2031, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg]) -> EmulatedOrg:
    return emulated_org_factory(counts=SMALL)


def error_code(caught: pytest.ExceptionInfo) -> str:
    return caught.value.content[0]["errorCode"]


def lead_ids(sf: Salesforce, *, include_deleted: bool = False) -> set[str]:
    return {r["Id"] for r in sf.query_all("SELECT Id FROM Lead", include_deleted=include_deleted)["records"]}


# ---- query errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT FROM Lead", "MALFORMED_QUERY"),
    ("SELECT Id FROM Lead WHERE Email = \"a@b.c\"", "MALFORMED_QUERY"),
    ("SELECT Id, Shoe_Size__c FROM Lead", "INVALID_FIELD"),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Leed", "INVALID_TYPE"),
])
def test_bad_soql_is_a_malformed_request_with_salesforces_code(org: EmulatedOrg, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        org.simple_salesforce().query(soql)
    assert error_code(caught) == code
    assert "ERROR at Row:1:Column:" in caught.value.content[0]["message"]


def test_unknown_locator_and_unknown_records_and_objects(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    with pytest.raises(SalesforceMalformedRequest) as locator:
        sf.query_more("01gRO0000000042AAA-2000")
    assert error_code(locator) == "INVALID_QUERY_LOCATOR"
    with pytest.raises(SalesforceResourceNotFound) as record:
        sf.Lead.get("00Q5g0000099999AAA")
    assert error_code(record) == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound) as sobject:
        sf.Leed.describe()
    assert error_code(sobject) == "NOT_FOUND"


def test_a_locator_idle_for_over_15_minutes_of_org_clock_is_invalid(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    options = {"Sforce-Query-Options": "batchSize=200"}
    page = sf.query("SELECT Id FROM Lead", headers=options)
    org.control.move_clock(dt.timedelta(minutes=14))
    page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=options)  # still open; idle resets
    assert len(page["records"]) == 200
    org.control.move_clock(dt.timedelta(minutes=16))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    assert caught.value.content == [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]


# ---- clock -------------------------------------------------------------------------------------------------------

def test_clock_can_be_set_frozen_moved_and_released(org: EmulatedOrg) -> None:
    control = org.control
    control.set_clock(NOON, freeze=True)
    time.sleep(0.05)
    assert control.now() == NOON
    control.move_clock(dt.timedelta(minutes=90))
    assert control.now() == NOON + dt.timedelta(minutes=90)
    control.unfreeze_clock()
    time.sleep(0.05)
    assert NOON + dt.timedelta(minutes=90) < control.now() < NOON + dt.timedelta(minutes=91)

    control.set_clock(NOON)  # running, not frozen
    time.sleep(0.05)
    assert NOON < control.now() < NOON + dt.timedelta(seconds=5)
    control.freeze_clock()
    frozen = control.now()
    time.sleep(0.05)
    assert control.now() == frozen
    sf = org.simple_salesforce()
    created = sf.Lead.create({"LastName": "Clocked", "Company": "Time"})["id"]
    assert sf.Lead.get(created)["CreatedDate"] == frozen.strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{frozen.microsecond // 1000:03d}+0000"


# ---- faults ------------------------------------------------------------------------------------------------------

def test_injected_503_hits_the_next_n_matching_requests_only(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.inject_error(r"/query$", 503, "SERVER_UNAVAILABLE", "Server is unavailable", count=2)
    sf.Lead.describe()  # does not match the path
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError) as caught:
            sf.query("SELECT Id FROM Lead LIMIT 1")
        assert caught.value.status == 503
        assert caught.value.content == [{"message": "Server is unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
    assert len(sf.query("SELECT Id FROM Lead LIMIT 1")["records"]) == 1


def test_injected_errors_can_target_one_method_and_be_cleared(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.inject_error(r"/sobjects/Lead", 400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access",
                             count=-1, method="POST")
    assert sf.Lead.describe()["name"] == "Lead"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "Locked", "Company": "Out"})
    assert error_code(caught) == "UNABLE_TO_LOCK_ROW"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.create({"LastName": "Locked", "Company": "Out"})  # count -1 lasts until cleared
    org.control.clear_faults()
    assert sf.Lead.create({"LastName": "Unlocked", "Company": "In"})["success"]


def test_faults_never_block_the_control_api(org: EmulatedOrg) -> None:
    org.control.inject_error(".*", 500, "UNKNOWN_EXCEPTION", count=-1)
    assert org.control.now()  # the control API still answers
    org.control.clear_faults()
    assert org.simple_salesforce().query("SELECT COUNT() FROM Lead")["totalSize"] > 0


def test_cut_connection_drops_the_response_half_way_once(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.cut_connection(r"/query")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # Content-Length promised more than came
        sf.query("SELECT Id, Email FROM Lead")
    assert len(sf.query("SELECT Id, Email FROM Lead")["records"]) == org.org.count("Lead")


def test_cut_connection_of_an_empty_answer_drops_it_after_the_write(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    lead = sf.Lead.create({"LastName": "Cut", "Company": "C"})["id"]
    org.control.cut_connection(r"/sobjects/Lead/00Q\w+$")
    with pytest.raises(requests.exceptions.ConnectionError):  # a 204 has no body to cut: no answer at all
        sf.Lead.update(lead, {"Title": "Applied"})
    assert sf.Lead.get(lead)["Title"] == "Applied"


def test_added_latency_slows_matching_requests(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.add_latency(r"/limits", 300, count=1)
    started = time.perf_counter()
    sf.limits()
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    sf.limits()
    assert time.perf_counter() - started < 0.3


# ---- sessions and limits -----------------------------------------------------------------------------------------

def test_expiring_every_session_forces_a_relogin(org: EmulatedOrg) -> None:
    info = org.connection_info()
    token_client = org.simple_salesforce()
    soap_client = Salesforce(username=info["username"], password=info["password"],
                             security_token=info["security_token"], session=org.session())
    first_session = soap_client.session_id
    assert org.control.expire_sessions() >= 2

    with pytest.raises(SalesforceExpiredSession) as caught:
        token_client.query("SELECT Id FROM Lead LIMIT 1")
    assert error_code(caught) == "INVALID_SESSION_ID"
    assert len(soap_client.query("SELECT Id FROM Lead LIMIT 1")["records"]) == 1  # simple-salesforce logs in again
    assert soap_client.session_id != first_session


def test_an_exhausted_daily_limit_refuses_calls_until_tomorrow(org: EmulatedOrg) -> None:
    org.control.set_clock(NOON)
    sf = org.simple_salesforce()
    org.control.exhaust_api_limit()
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert caught.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    raw = org.session().get(f"{org.base_url}/services/data/v59.0/limits", headers=sf.headers, timeout=30)
    assert (raw.status_code, raw.headers["Sforce-Limit-Info"]) == (403, "api-usage=15000/15000")

    org.control.set_api_limit(16000)
    assert len(sf.query("SELECT Id FROM Lead LIMIT 1")["records"]) == 1
    assert sf.api_usage["api-usage"].used == 15001 and sf.api_usage["api-usage"].total == 16000

    org.control.exhaust_api_limit()
    org.control.move_clock(dt.timedelta(hours=13))  # past midnight UTC: a new day's allowance
    fresh = org.simple_salesforce()
    assert fresh.limits()["DailyApiRequests"] == {"Max": 16000, "Remaining": 15999}


def test_api_calls_are_counted_per_endpoint_and_can_be_reset(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.reset_api_calls()
    sf.query("SELECT Id FROM Lead LIMIT 1")
    sf.Lead.create({"LastName": "Counted", "Company": "C"})
    sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0).__next__()
    calls = org.control.api_calls()
    assert calls["by_endpoint"] == {"query": 1, "sobjects.create": 1, "bulk2.query.create": 1,
                                    "bulk2.query.status": 1, "bulk2.query.results": 1}
    assert calls["used"] == 5
    org.control.reset_api_calls()
    assert org.control.api_calls() == {"by_endpoint": {}, "used": 0, "max": 15000}


# ---- schema changes ----------------------------------------------------------------------------------------------

def lead_fields(sf: Salesforce) -> dict[str, dict]:
    return {f["name"]: f for f in sf.Lead.describe()["fields"]}


def test_a_deleted_field_leaves_describe_and_becomes_an_invalid_field(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    assert "Title" in lead_fields(sf)
    org.control.delete_field("Lead", "Title")
    assert "Title" not in lead_fields(sf)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Title FROM Lead")
    assert error_code(caught) == "INVALID_FIELD"
    assert len(sf.query("SELECT Id, Email FROM Lead LIMIT 5")["records"]) == 5


def test_a_renamed_field_keeps_its_data_under_the_new_name(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    before = {r["Id"]: r["Lead_Score__c"] for r in sf.query_all("SELECT Id, Lead_Score__c FROM Lead")["records"]}
    org.control.rename_field("Lead", "Lead_Score__c", "Score__c")
    fields = lead_fields(sf)
    assert "Score__c" in fields and "Lead_Score__c" not in fields
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Id, Lead_Score__c FROM Lead")
    assert error_code(caught) == "INVALID_FIELD"
    after = {r["Id"]: r["Score__c"] for r in sf.query_all("SELECT Id, Score__c FROM Lead")["records"]}
    assert after == before and any(v is not None for v in after.values())


def test_an_added_custom_field_is_described_queryable_and_writable(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.add_field("Lead", "Loyalty_Tier__c", "string", label="Loyalty Tier")
    field = lead_fields(sf)["Loyalty_Tier__c"]
    assert (field["type"], field["custom"], field["label"], field["nillable"]) == ("string", True, "Loyalty Tier", True)
    records = sf.query_all("SELECT Id, Loyalty_Tier__c FROM Lead")["records"]
    assert all(r["Loyalty_Tier__c"] is None for r in records)
    sf.Lead.update(records[0]["Id"], {"Loyalty_Tier__c": "Gold"})
    assert sf.Lead.get(records[0]["Id"])["Loyalty_Tier__c"] == "Gold"


# ---- deletes and late commits ------------------------------------------------------------------------------------

def test_hard_deleted_records_are_invisible_even_to_query_all(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    soft, hard = sorted(lead_ids(sf))[:2]
    sf.Lead.delete(soft)
    assert org.control.hard_delete("Lead", [hard]) == 1
    everything = lead_ids(sf, include_deleted=True)
    assert soft in everything and hard not in everything
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(hard)


def test_a_late_commit_is_visible_now_but_stamped_in_the_past(org: EmulatedOrg) -> None:
    org.control.set_clock(NOON, freeze=True)
    sf = org.simple_salesforce()
    watermark = "2031-01-15T11:55:00Z"
    window = f"SELECT Id, LastModifiedDate FROM Lead WHERE LastModifiedDate >= {watermark}"
    assert sf.query(window)["totalSize"] == 0

    stamped = NOON - dt.timedelta(minutes=3)
    created = org.control.late_commit("Lead", stamped, {"LastName": "Late", "Company": "Slow Tx"})
    existing = sorted(lead_ids(sf) - {created})[0]
    org.control.late_commit("Lead", stamped, {"Title": "Touched late"}, record_id=existing)

    records = {r["Id"]: r["LastModifiedDate"] for r in sf.query(window)["records"]}
    assert records == {created: "2031-01-15T11:57:00.000+0000", existing: "2031-01-15T11:57:00.000+0000"}
    assert sf.Lead.get(existing)["Title"] == "Touched late"
    assert sf.query(f"SELECT Id FROM Lead WHERE LastModifiedDate > {NOON.isoformat()}")["totalSize"] == 0


# ---- sharper faults, users, formula inputs and clock skew --------------------------------------------------------

def test_a_cut_after_two_matching_requests_hits_page_3_of_a_bulk_result(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.cut_connection(r"/jobs/query/750\w+/results", after=2)
    pages = sf.bulk2.Lead.query("SELECT Id FROM Lead ORDER BY Id", max_records=100, wait=0)
    assert [len(next(pages).splitlines()) for _ in range(2)] == [101, 101]
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        next(pages)
    rows = sum(len(page.splitlines()) - 1 for page in sf.bulk2.Lead.query("SELECT Id FROM Lead", max_records=100,
                                                                           wait=0))
    assert rows == org.org.count("Lead")


def test_the_next_bulk_job_of_an_object_ends_failed(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    org.control.fail_bulk_jobs("Lead", "InternalServerError : query timed out", job_type="V2Query")
    with pytest.raises(SalesforceOperationError, match="InternalServerError : query timed out"):
        next(sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0))
    assert len(next(sf.bulk2.Lead.query("SELECT Id FROM Lead", wait=0)).splitlines()) == org.org.count("Lead") + 1


def test_a_deactivated_user_can_no_longer_own_records(org: EmulatedOrg) -> None:
    sf = org.simple_salesforce()
    user_id = sf.query("SELECT Id FROM User WHERE IsActive = true AND Alias != 'integ' LIMIT 1")["records"][0]["Id"]
    lead_id = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    org.control.deactivate_user(user_id)
    assert sf.User.get(user_id)["IsActive"] is False
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(lead_id, {"OwnerId": user_id})
    assert error_code(caught) == "INACTIVE_OWNER_OR_USER"


def test_updating_a_parent_leaves_its_childrens_stamps(org: EmulatedOrg) -> None:
    """How a test changes a formula's input: the parent's stamps move, the child's (whose formula reads the
    parent) do not."""
    org.control.set_clock(NOON, freeze=True)
    sf = org.simple_salesforce()  # after the clock moves: a token issued before it would have expired
    account_id = sf.Account.create({"Name": "Formula Parent", "Industry": "Retail"})["id"]
    contact_id = sf.Contact.create({"LastName": "Formula Child", "AccountId": account_id})["id"]
    org.control.move_clock(dt.timedelta(hours=1))
    org.control.update_record("Account", account_id, {"Industry": "Banking"})
    (child,) = sf.query(f"SELECT SystemModstamp, Account.Industry FROM Contact WHERE Id = '{contact_id}'")["records"]
    assert (child["Account"]["Industry"], child["SystemModstamp"]) == ("Banking", "2031-01-15T12:00:00.000+0000")
    assert sf.Account.get(account_id)["SystemModstamp"] == "2031-01-15T13:00:00.000+0000"


def test_the_org_clock_can_run_behind_or_ahead_of_the_host(org: EmulatedOrg) -> None:
    for skew in (dt.timedelta(hours=-3), dt.timedelta(minutes=7)):
        org.control.skew_clock(skew)
        first = org.control.now()
        host = dt.datetime.now(dt.timezone.utc)
        assert abs((first - host) - skew) < dt.timedelta(seconds=5)
        time.sleep(0.05)
        assert org.control.now() > first  # running, not frozen
        created = org.simple_salesforce().Lead.create({"LastName": "Skewed", "Company": "S"})["id"]
        stamp = dt.datetime.strptime(org.simple_salesforce().Lead.get(created)["CreatedDate"],
                                     "%Y-%m-%dT%H:%M:%S.%f%z")
        assert abs((stamp - host) - skew) < dt.timedelta(seconds=5)
