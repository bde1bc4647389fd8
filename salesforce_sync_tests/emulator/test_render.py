"""REST JSON and Bulk CSV rendering of compiled-query rows from a real SQLite org."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time

import pytest

from salesforce_sync.emulator.render import CsvRenderer, RestRenderer, aggregate_records
from salesforce_sync.emulator.schema import OrgSchema
from salesforce_sync.emulator.soql import compile_query
from salesforce_sync_tests.emulator.soql_org import (
    ADA, ALAN, BOB, GRACE, NOW, QUEUE, USER_1, create_tables, insert, make_org, ms, records, run,
)


@pytest.fixture(scope="module")
def org() -> tuple[sqlite3.Connection, OrgSchema]:
    conn, schema = make_org()
    yield conn, schema
    conn.close()


def compiled(org, soql: str, *, include_deleted: bool = False):
    return compile_query(soql, org[1], include_deleted=include_deleted, now=NOW)


def test_rest_record_shape_and_value_formats(org):
    conn, schema = org
    (record,) = records(conn, schema, "SELECT id, email, HasOptedOutOfEmail, NumberOfEmployees, Lead_Score__c, "
                                      "AnnualRevenue, CreatedDate, Newsletter_Signup__c, Interests__c, Address, "
                                      f"Owner.Email, Title FROM Lead WHERE Id = '{ADA}'", version="62.0")
    assert record == {
        "attributes": {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/{ADA}"},
        "Id": ADA, "Email": "ada@example.com", "HasOptedOutOfEmail": False, "NumberOfEmployees": 10,
        "Lead_Score__c": 90.0, "AnnualRevenue": 950000.0, "CreatedDate": "2024-05-15T12:30:00.000+0000",
        "Newsletter_Signup__c": "2024-05-14", "Interests__c": "Analytics;CRM",
        "Address": {"city": "London", "country": "UK", "geocodeAccuracy": None, "latitude": None,
                    "longitude": None, "postalCode": None, "state": None, "street": None},
        "Owner": {"attributes": {"type": "Name", "url": f"/services/data/v62.0/sobjects/User/{USER_1}"},
                  "Email": "owner.one@example.com"},
        "Title": None,
    }
    assert list(record) == ["attributes", "Id", "Email", "HasOptedOutOfEmail", "NumberOfEmployees", "Lead_Score__c",
                            "AnnualRevenue", "CreatedDate", "Newsletter_Signup__c", "Interests__c", "Address",
                            "Owner", "Title"]
    assert type(record["NumberOfEmployees"]) is int and type(record["Lead_Score__c"]) is float
    assert json.loads(json.dumps(record)) == record


def test_rest_empty_address_and_millisecond_datetimes(org):
    conn, schema = org
    (record,) = records(conn, schema, f"SELECT Address, CreatedDate, Owner.Email FROM Lead WHERE Id = '{BOB}'")
    assert record["Address"] is None
    assert record["CreatedDate"] == "2023-12-31T23:59:59.999+0000"


def test_rest_single_target_lookup_uses_the_object_type_and_empty_lookup_is_null(org):
    conn, schema = org
    rows = records(conn, schema, "SELECT LastName, Account.Name, Account.Owner.Email FROM Contact ORDER BY LastName")
    assert rows[0]["Account"] == {
        "attributes": {"type": "Account", "url": rows[0]["Account"]["attributes"]["url"]},
        "Name": "Acme",
        "Owner": {"attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{USER_1}"},
                  "Email": "owner.one@example.com"},
    }
    assert rows[1]["Account"]["Owner"]["Email"] == "Owner.Two@Example.com"
    assert rows[2]["LastName"] == "Evans" and rows[2]["Account"] is None


def test_rest_lookup_to_an_unemulated_object_keeps_its_real_type_in_the_url(org):
    conn, schema = org
    (record,) = records(conn, schema, f"SELECT OwnerId, Owner.Email FROM Lead WHERE Id = '{ALAN}'")
    assert record == {
        "attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/{ALAN}"},
        "OwnerId": QUEUE,
        "Owner": {"attributes": {"type": "Name", "url": f"/services/data/v59.0/sobjects/Group/{QUEUE}"},
                  "Email": None},
    }


def test_rest_no_rows_and_aggregate_records(org):
    conn, schema = org
    query = compiled(org, "SELECT Id FROM Lead WHERE Email = 'nobody@example.com'")
    assert RestRenderer(query, "59.0").records(run(conn, query)) == []
    counts = compiled(org, "SELECT COUNT(Email) FROM Lead WHERE Company != 'Filler'")
    rows = conn.execute(counts.aggregate_sql, counts.aggregate_params).fetchall()
    assert aggregate_records(counts, rows) == [{"attributes": {"type": "AggregateResult"}, "expr0": 4}]
    grouped = compiled(org, "SELECT HasOptedOutOfEmail, MAX(CreatedDate) latest, MIN(Newsletter_Signup__c) "
                            "FROM Lead WHERE Company != 'Filler' GROUP BY HasOptedOutOfEmail")
    rows = conn.execute(grouped.aggregate_sql, grouped.aggregate_params).fetchall()
    assert aggregate_records(grouped, rows) == [
        {"attributes": {"type": "AggregateResult"}, "HasOptedOutOfEmail": False,
         "latest": "2024-05-15T12:30:00.000+0000", "expr0": "2024-05-14"},
        {"attributes": {"type": "AggregateResult"}, "HasOptedOutOfEmail": True,
         "latest": "2024-05-14T10:00:00.000+0000", "expr0": None},
    ]


def _parse(data: bytes, delimiter: str = ",", line_ending: str = "\n") -> list[list[str]]:
    text = data.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, lineterminator=line_ending))


def test_csv_values_round_trip_through_the_csv_module(org):
    conn, schema = org
    query = compiled(org, "SELECT Id, Email, HasOptedOutOfEmail, CreatedDate, Lead_Score__c, NumberOfEmployees, "
                          "Newsletter_Signup__c, Owner.Email, Description, Company FROM Lead "
                          "WHERE Company != 'Filler' ORDER BY LastName")
    data = CsvRenderer(query).chunk(run(conn, query))
    header, *rows = _parse(data)
    assert header == ["Id", "Email", "HasOptedOutOfEmail", "CreatedDate", "Lead_Score__c", "NumberOfEmployees",
                      "Newsletter_Signup__c", "Owner.Email", "Description", "Company"]
    by_id = {row[0]: row for row in rows}
    assert by_id[BOB][1:6] == ["bob@example.com", "false", "2023-12-31T23:59:59.999Z", "10.0", ""]
    assert by_id[GRACE][2] == "true" and by_id[GRACE][5] == "500" and by_id[GRACE][7] == "Owner.Two@Example.com"
    assert by_id[ADA][6] == "2024-05-14"
    assert by_id[ALAN][1] == "" and by_id[ALAN][7] == "" and by_id[ALAN][8] == 'line one\nline "two"'
    assert [r[9] for r in rows] == ["Zeta", "Navy", "Analytical", "O'Reilly", "Bletchley"]


def test_csv_quotes_every_value_and_writes_nulls_as_empty_quotes(org):
    conn, schema = org
    query = compiled(org, f"SELECT Id, Email, Description FROM Lead WHERE Id = '{ALAN}'")
    data = CsvRenderer(query).chunk(run(conn, query))
    assert data == f'"Id","Email","Description"\n"{ALAN}","","line one\nline ""two"""\n'.encode()


