"""A small emulated org in SQLite for the SOQL and render tests, built per the org storage contract."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from typing import Any

from salesforce_sync.emulator.ids import make_id
from salesforce_sync.emulator.render import RestRenderer
from salesforce_sync.emulator.schema import OrgSchema
from salesforce_sync.emulator.soql import CompiledQuery, compile_query, register_functions
from salesforce_sync.emulator.soql.literals import epoch_ms

NOW = datetime(2024, 5, 15, 13, 30, tzinfo=timezone.utc)  # a Wednesday
SQLITE_TYPES = {"text": "TEXT", "int": "INTEGER", "real": "REAL", "bool": "INTEGER", "datetime": "INTEGER",
                "date": "TEXT"}

USER_1, USER_2 = make_id("005", 1), make_id("005", 2)
QUEUE = make_id("00G", 1)
ACME, GLOBEX = make_id("001", 1), make_id("001", 2)
COLE, DIAZ, EVANS = make_id("003", 1), make_id("003", 2), make_id("003", 3)
SPRING, AUTUMN = make_id("701", 1), make_id("701", 2)
ADA, GRACE, ALAN, PERCY, GONE, BOB = (make_id("00Q", n) for n in range(1, 7))
FILLERS = [make_id("00Q", 100 + n) for n in range(20)]


def ms(text: str) -> int:
    return epoch_ms(datetime.fromisoformat(text))


def create_tables(conn: sqlite3.Connection, schema: OrgSchema) -> None:
    """One table per object, one column per stored field, indexes as the org store keeps them."""
    for obj in schema.objects.values():
        columns = ", ".join(f'"{f.name}" {SQLITE_TYPES[f.storage]}' for f in obj.stored_fields)
        conn.execute(f'CREATE TABLE "{obj.name}" ({columns})')
        conn.execute(f'CREATE UNIQUE INDEX "{obj.name}_Id" ON "{obj.name}" ("Id" COLLATE NOCASE)')
        conn.execute(f'CREATE INDEX "{obj.name}_LastModifiedDate" ON "{obj.name}" ("LastModifiedDate")')
        conn.execute(f'CREATE INDEX "{obj.name}_SystemModstamp" ON "{obj.name}" ("SystemModstamp")')
    for reference in ("LeadId", "ContactId"):
        conn.execute(f'CREATE INDEX "CampaignMember_{reference}" ON "CampaignMember" ("{reference}")')


def insert(conn: sqlite3.Connection, table: str, records: list[dict[str, Any]]) -> None:
    for record in records:
        names = ", ".join(f'"{k}"' for k in record)
        conn.execute(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" * len(record))})',
                     list(record.values()))


def _audit(created: str, deleted: bool | None = False) -> dict[str, Any]:
    stamp = ms(created)
    out = {"CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
           "CreatedById": USER_1, "LastModifiedById": USER_1}
    if deleted is not None:
        out["IsDeleted"] = int(deleted)
    return out


def _lead(lead_id: str, last: str, created: str, **fields: Any) -> dict[str, Any]:
    record = {"Id": lead_id, "LastName": last, "Company": "Filler", "Status": "Open - Not Contacted",
              "OwnerId": USER_1, "HasOptedOutOfEmail": 0, "DoNotCall": 0, "HasOptedOutOfFax": 0,
              "IsConverted": 0, "IsUnreadByOwner": 0, **_audit(created, fields.pop("deleted", False))}
    record.update(fields)
    record["Name"] = " ".join(p for p in (record.get("FirstName"), last) if p)
    return record


def seed(conn: sqlite3.Connection) -> None:
    """Users, accounts, contacts, a campaign with members, tasks and leads covering every field kind."""
    insert(conn, "User", [
        {"Id": USER_1, "Username": "one@org", "LastName": "One", "Name": "Owner One",
         "Email": "owner.one@example.com", "Alias": "one", "IsActive": 1, "TimeZoneSidKey": "Europe/London",
         **_audit("2020-01-01T00:00:00+00:00", None)},
        {"Id": USER_2, "Username": "two@org", "LastName": "Two", "Name": "Owner Two",
         "Email": "Owner.Two@Example.com", "Alias": "two", "IsActive": 1, "TimeZoneSidKey": "Europe/London",
         **_audit("2020-01-01T00:00:00+00:00", None)},
    ])
    insert(conn, "Account", [
        {"Id": ACME, "Name": "Acme", "OwnerId": USER_1, "BillingCity": "Springfield",
         **_audit("2021-01-01T00:00:00+00:00")},
        {"Id": GLOBEX, "Name": "Globex", "OwnerId": USER_2, **_audit("2021-01-01T00:00:00+00:00")},
    ])
    insert(conn, "Contact", [
        {"Id": COLE, "AccountId": ACME, "LastName": "Cole", "Name": "Cole", "Email": "cole@acme.com",
         "OwnerId": USER_1, "HasOptedOutOfEmail": 0, "DoNotCall": 0, "HasOptedOutOfFax": 0, "IsEmailBounced": 0,
         **_audit("2022-01-01T00:00:00+00:00")},
        {"Id": DIAZ, "AccountId": GLOBEX, "LastName": "Diaz", "Name": "Diaz", "OwnerId": USER_2,
         "HasOptedOutOfEmail": 0, "DoNotCall": 0, "HasOptedOutOfFax": 0, "IsEmailBounced": 0,
         **_audit("2022-01-01T00:00:00+00:00")},
        {"Id": EVANS, "LastName": "Evans", "Name": "Evans", "OwnerId": USER_2, "HasOptedOutOfEmail": 0,
         "DoNotCall": 0, "HasOptedOutOfFax": 0, "IsEmailBounced": 0, **_audit("2022-01-01T00:00:00+00:00")},
    ])
    insert(conn, "Campaign", [
        {"Id": SPRING, "Name": "Spring", "OwnerId": USER_1, "IsActive": 1, **_audit("2024-03-01T00:00:00+00:00")},
        {"Id": AUTUMN, "Name": "Autumn", "OwnerId": USER_1, "IsActive": 0, **_audit("2023-09-01T00:00:00+00:00")},
    ])
    spring = {"CampaignId": SPRING, "Status": "Sent", "HasResponded": 0, "HasOptedOutOfEmail": 0, "DoNotCall": 0,
              **_audit("2024-03-02T00:00:00+00:00")}
    insert(conn, "CampaignMember", [
        {**spring, "Id": make_id("00v", 1), "LeadId": ADA},
        {**spring, "Id": make_id("00v", 2), "LeadId": GRACE},
        {**spring, "Id": make_id("00v", 3), "ContactId": COLE},
        {**spring, "Id": make_id("00v", 4), "LeadId": ALAN, "IsDeleted": 1},
        {**spring, "Id": make_id("00v", 5), "LeadId": BOB, "CampaignId": AUTUMN},
    ])
    task = {"Status": "Completed", "Priority": "Normal", "OwnerId": USER_1, "IsClosed": 1,
            **_audit("2024-05-01T00:00:00+00:00")}
    insert(conn, "Task", [
        {**task, "Id": make_id("00T", 1), "Subject": "Call", "WhoId": ADA, "WhatId": ACME},
        {**task, "Id": make_id("00T", 2), "Subject": "Email", "WhoId": COLE},
        {**task, "Id": make_id("00T", 3), "Subject": "Other"},
    ])
    insert(conn, "Lead", [
        _lead(ADA, "Lovelace", "2024-05-15T12:30:00+00:00", FirstName="Ada", Company="Analytical",
              Email="ada@example.com", Interests__c="Analytics;CRM", Lead_Score__c=90.0, NumberOfEmployees=10,
              City="London", Country="UK", Newsletter_Signup__c="2024-05-14", AnnualRevenue=950000.0),
        _lead(GRACE, "Hopper", "2024-05-14T10:00:00+00:00", FirstName="Grace", Company="Navy",
              Email="GRACE@EXAMPLE.COM", Interests__c="Automation", Lead_Score__c=75.5, NumberOfEmployees=500,
              HasOptedOutOfEmail=1, OwnerId=USER_2),
        _lead(ALAN, "Turing", "2024-05-01T09:00:00+00:00", FirstName="Alan", Company="Bletchley",
              OwnerId=QUEUE, Description='line one\nline "two"'),
        _lead(PERCY, "Percent_Under", "2024-04-10T09:00:00+00:00", Company="O'Reilly", Email="50%off@deals.com",
              Interests__c="CRM;Email;Events", Lead_Score__c=75.0),
        _lead(GONE, "Gone", "2024-05-15T08:00:00+00:00", Email="gone@example.com", deleted=True),
        _lead(BOB, "bob", "2023-12-31T23:59:59.999+00:00", Company="Zeta", Email="bob@example.com",
              Lead_Score__c=10.0, Status="Closed - Converted"),
        *[_lead(lead_id, f"Filler {n:02d}", f"2022-03-{n + 1:02d}T00:00:00+00:00", Email=f"filler{n:02d}@example.com")
          for n, lead_id in enumerate(FILLERS)],
    ])


def make_org() -> tuple[sqlite3.Connection, OrgSchema]:
    conn = sqlite3.connect(":memory:")
    register_functions(conn)
    schema = OrgSchema()
    create_tables(conn, schema)
    seed(conn)
    return conn, schema


def run(conn: sqlite3.Connection, query: CompiledQuery) -> list[tuple]:
    """The page_sql rows of every matching record, in result order."""

    rowids = [r[0] for r in conn.execute(query.ids_sql, query.params)]
    return conn.execute(query.page_sql, (json.dumps(rowids),)).fetchall()


def records(conn: sqlite3.Connection, schema: OrgSchema, soql: str, *, include_deleted: bool = False,
            version: str = "59.0") -> list[dict[str, Any]]:
    query = compile_query(soql, schema, include_deleted=include_deleted, now=NOW)
    return RestRenderer(query, version).records(run(conn, query))
