"""The emulator's data generator: deterministic, referentially sound, realistic, in storage form."""

from __future__ import annotations

import collections
import datetime as dt
import re
import sqlite3
import time
from typing import Any

import numpy as np
import pytest

from salesforce_sync.emulator.generate import (
    BATCH_SIZE, GENERATED_OBJECTS, INTEGRATION_USER_ID, INTEGRATION_USERNAME, default_counts, generate_org,
    integration_user_id,
)
from salesforce_sync.emulator.generate.draws import record_ids
from salesforce_sync.emulator.ids import KEY_PREFIXES, is_valid_id, make_id
from salesforce_sync.emulator.schema import OrgSchema

NOW_MS = 1_767_225_600_000 + 123  # 2026-01-01T00:00:00.123Z
COUNTS = {"Lead": 12_000, "Contact": 3_000, "CampaignMember": 8_000}
SCHEMA = OrgSchema()
DAY_MS = 86_400_000
Rows = dict[str, list[dict[str, Any]]]


def _collect(seed: int, counts: dict[str, int], now_ms: int = NOW_MS) -> tuple[Rows, list[tuple[str, int]]]:
    rows: Rows = collections.defaultdict(list)
    batches = []
    for name, batch in generate_org(seed, counts, now_ms):
        rows[name].extend(batch)
        batches.append((name, len(batch)))
    return rows, batches


@pytest.fixture(scope="module")
def generated() -> tuple[Rows, list[tuple[str, int]]]:
    return _collect(7, COUNTS)


@pytest.fixture(scope="module")
def org(generated: tuple[Rows, list[tuple[str, int]]]) -> Rows:
    return generated[0]


@pytest.fixture(scope="module")
def by_id(org: Rows) -> dict[str, dict[str, Any]]:
    return {row["Id"]: row for rows in org.values() for row in rows}


def _persons(org: Rows) -> list[dict[str, Any]]:
    return org["Lead"] + org["Contact"]


# ---- determinism, order, shape -----------------------------------------------------------------

def test_same_seed_counts_and_now_give_identical_rows() -> None:
    counts = {"Lead": 600, "Contact": 300, "CampaignMember": 500}
    first, _ = _collect(11, counts)
    second, _ = _collect(11, counts)
    assert repr(first) == repr(second)
    other_seed, _ = _collect(12, counts)
    assert [r["Email"] for r in other_seed["Lead"]] != [r["Email"] for r in first["Lead"]]
    later, _ = _collect(11, counts, NOW_MS + DAY_MS)
    assert [r["LastModifiedDate"] for r in later["Lead"]] != [r["LastModifiedDate"] for r in first["Lead"]]


def test_batches_come_in_dependency_order_and_hold_at_most_a_batch(generated: tuple[Rows, list]) -> None:
    org, batches = generated
    order = [name for name, _ in batches]
    assert [name for name in GENERATED_OBJECTS if name in order] == list(dict.fromkeys(order))
    assert all(0 < size <= BATCH_SIZE for _, size in batches)
    assert order.count("Lead") == 2
    expected = default_counts(COUNTS)
    for name, count in expected.items():
        assert len(org[name]) == count, name
    assert expected["Account"] == 600 and expected["Campaign"] == 10 and expected["Opportunity"] == 300


def test_every_row_has_every_stored_field_in_storage_form(org: Rows) -> None:
    date = re.compile(r"^\d{4}-\d{2}-\d{2}$")
    for name, rows in org.items():
        obj = SCHEMA.object(name)
        names = [f.name for f in obj.stored_fields]
        for row in rows:
            assert list(row) == names, name
        for f in obj.stored_fields:
            values = [row[f.name] for row in rows]
            present = [v for v in values if v is not None]
            if not f.nillable:
                assert len(present) == len(values), f"{name}.{f.name} has nulls"
            kinds = {
                "text": lambda v: type(v) is str and v != "" and (not f.length or len(v) <= f.length),
                "datetime": lambda v: type(v) is int and v % 1000 == 0 and v > 0,
                "date": lambda v: type(v) is str and date.match(v) and dt.date.fromisoformat(v),
                "bool": lambda v: type(v) is int and v in (0, 1),
                "int": lambda v: type(v) is int,
                "real": lambda v: type(v) is float,
            }
            bad = [v for v in present if not kinds[f.storage](v)]
            assert not bad, f"{name}.{f.name} ({f.storage}): {bad[:3]!r}"
            if f.type == "picklist":
                assert set(present) <= set(f.picklist), f"{name}.{f.name}: {set(present) - set(f.picklist)}"
            if f.type == "multipicklist":
                assert {part for v in present for part in v.split(";")} <= set(f.picklist)