@pytest.mark.parametrize(("name", "delimiter"), [
    ("COMMA", ","), ("TAB", "\t"), ("PIPE", "|"), ("SEMICOLON", ";"), ("CARET", "^"), ("BACKQUOTE", "`"),
])
@pytest.mark.parametrize(("ending_name", "ending"), [("LF", "\n"), ("CRLF", "\r\n")])
def test_csv_delimiters_and_line_endings(org, name, delimiter, ending_name, ending):
    conn, schema = org
    query = compiled(org, "SELECT Id, Company, Description FROM Lead WHERE Company != 'Filler' ORDER BY LastName")
    data = CsvRenderer(query, name, ending_name).chunk(run(conn, query))
    text = data.decode()
    assert text.startswith(f'"Id"{delimiter}"Company"{delimiter}"Description"{ending}')
    rows_ended = text.count(ending) - (1 if ending == "\n" else 0)  # Alan's description holds one LF
    assert text.endswith(ending) and rows_ended == 6  # header + 5 rows
    rows = _parse(data, delimiter, ending)
    assert len(rows) == 6 and rows[4][2] == "" and "line one\nline" in rows[5][2]


def test_csv_empty_chunk_has_only_the_header(org):
    query = compiled(org, "SELECT Id, Owner.Email FROM Lead WHERE Email = 'nobody@example.com'")
    assert CsvRenderer(query).chunk([]) == b'"Id","Owner.Email"\n'


