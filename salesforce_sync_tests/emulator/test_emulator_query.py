"""Reading a 10,000+ Lead org the ways sync tools do: REST query/queryAll paging, Bulk 2.0 downloads, versions,
trailing slashes, batch sizes, describe, limits and API-usage accounting."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync.emulator.render import RestRenderer
from salesforce_sync.emulator.soql import compile_query

LEADS = 10_500
FIELDS = "Id, Email, IsDeleted, HasOptedOutOfEmail, LastModifiedDate, Owner.Email"


@pytest.fixture(scope="module")
def big_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """Read-only for every test here: nothing writes, moves the clock or changes settings."""
    with EmulatedOrg(counts={"Lead": LEADS}, tls_dir=tmp_path_factory.mktemp("tls")) as org:
        yield org


@pytest.fixture(scope="module")
def sf(big_org: EmulatedOrg) -> Salesforce:
    return big_org.simple_salesforce()


def rest_rows(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    """(Id, Email, IsDeleted, opted out, LastModifiedDate, owner email) of REST records, in Bulk CSV's text form."""
    return {(r["Id"], r["Email"] or "", str(r["IsDeleted"]).lower(), str(r["HasOptedOutOfEmail"]).lower(),
             r["LastModifiedDate"].replace("+0000", "Z"), r["Owner"]["Email"] if r["Owner"] else "")
            for r in records}


def bulk_rows(chunks: Iterator[str]) -> tuple[set[tuple[str, ...]], int]:
    """The same tuples from Bulk CSV chunks, and how many chunks there were."""
    rows: set[tuple[str, ...]] = set()
    count = 0
    for chunk in chunks:
        count += 1
        reader = csv.reader(io.StringIO(chunk))
        assert next(reader) == ["Id", "Email", "IsDeleted", "HasOptedOutOfEmail", "LastModifiedDate", "Owner.Email"]
        rows.update(tuple(row) for row in reader)
    return rows, count


# ---- REST paging ---------------------------------------------------------------------------------------------