def test_ids_are_the_deterministic_checksummed_ids_of_record_numbers(org: Rows) -> None:
    for name, rows in org.items():
        ids = [row["Id"] for row in rows]
        assert ids == [make_id(KEY_PREFIXES[name], n) for n in range(1, len(rows) + 1)]
        assert all(is_valid_id(i) for i in ids)


def test_vectorised_ids_match_make_id_across_the_record_number_range() -> None:
    numbers = [1, 61, 62, 62**5 - 1, 62**5, 916_132_831, 62**9 - 1]
    assert record_ids("Lead", np.array(numbers) - 1).tolist() == [make_id("00Q", n) for n in numbers]
    with pytest.raises(ValueError, match="does not fit"):
        record_ids("Lead", np.array([62**9 - 1]))


def test_default_counts_follow_the_main_counts() -> None:
    assert default_counts({"Lead": 1000, "Contact": 500, "CampaignMember": 2000}) == {
        "Account": 100, "Contact": 500, "Lead": 1000, "Campaign": 10, "CampaignMember": 2000,
        "Opportunity": 50, "Task": 75, "Event": 37}
    assert default_counts({"Lead": 10, "CampaignMember": 400})["Campaign"] == 80
    assert default_counts({"Opportunity": 3})["Account"] == 1


def test_generated_rows_insert_into_per_object_tables_as_the_org_stores_them(org: Rows) -> None:
    sql_types = {"text": "TEXT", "int": "INTEGER", "real": "REAL", "bool": "INTEGER", "datetime": "INTEGER",
                 "date": "TEXT"}
    conn = sqlite3.connect(":memory:")
    for name, rows in org.items():
        fields = SCHEMA.object(name).stored_fields
        conn.execute(f'CREATE TABLE "{name}" ({", ".join(f"{chr(34)}{f.name}{chr(34)} {sql_types[f.storage]}" for f in fields)})')
        keys = list(rows[0])
        conn.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(keys))})',
                         [tuple(row[k] for k in keys) for row in rows])
        assert conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] == len(rows)
    stored = conn.execute('SELECT "Description" FROM "Lead" WHERE "Description" LIKE ?', ('%"Dreamforce"%',)).fetchone()
    assert stored == ('Met at the "Dreamforce" booth; asked for a demo.',)


# ---- users and references ----------------------------------------------------------------------

def test_integration_user_is_generated_with_a_stable_id(org: Rows) -> None:
    users = {row["Username"]: row for row in org["User"]}
    assert len(users) == len(org["User"]) >= 5
    integration = users[INTEGRATION_USERNAME]
    assert integration["Id"] == INTEGRATION_USER_ID == integration_user_id() == make_id("005", 1)
    assert integration["IsActive"] == 1 and INTEGRATION_USERNAME == "integration@emulated.example.com"
    assert any(row["IsActive"] == 0 for row in org["User"])


def test_every_reference_points_at_a_live_generated_record_of_its_target_type(org: Rows, by_id: dict) -> None:
    unused = []
    for name, rows in org.items():
        for f in SCHEMA.object(name).stored_fields:
            if f.type != "reference":
                continue
            targets = [row[f.name] for row in rows if row[f.name] is not None]
            if not targets:
                unused.append(f"{name}.{f.name}")
            for target_id in targets:
                target = by_id.get(target_id)
                assert target is not None, f"{name}.{f.name} -> missing {target_id}"
                assert any(target_id.startswith(KEY_PREFIXES[t]) for t in f.reference_to), f"{name}.{f.name}"
                assert not target.get("IsDeleted"), f"{name}.{f.name} -> deleted {target_id}"
    assert not unused
    owners = {row["OwnerId"] for row in org["Lead"]} | {row["CreatedById"] for row in org["Lead"]}
    assert INTEGRATION_USER_ID in owners and len(owners) >= 4