def test_csv_rejects_compound_fields_and_unknown_settings(org):
    with pytest.raises(ValueError, match="compound field 'Address' of Lead"):
        CsvRenderer(compiled(org, "SELECT Id, Address FROM Lead"))
    query = compiled(org, "SELECT Id FROM Lead")
    with pytest.raises(ValueError, match="columnDelimiter 'COLON'"):
        CsvRenderer(query, "COLON")
    with pytest.raises(ValueError, match="lineEnding 'CR'"):
        CsvRenderer(query, "COMMA", "CR")


def test_rendering_throughput_for_100000_leads():
    """Prints records/s of page_sql and of each renderer; asserts correctness, not speed."""
    conn = sqlite3.connect(":memory:")
    schema = OrgSchema()
    create_tables(conn, schema)
    base = ms("2024-01-01T00:00:00+00:00")
    insert(conn, "User", [{"Id": USER_1, "Email": "owner@example.com", "LastName": "Owner", "Username": "o@org",
                           "Alias": "o", "IsActive": 1, "TimeZoneSidKey": "Europe/London"}])
    conn.execute(  # generated inside SQLite so the setup stays cheap; ids are valid 18-char Lead ids
        'INSERT INTO "Lead" (Id, LastName, FirstName, Company, Email, Status, HasOptedOutOfEmail, OwnerId, '
        "CreatedDate, LastModifiedDate, SystemModstamp, Lead_Score__c, NumberOfEmployees, IsDeleted) "
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99999) "
        "SELECT printf('00Q5g0%09dEAA', i), 'Last' || i, 'First', 'Company', 'p' || i || '@example.com', "
        "'Open - Not Contacted', i % 2, ?, ? + i, ? + 7 * i, ? + 7 * i, i * 0.5, i % 1000, 0 FROM n",
        (USER_1, base, base, base))
    query = compile_query("SELECT Id, FirstName, LastName, Company, Email, Status, HasOptedOutOfEmail, CreatedDate, "
                          "LastModifiedDate, SystemModstamp, Lead_Score__c, NumberOfEmployees, Owner.Email FROM Lead "
                          "WHERE SystemModstamp >= 2024-01-01T00:00:00Z ORDER BY SystemModstamp",
                          schema, include_deleted=False, now=NOW)
    rowids = [r[0] for r in conn.execute(query.ids_sql, query.params)]
    assert len(rowids) == 100_000

    started = time.perf_counter()
    pages = [conn.execute(query.page_sql, (json.dumps(rowids[i:i + 2_000]),)).fetchall()
             for i in range(0, len(rowids), 2_000)]
    fetched = time.perf_counter()
    rest = RestRenderer(query, "59.0")
    for rows in pages:
        json.dumps({"records": rest.records(rows)}).encode()
    rendered = time.perf_counter()
    bulk = CsvRenderer(query)
    every_row = [row for rows in pages for row in rows]
    for i in range(0, len(every_row), 50_000):
        bulk.chunk(every_row[i:i + 50_000])
    written = time.perf_counter()
    count = len(rowids)
    print(f"\npage_sql, 2,000-row pages: {count / (fetched - started):,.0f} records/s"
          f"\nREST records + json.dumps: {count / (rendered - fetched):,.0f} records/s"
          f"\nBulk CSV, 50,000-row chunks: {count / (written - rendered):,.0f} records/s")
    last = rest.records(conn.execute(query.page_sql, (json.dumps(rowids[-1:]),)).fetchall())[0]
    assert last["Id"] == "00Q5g0000099999EAA" and last["HasOptedOutOfEmail"] is True
    assert last["Owner"]["Email"] == "owner@example.com"
    assert last["SystemModstamp"] == "2024-01-01T00:11:39.993+0000"
    conn.close()