def test_query_pages_through_every_live_lead_in_2000_row_pages(sf: Salesforce, big_org: EmulatedOrg) -> None:
    live = big_org.org.count("Lead")
    assert 10_000 < live < LEADS  # about 1% of generated Leads sit in the recycle bin
    first = sf.query(f"SELECT {FIELDS} FROM Lead")
    assert (first["totalSize"], first["done"], len(first["records"])) == (live, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")

    records, page = list(first["records"]), first
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        assert page["totalSize"] == live
        records.extend(page["records"])
    assert "nextRecordsUrl" not in page
    assert len(records) == len({r["Id"] for r in records}) == live
    assert not any(r["IsDeleted"] for r in records)
    assert all(len(r["Id"]) == 18 and r["LastModifiedDate"].endswith(".000+0000") for r in records)


def test_query_all_includes_the_deleted_rows_and_keeps_query_locators(sf: Salesforce, big_org: EmulatedOrg) -> None:
    first = sf.query("SELECT Id, IsDeleted FROM Lead", include_deleted=True)
    assert first["totalSize"] == big_org.org.count("Lead", include_deleted=True) == LEADS
    assert "/query/" in first["nextRecordsUrl"]  # queryAll locators still say /query/
    records = sf.query_all("SELECT Id, IsDeleted FROM Lead", include_deleted=True)["records"]
    deleted = [r["Id"] for r in records if r["IsDeleted"]]
    assert len(records) == LEADS
    assert len(deleted) == LEADS - big_org.org.count("Lead") > 0


def test_ordered_paging_follows_the_order_by_across_pages(sf: Salesforce) -> None:
    stamps = [r["LastModifiedDate"] for r in sf.query_all_iter("SELECT Id, LastModifiedDate FROM Lead "
                                                               "ORDER BY LastModifiedDate DESC")]
    assert len(stamps) > 10_000
    assert stamps == sorted(stamps, reverse=True)


def test_batch_size_header_sets_the_page_size_within_salesforces_bounds(sf: Salesforce) -> None:
    def page_size(batch_size: int) -> tuple[int, str]:
        page = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": f"batchSize={batch_size}"})
        return len(page["records"]), page["nextRecordsUrl"].rsplit("-", 1)[1]

    assert page_size(500) == (500, "500")
    assert page_size(50) == (200, "200")  # 200 is the smallest batch
    assert page_size(5000) == (2000, "2000")

    page = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=500"})
    more = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True,
                         headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(more["records"]) == 500
    assert more["nextRecordsUrl"].endswith("-1000")
    assert not {r["Id"] for r in page["records"]} & {r["Id"] for r in more["records"]}


def test_rest_pages_hold_exactly_what_the_reference_renderer_makes(sf: Salesforce, big_org: EmulatedOrg) -> None:
    """Pages are written as JSON text column by column; they must equal RestRenderer.records, unicode included."""
    soql = ("SELECT Id, Name, Street, Address, AnnualRevenue, NumberOfEmployees, HasOptedOutOfEmail, Interests__c, "
            "Newsletter_Signup__c, LastModifiedDate, Owner.Email, Owner.Name, ConvertedContact.Email FROM Lead "
            "ORDER BY Id LIMIT 400")
    raw = big_org.session().get(f"{big_org.base_url}/services/data/v59.0/query", params={"q": soql},
                                headers=sf.headers, timeout=30)
    served = json.loads(raw.content)["records"]

    org = big_org.org
    compiled = compile_query(soql, org.schema, include_deleted=False, now=org.now())
    with org.read() as conn:
        rowids = [row[0] for row in conn.execute(compiled.ids_sql, compiled.params)]
        rows = conn.execute(compiled.page_sql, (json.dumps(rowids),)).fetchall()
    assert served == RestRenderer(compiled, "59.0").records(rows)
    assert [list(r) for r in served[:1]] == [["attributes", "Id", "Name", "Street", "Address", "AnnualRevenue",
                                             "NumberOfEmployees", "HasOptedOutOfEmail", "Interests__c",
                                             "Newsletter_Signup__c", "LastModifiedDate", "Owner", "ConvertedContact"]]
    assert any(not r["Name"].isascii() for r in served) and any("\n" in (r["Street"] or "") for r in served)
    assert served[0]["Owner"]["attributes"]["type"] == "Name" and served[0]["ConvertedContact"] is None


# ---- Bulk 2.0 --------------------------------------------------------------------------------------------------

def test_bulk_query_gives_the_same_rows_as_rest_paging(sf: Salesforce) -> None:
    rest = rest_rows(sf.query_all(f"SELECT {FIELDS} FROM Lead")["records"])
    bulk, chunks = bulk_rows(sf.bulk2.Lead.query(f"SELECT {FIELDS} FROM Lead", max_records=4000, wait=0))
    assert chunks == 3
    assert bulk == rest
    assert len(bulk) > 10_000


def test_bulk_query_all_gives_the_same_rows_as_rest_query_all(sf: Salesforce) -> None:
    rest = rest_rows(sf.query_all(f"SELECT {FIELDS} FROM Lead", include_deleted=True)["records"])
    bulk, _ = bulk_rows(sf.bulk2.Lead.query_all(f"SELECT {FIELDS} FROM Lead", wait=0))
    assert bulk == rest
    assert len(bulk) == LEADS


def test_bulk_results_carry_record_counts_and_a_null_locator_at_the_end(big_org: EmulatedOrg) -> None:
    session, token = big_org.session(), big_org.access_token()
    headers = {"Authorization": f"Bearer {token}"}
    jobs = f"{big_org.base_url}/services/data/v62.0/jobs/query"
    job = session.post(jobs, json={"operation": "query", "query": "SELECT Id FROM Lead"}, headers=headers,
                       timeout=30).json()
    assert job["state"] == "UploadComplete" and job["apiVersion"] == 62.0
    status = session.get(f"{jobs}/{job['id']}", headers=headers, timeout=30).json()
    assert status["state"] == "JobComplete"
    counts, locator = [], None
    while locator != "null":
        params = {"maxRecords": 6000, **({"locator": locator} if locator else {})}
        page = session.get(f"{jobs}/{job['id']}/results", params=params, headers=headers, timeout=30)
        counts.append(int(page.headers["Sforce-NumberOfRecords"]))
        assert page.text.count("\n") == counts[-1] + 1
        locator = page.headers["Sforce-Locator"]
    assert counts == [6000, status["numberRecordsProcessed"] - 6000]
    assert session.delete(f"{jobs}/{job['id']}", headers=headers, timeout=30).status_code == 204
    assert session.get(f"{jobs}/{job['id']}", headers=headers, timeout=30).status_code == 404


def test_bulk_refuses_compound_fields_synchronously(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        next(sf.bulk2.Lead.query("SELECT Id, Address FROM Lead", wait=0))
    assert caught.value.content[0]["message"] == "Selecting compound data not supported in Bulk Query"


# ---- versions and paths ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["31.0", "45.0", "59.0", "61.0", "62.0"])
@pytest.mark.parametrize("slash", ["", "/"])
def test_every_version_from_31_to_62_with_or_without_trailing_slash(big_org: EmulatedOrg, sf: Salesforce,
                                                                    version: str, slash: str) -> None:
    response = big_org.session().get(f"{big_org.base_url}/services/data/v{version}/query{slash}",
                                     params={"q": "SELECT COUNT() FROM Lead"}, headers=sf.headers, timeout=30)
    assert response.status_code == 200
    assert response.json()["totalSize"] == big_org.org.count("Lead")


def test_version_30_and_63_are_not_found(big_org: EmulatedOrg, sf: Salesforce) -> None:
    for version in ("30.0", "63.0"):
        old = Salesforce(instance_url=big_org.base_url, session_id=sf.session_id, session=big_org.session(),
                         version=version)
        with pytest.raises(SalesforceResourceNotFound) as caught:
            old.query("SELECT Id FROM Lead LIMIT 1")
        assert caught.value.content[0]["errorCode"] == "NOT_FOUND"


def test_versions_list_needs_no_session_and_names_releases_right(big_org: EmulatedOrg) -> None:
    listed = big_org.session().get(f"{big_org.base_url}/services/data/", timeout=30).json()
    assert [v["version"] for v in listed] == [f"{n}.0" for n in range(31, 63)]
    labels = {v["version"]: v["label"] for v in listed}
    assert (labels["31.0"], labels["32.0"], labels["59.0"], labels["60.0"], labels["62.0"]) == (
        "Summer '14", "Winter '15", "Winter '24", "Spring '24", "Winter '25")
    assert listed[28]["url"] == "/services/data/v59.0"


# ---- describe, limits, API usage -------------------------------------------------------------------------------

def test_describe_global_lists_only_objects_that_describe(sf: Salesforce) -> None:
    names = [o["name"] for o in sf.describe()["sobjects"]]
    assert {"Lead", "Contact", "CampaignMember"} <= set(names)
    for name in names:
        described = getattr(sf, name).describe()
        assert described["name"] == name
        assert all(len(f) == 57 for f in described["fields"])


def test_lead_describe_has_the_fields_a_sync_reads(sf: Salesforce) -> None:
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert fields["Id"]["type"] == "id"
    assert (fields["Email"]["type"], fields["Email"]["length"], fields["Email"]["byteLength"]) == ("email", 80, 240)
    assert fields["LastModifiedDate"]["type"] == "datetime"
    assert fields["External_Key__c"]["externalId"] and fields["External_Key__c"]["custom"]
    assert fields["OwnerId"]["referenceTo"] == ["Group", "User"]
    assert not fields["Description"]["filterable"]


def test_daily_api_requests_count_exactly_the_calls_made(big_org: EmulatedOrg, sf: Salesforce) -> None:
    big_org.control.reset_api_calls()
    sf.query("SELECT Id FROM Lead LIMIT 1")
    sf.Lead.describe()
    page = sf.query("SELECT Id FROM Lead")
    sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    limits = sf.limits()  # the fifth call; usage includes the call being answered
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 5}
    assert limits["DailyBulkApiBatches"]["Max"] == 15000
    raw = big_org.session().get(f"{big_org.base_url}/services/data/v59.0/limits/", headers=sf.headers, timeout=30)
    assert raw.headers["Sforce-Limit-Info"] == "api-usage=6/15000"
    assert sf.api_usage["api-usage"].used == 5
    calls = big_org.control.api_calls()
    assert calls["used"] == 6
    assert calls["by_endpoint"] == {"query": 2, "sobjects.describe": 1, "queryMore": 1, "limits": 2}