def test_hierarchies_have_no_cycles(org: Rows) -> None:
    for name, parent_field in (("Account", "ParentId"), ("Contact", "ReportsToId"), ("Campaign", "ParentId")):
        parents = {row["Id"]: row[parent_field] for row in org[name]}
        assert any(parents.values()), name
        for start in parents:
            seen, node = set(), start
            while node is not None:
                assert node not in seen, f"{name}.{parent_field} cycle through {node}"
                seen.add(node)
                node = parents[node]


def test_tasks_with_a_lead_have_no_what(org: Rows) -> None:
    tasks = org["Task"]
    assert any(t["WhoId"] and t["WhoId"].startswith("00Q") for t in tasks)
    assert {t["WhatId"][:3] for t in tasks if t["WhatId"]} == {"001", "006", "701"}
    assert all(t["WhatId"] is None for t in tasks if t["WhoId"] and t["WhoId"].startswith("00Q"))
    for t in tasks:
        assert (t["Status"] == "Completed") == (t["IsClosed"] == 1) == (t["CompletedDateTime"] is not None)


# ---- people realism ----------------------------------------------------------------------------

@pytest.mark.parametrize("script,pattern", [
    ("accented Latin", r"[éñøßüöåçł]"), ("Chinese", r"[\u4e00-\u9fff]"), ("Japanese kana", r"[\u3040-\u30ff]"),
    ("Cyrillic", r"[\u0400-\u04ff]"), ("Arabic", r"[\u0600-\u06ff]"), ("Greek", r"[\u0370-\u03ff]"),
    ("apostrophe", r"'"), ("hyphen", r"\w-\w"),
])
def test_names_include_many_scripts_and_punctuation(org: Rows, script: str, pattern: str) -> None:
    names = [p["Name"] for p in _persons(org)]
    assert sum(bool(re.search(pattern, n)) for n in names) >= 20, script


def test_name_is_first_name_then_last_name_and_first_name_may_be_missing(org: Rows) -> None:
    for person in _persons(org) + org["CampaignMember"] + org["User"]:
        first, last = person["FirstName"], person["LastName"]
        assert person["Name"] == (f"{first} {last}" if first else last)
    assert sum(p["FirstName"] is None for p in org["Lead"]) > 100


def test_emails_are_mostly_valid_with_missing_malformed_and_mixed_case_ones(org: Rows) -> None:
    emails = [p["Email"] for p in _persons(org)]
    valid = re.compile(r"^[A-Za-z0-9._'-]+@[A-Za-z0-9.-]+\.[A-Za-z]+$")
    present = [e for e in emails if e is not None]
    assert 0.02 < (len(emails) - len(present)) / len(emails) < 0.07
    assert sum(bool(valid.match(e)) for e in present) / len(present) > 0.95
    assert any(e.endswith("@") for e in present)
    assert any("@" not in e for e in present)
    assert any("@@" in e for e in present)
    assert any(e != e.lower() and valid.match(e) for e in present)
    assert all(len(e) <= 80 for e in present)


def test_some_people_are_both_a_lead_and_a_contact(org: Rows) -> None:
    contact_emails = {c["Email"] for c in org["Contact"] if c["Email"]}
    unconverted_twins = [lead for lead in org["Lead"] if not lead["IsConverted"] and lead["Email"] in contact_emails]
    assert len(unconverted_twins) > 100


def test_converted_leads_point_at_their_contact_and_its_account(org: Rows, by_id: dict) -> None:
    converted = [lead for lead in org["Lead"] if lead["IsConverted"]]
    assert 0.06 < len(converted) / len(org["Lead"]) < 0.10
    assert len({lead["ConvertedContactId"] for lead in converted}) == len(converted)
    with_opportunity = 0
    for lead in converted:
        contact = by_id[lead["ConvertedContactId"]]
        assert lead["Status"] == "Closed - Converted"
        assert lead["ConvertedAccountId"] == contact["AccountId"] is not None
        assert (lead["Name"], lead["Email"], lead["Phone"]) == (contact["Name"], contact["Email"], contact["Phone"])
        assert lead["Company"] == by_id[contact["AccountId"]]["Name"]
        assert lead["CreatedDate"] <= contact["CreatedDate"] == lead["LastModifiedDate"]
        assert lead["ConvertedDate"] == _day(contact["CreatedDate"])
        assert not lead["IsDeleted"]
        if lead["ConvertedOpportunityId"]:
            with_opportunity += 1
            assert by_id[lead["ConvertedOpportunityId"]]["AccountId"] == lead["ConvertedAccountId"]
    assert with_opportunity > 50
    for lead in org["Lead"]:
        if not lead["IsConverted"]:
            assert lead["Status"] != "Closed - Converted"
            assert lead["ConvertedDate"] is lead["ConvertedContactId"] is lead["ConvertedAccountId"] is None


def test_a_few_percent_opt_out_or_refuse_calls(org: Rows) -> None:
    persons = _persons(org)
    assert 0.02 < sum(p["HasOptedOutOfEmail"] for p in persons) / len(persons) < 0.07
    assert 0.03 < sum(p["DoNotCall"] for p in persons) / len(persons) < 0.10


# ---- campaign members --------------------------------------------------------------------------

def test_campaign_members_mirror_their_lead_or_contact(org: Rows, by_id: dict) -> None:
    members = org["CampaignMember"]
    pairs = {(m["CampaignId"], m["LeadOrContactId"]) for m in members}
    assert len(pairs) == len(members)
    types = collections.Counter(m["Type"] for m in members)
    assert types["Lead"] > 1000 and types["Contact"] > 500
    for m in members:
        assert (m["LeadId"] is None) != (m["ContactId"] is None)
        person = by_id[m["LeadId"] or m["ContactId"]]
        assert m["Type"] == ("Lead" if m["LeadId"] else "Contact")
        assert m["LeadOrContactId"] == person["Id"]
        for key in ("FirstName", "LastName", "Name", "Email", "Phone", "Title", "HasOptedOutOfEmail", "DoNotCall"):
            assert m[key] == person[key], key
        company = person["Company"] if m["LeadId"] else (by_id[person["AccountId"]]["Name"] if person["AccountId"] else None)
        assert m["CompanyOrAccount"] == company
        assert m["HasResponded"] == (m["Status"] == "Responded") == (m["FirstRespondedDate"] is not None)
        assert m["CreatedDate"] >= max(person["CreatedDate"], by_id[m["CampaignId"]]["CreatedDate"])


def test_campaign_roll_ups_count_their_members_and_opportunities(org: Rows, by_id: dict) -> None:
    counted = collections.Counter((m["CampaignId"], m["Type"]) for m in org["CampaignMember"])
    responses = collections.Counter(m["CampaignId"] for m in org["CampaignMember"] if m["HasResponded"])
    converted = collections.Counter(m["CampaignId"] for m in org["CampaignMember"]
                                    if m["LeadId"] and by_id[m["LeadId"]]["IsConverted"])
    deals = [o for o in org["Opportunity"] if o["CampaignId"] and not o["IsDeleted"]]
    won = [o for o in deals if o["IsWon"]]
    assert deals and won and sum(converted.values())
    for campaign in org["Campaign"]:
        assert campaign["NumberOfLeads"] == counted[(campaign["Id"], "Lead")]
        assert campaign["NumberOfContacts"] == counted[(campaign["Id"], "Contact")]
        assert campaign["NumberOfResponses"] == responses[campaign["Id"]]
        assert campaign["NumberOfConvertedLeads"] == converted[campaign["Id"]]
        assert campaign["NumberOfOpportunities"] == sum(o["CampaignId"] == campaign["Id"] for o in deals)
        assert campaign["NumberOfWonOpportunities"] == sum(o["CampaignId"] == campaign["Id"] for o in won)
        assert campaign["AmountWonOpportunities"] == pytest.approx(
            sum(o["Amount"] or 0 for o in won if o["CampaignId"] == campaign["Id"]))
        if campaign["EndDate"]:
            assert campaign["StartDate"] <= campaign["EndDate"]


def test_every_campaign_has_its_member_statuses(org: Rows) -> None:
    statuses = collections.defaultdict(dict)
    for status in org["CampaignMemberStatus"]:
        statuses[status["CampaignId"]][status["Label"]] = (status["IsDefault"], status["HasResponded"])
    assert statuses.keys() == {c["Id"] for c in org["Campaign"]}
    assert all(labels == {"Sent": (1, 0), "Responded": (0, 1)} for labels in statuses.values())
    assert {m["Status"] for m in org["CampaignMember"]} == {"Sent", "Responded"}


def test_opportunities_follow_their_stage(org: Rows, by_id: dict) -> None:
    categories = {"Pipeline": "Pipeline", "Closed": "Closed", "Omitted": "Omitted"}
    for o in org["Opportunity"]:
        assert o["ForecastCategory"] == categories[o["ForecastCategoryName"]]
        assert (o["ForecastCategoryName"] == "Closed") == (o["IsWon"] == 1)
        assert o["IsClosed"] == (o["StageName"] in ("Closed Won", "Closed Lost"))
        if o["Amount"] is not None:
            assert o["ExpectedRevenue"] == pytest.approx(o["Amount"] * o["Probability"] / 100, abs=0.01)
        assert o["Fiscal"] == f"{o['FiscalYear']} {o['FiscalQuarter']}" and o["CloseDate"].startswith(str(o["FiscalYear"]))
        if o["ContactId"]:
            assert by_id[o["ContactId"]]["AccountId"] == o["AccountId"]
    assert sum(o["ContactId"] is not None for o in org["Opportunity"]) > 50


def test_events_have_a_consistent_time_and_follow_the_who_what_rules(org: Rows, by_id: dict) -> None:
    events = org["Event"]
    assert any(e["IsAllDayEvent"] for e in events) and any(e["Activity_Key__c"] for e in events)
    for e in events:
        if e["WhoId"] and e["WhoId"].startswith("00Q"):
            assert e["WhatId"] is None and e["AccountId"] is None
        elif e["WhatId"] and e["WhatId"].startswith("006"):
            assert e["AccountId"] == by_id[e["WhatId"]]["AccountId"]
        elif e["WhoId"] and not e["WhatId"]:
            assert e["AccountId"] == by_id[e["WhoId"]]["AccountId"]
        assert e["ActivityDateTime"] == e["StartDateTime"]
        if not e["IsAllDayEvent"]:
            assert e["EndDateTime"] - e["StartDateTime"] == e["DurationInMinutes"] * 60_000
    keys = [row["Activity_Key__c"] for row in events + org["Task"] if row["Activity_Key__c"]]
    assert len(keys) == len(set(keys))


# ---- timestamps and deletes --------------------------------------------------------------------

def test_audit_stamps_are_ordered_spread_over_years_with_a_recent_tail(org: Rows) -> None:
    for name, rows in org.items():
        for row in rows:
            assert row["CreatedDate"] <= row["LastModifiedDate"] <= row["SystemModstamp"] <= NOW_MS, name
    leads = org["Lead"]
    created = [lead["CreatedDate"] for lead in leads]
    assert NOW_MS - min(created) > 4 * 365 * DAY_MS
    assert NOW_MS - min(created) <= 5 * 365 * DAY_MS + 1000
    assert sum(NOW_MS - lead["LastModifiedDate"] < DAY_MS for lead in leads) > 100
    assert sum(NOW_MS - lead["LastModifiedDate"] < DAY_MS / 24 for lead in leads) > 10
    assert any(lead["SystemModstamp"] > lead["LastModifiedDate"] for lead in leads)
    assert collections.Counter(created).most_common(1)[0][1] > 10  # a bulk import shares one stamp


def test_about_one_percent_are_recently_soft_deleted(org: Rows) -> None:
    for name in ("Lead", "Contact", "Account", "Task"):
        rows = org[name]
        deleted = [row for row in rows if row["IsDeleted"]]
        assert 0.004 <= len(deleted) / len(rows) <= 0.02, name
        for row in deleted:
            assert row["LastModifiedDate"] == row["SystemModstamp"] >= NOW_MS - 15 * DAY_MS
    assert not any(m["IsDeleted"] for m in org["CampaignMember"])


# ---- values ------------------------------------------------------------------------------------

def test_custom_and_optional_fields_are_filled_realistically(org: Rows) -> None:
    leads, contacts = org["Lead"], org["Contact"]
    scores = [lead["Lead_Score__c"] for lead in leads if lead["Lead_Score__c"] is not None]
    assert scores and all(0 <= s <= 100 and s == int(s) for s in scores)
    assert any(";" in (lead["Interests__c"] or "") for lead in leads)
    keys = [lead["External_Key__c"] for lead in leads if lead["External_Key__c"]]
    assert len(keys) == len(set(keys)) > 0.9 * len(leads)
    signups = [lead for lead in leads if lead["Newsletter_Signup__c"]]
    assert signups and all(lead["Newsletter_Signup__c"] <= _day(NOW_MS) for lead in signups)
    assert len({c["Preferred_Language__c"] for c in contacts}) == 6  # five languages and None
    assert any(c["Lifetime_Value__c"] for c in contacts)
    for field in ("AnnualRevenue", "NumberOfEmployees"):
        values = [lead[field] for lead in leads]
        assert None in values and any(v is not None for v in values), field


def test_phones_come_in_many_formats(org: Rows) -> None:
    shapes = {re.sub(r"\d", "#", p["Phone"]) for p in _persons(org) if p["Phone"]}
    assert len(shapes) >= 10


def test_text_needs_csv_quoting_somewhere(org: Rows) -> None:
    texts = [row[key] for rows in org.values() for row in rows for key in ("Description", "Street", "Company", "Title")
             if isinstance(row.get(key), str)]
    assert any("\n" in t for t in texts) and any("\r\n" in t for t in texts)
    assert any('"' in t for t in texts) and any("," in t for t in texts)
    assert any("\n" in (lead["Street"] or "") for lead in org["Lead"])
    assert any("\n" in (lead["Description"] or "") for lead in org["Lead"])


# ---- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("counts,now_ms,message", [
    ({"Leads": 5}, NOW_MS, "'Leads'"),
    ({"Lead": -1}, NOW_MS, "Lead must be a non-negative integer"),
    ({"Contact": 2.5}, NOW_MS, "Contact must be a non-negative integer"),
    ({"Contact": 5, "Account": 0}, NOW_MS, "Contacts need at least one Account"),
    ({"Lead": 3, "CampaignMember": 100, "Campaign": 2}, NOW_MS, "CampaignMember=100 exceeds"),
    ({"Lead": 3}, "2026-01-01", "now_ms"),
])
def test_bad_input_is_rejected_with_a_message_naming_it(counts: dict, now_ms: Any, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        next(generate_org(1, counts, now_ms))


def test_an_org_with_only_leads_still_generates_users_and_campaigns() -> None:
    rows, _ = _collect(3, {"Lead": 50})
    assert len(rows["User"]) >= 5 and len(rows["Lead"]) == 50 and len(rows["Campaign"]) == 10
    assert not rows["Contact"] and not rows["Account"] and not any(lead["IsConverted"] for lead in rows["Lead"])


# ---- speed -------------------------------------------------------------------------------------

def test_generation_speed_for_200k_leads() -> None:
    start = time.perf_counter()
    generated = sum(len(rows) for name, rows in generate_org(5, {"Lead": 200_000}, NOW_MS) if name == "Lead")
    elapsed = time.perf_counter() - start
    assert generated == 200_000
    print(f"\ngenerated {generated} Leads in {elapsed:.2f} s: {generated / elapsed:,.0f} rows/s")


def _day(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.timezone.utc).date().isoformat()
