"""The SOQL engine against a real SQLite org: parsing, semantics, relationships, deleted rows, errors."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest
from salesforce_sync_tests.emulator.soql_org import (
    ACME, ADA, ALAN, BOB, COLE, FILLERS, GRACE, NOW, PERCY, QUEUE, USER_1, USER_2, make_org, records, run,
)

from salesforce_sync.emulator.schema import FieldDef, OrgSchema
from salesforce_sync.emulator.soql import SoqlError, compile_query

NAMED = "Company != 'Filler'"  # the six hand-made leads, not the twenty fillers


@pytest.fixture(scope="module")
def org() -> tuple[sqlite3.Connection, OrgSchema]:
    conn, schema = make_org()
    yield conn, schema
    conn.close()


def lead_names(org, where: str, order: str = "LastName", *, include_deleted: bool = False) -> list[str]:
    conn, schema = org
    query = compile_query(f"SELECT LastName FROM Lead WHERE {where} ORDER BY {order}", schema,
                          include_deleted=include_deleted, now=NOW)
    return [row[0] for row in run(conn, query)]


def soql_error(soql: str, schema: OrgSchema | None = None) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        compile_query(soql, schema or OrgSchema(), include_deleted=False, now=NOW)
    return caught.value


# ---- comparisons ---------------------------------------------------------------------------------

def test_text_equality_is_case_insensitive(org):
    assert lead_names(org, "Email = 'ADA@example.COM'") == ["Lovelace"]
    assert lead_names(org, "Email = 'grace@example.com'") == ["Hopper"]
    assert lead_names(org, "LastName = 'BOB'") == ["bob"]


def test_not_equal_matches_nulls_and_both_spellings_agree(org):
    expected = ["bob", "Hopper", "Percent_Under", "Turing"]
    assert lead_names(org, f"{NAMED} AND Email != 'ada@example.com'") == expected
    assert lead_names(org, f"{NAMED} AND Email <> 'ADA@EXAMPLE.COM'") == expected


def test_number_comparisons(org):
    assert lead_names(org, "Lead_Score__c > 75.5") == ["Lovelace"]
    assert lead_names(org, "Lead_Score__c >= 75.5") == ["Hopper", "Lovelace"]
    assert lead_names(org, "Lead_Score__c < 75.5") == ["bob", "Percent_Under"]
    assert lead_names(org, "Lead_Score__c <= 75") == ["bob", "Percent_Under"]
    assert lead_names(org, "NumberOfEmployees = 500") == ["Hopper"]
    assert lead_names(org, "AnnualRevenue = 950000") == ["Lovelace"]
    assert lead_names(org, "Lead_Score__c = -1") == []


def test_text_range_comparison_ignores_case(org):
    assert lead_names(org, f"{NAMED} AND LastName < 'c'") == ["bob"]
    assert lead_names(org, f"{NAMED} AND LastName >= 'p'") == ["Percent_Under", "Turing"]


def test_like_wildcards_and_escapes(org):
    assert lead_names(org, "Email LIKE 'A%'") == ["Lovelace"]
    assert lead_names(org, "LastName LIKE '_OB'") == ["bob"]
    assert lead_names(org, "Email LIKE '50\\%%'") == ["Percent_Under"]
    assert lead_names(org, "Email LIKE '50%'") == ["Percent_Under"]
    assert lead_names(org, "LastName LIKE 'Percent\\_Under'") == ["Percent_Under"]
    assert lead_names(org, "LastName LIKE 'Percent\\_%'") == ["Percent_Under"]
    assert lead_names(org, "Company LIKE 'O\\'Reilly'") == ["Percent_Under"]
    assert lead_names(org, "Email LIKE '%\\%'") == []  # a literal % at the end: none


def test_in_and_not_in(org):
    assert lead_names(org, "Email IN ('ADA@example.com', 'bob@example.com')") == ["bob", "Lovelace"]
    assert lead_names(org, "Email IN (null, 'ada@example.com')") == ["Lovelace", "Turing"]
    assert lead_names(org, f"{NAMED} AND Email NOT IN ('ada@example.com', 'BOB@example.com')") == [
        "Hopper", "Percent_Under", "Turing"]
    assert lead_names(org, f"{NAMED} AND Email NOT IN (null, 'ada@example.com')") == [
        "bob", "Hopper", "Percent_Under"]
    assert lead_names(org, "Status IN ('Closed - Converted')") == ["bob"]


def test_includes_and_excludes_on_multipicklists(org):
    assert lead_names(org, "Interests__c INCLUDES ('CRM;Analytics', 'Automation')") == ["Hopper", "Lovelace"]
    assert lead_names(org, "Interests__c INCLUDES ('crm')") == ["Lovelace", "Percent_Under"]
    assert lead_names(org, "Interests__c INCLUDES ('CRM;Automation')") == []
    assert lead_names(org, f"{NAMED} AND Interests__c EXCLUDES ('CRM')") == ["bob", "Hopper", "Turing"]
    assert lead_names(org, "Interests__c = 'crm;analytics'") == ["Lovelace"]  # the same set, any order
    assert lead_names(org, "Interests__c = 'CRM'") == []
    assert lead_names(org, f"{NAMED} AND Interests__c != 'Automation'") == [
        "bob", "Lovelace", "Percent_Under", "Turing"]


def test_null_tests_and_empty_string(org):
    assert lead_names(org, "Email = null") == ["Turing"]
    assert lead_names(org, "Email = ''") == ["Turing"]
    assert lead_names(org, f"{NAMED} AND Email != null") == ["bob", "Hopper", "Lovelace", "Percent_Under"]
    assert lead_names(org, "Newsletter_Signup__c != null") == ["Lovelace"]


def test_booleans(org):
    assert lead_names(org, "HasOptedOutOfEmail = true") == ["Hopper"]
    assert lead_names(org, f"{NAMED} AND HasOptedOutOfEmail = FALSE") == ["bob", "Lovelace", "Percent_Under", "Turing"]
    assert lead_names(org, f"{NAMED} AND HasOptedOutOfEmail != true") == ["bob", "Lovelace", "Percent_Under", "Turing"]


@pytest.mark.parametrize("literal", [
    "2023-12-31T23:59:59.999Z", "2023-12-31T23:59:59.999+00:00", "2023-12-31T23:59:59.999+0000",
    "2024-01-01T00:59:59.999+01:00", "2023-12-31T18:59:59.999-05:00", "2023-12-31T18:59:59.999-0500",
    "2023-12-31T23:59:59.999000Z", "2023-12-31T23:59:59.9999z",
])
def test_datetime_literal_forms(org, literal):
    assert lead_names(org, f"CreatedDate = {literal}") == ["bob"]


def test_datetime_literal_without_fraction_and_ranges(org):
    assert lead_names(org, "CreatedDate = 2024-05-14T10:00:00Z") == ["Hopper"]
    window = "CreatedDate >= 2024-05-01T09:00:00Z AND CreatedDate < 2024-05-15T00:00:00Z"
    assert lead_names(org, f"{NAMED} AND {window}") == ["Hopper", "Turing"]
    assert lead_names(org, "CreatedDate < 2024-01-01T00:00:00Z AND CreatedDate > 2023-01-01T00:00:00Z") == ["bob"]


def test_date_fields_take_date_literals(org):
    assert lead_names(org, "Newsletter_Signup__c = 2024-05-14") == ["Lovelace"]
    assert lead_names(org, "Newsletter_Signup__c > 2024-05-14") == []
    assert lead_names(org, "Newsletter_Signup__c = YESTERDAY") == ["Lovelace"]
    assert lead_names(org, "Newsletter_Signup__c = LAST_N_DAYS:1") == ["Lovelace"]
    assert lead_names(org, "Newsletter_Signup__c = TODAY") == []


@pytest.mark.parametrize(("condition", "expected"), [
    ("CreatedDate = TODAY", ["Lovelace"]),
    ("CreatedDate = YESTERDAY", ["Hopper"]),
    ("CreatedDate = TOMORROW", []),
    ("CreatedDate = LAST_N_DAYS:1", ["Hopper", "Lovelace"]),
    ("CreatedDate = LAST_N_DAYS:14", ["Hopper", "Lovelace", "Turing"]),
    ("CreatedDate = N_DAYS_AGO:14", ["Turing"]),
    ("CreatedDate = THIS_WEEK", ["Hopper", "Lovelace"]),
    ("CreatedDate = LAST_WEEK", []),
    ("CreatedDate = THIS_MONTH", ["Hopper", "Lovelace", "Turing"]),
    ("CreatedDate = LAST_MONTH", ["Percent_Under"]),
    ("CreatedDate = LAST_90_DAYS", ["Hopper", "Lovelace", "Percent_Under", "Turing"]),
    ("CreatedDate = LAST_YEAR", ["bob"]),
    ("CreatedDate < THIS_YEAR", ["bob"]),
    ("CreatedDate >= THIS_YEAR", ["Hopper", "Lovelace", "Percent_Under", "Turing"]),
    ("CreatedDate > LAST_MONTH", ["Hopper", "Lovelace", "Turing"]),
    ("CreatedDate <= LAST_MONTH", ["bob", "Percent_Under"]),
    ("CreatedDate = LAST_N_MONTHS:1", ["Percent_Under"]),
    ("CreatedDate = LAST_N_YEARS:1", ["bob"]),
    ("CreatedDate != THIS_MONTH", ["bob", "Percent_Under"]),
    ("CreatedDate IN (LAST_MONTH, LAST_YEAR)", ["bob", "Percent_Under"]),
    ("CreatedDate = this_quarter", ["Hopper", "Lovelace", "Percent_Under", "Turing"]),
])
def test_relative_date_literals_against_a_fixed_now(org, condition, expected):
    assert lead_names(org, f"{NAMED} AND {condition}") == expected


def test_not_and_or_with_parentheses(org):
    assert lead_names(org, f"{NAMED} AND NOT Email = 'ada@example.com'") == ["bob", "Hopper", "Percent_Under", "Turing"]
    assert lead_names(org, "(Email = 'ada@example.com' OR Email = 'bob@example.com') AND Lead_Score__c > 50") == [
        "Lovelace"]
    assert lead_names(org, f"{NAMED} AND NOT (Email LIKE '%example.com' OR Lead_Score__c > 80)") == [
        "Percent_Under", "Turing"]
    assert lead_names(org, "NOT (NOT Email = 'ada@example.com')") == ["Lovelace"]


def test_injection_attempts_stay_literal(org):
    conn, schema = org
    assert lead_names(org, "LastName = 'x\\' OR \\'1\\'=\\'1'") == []
    assert lead_names(org, "LastName = 'bob\"; DROP TABLE \"Lead\"; --'") == []
    assert lead_names(org, "Email LIKE '%\\' OR 1=1 --'") == []
    assert conn.execute('SELECT COUNT(*) FROM "Lead"').fetchone()[0] == 26
    with pytest.raises(SoqlError) as caught:
        compile_query("SELECT Id FROM Lead WHERE LastName = 'x' OR '1'='1'", schema, include_deleted=False, now=NOW)
    assert caught.value.error_code == "MALFORMED_QUERY"


# ---- ids ----------------------------------------------------------------------------------------

def test_ids_compare_case_insensitively_and_accept_15_chars(org):
    assert lead_names(org, f"Id = '{ADA}'") == ["Lovelace"]
    assert lead_names(org, f"Id = '{ADA.lower()}'") == ["Lovelace"]
    assert lead_names(org, f"Id = '{ADA[:15]}'") == ["Lovelace"]
    assert lead_names(org, f"Id IN ('{ADA[:15]}', '{BOB.upper()}')") == ["bob", "Lovelace"]
    assert lead_names(org, f"OwnerId = '{USER_2[:15]}'") == ["Hopper"]
    assert lead_names(org, f"{NAMED} AND OwnerId != '{USER_1}'") == ["Hopper", "Turing"]


def test_invalid_id_value_is_rejected(org):
    error = soql_error("SELECT Id FROM Lead WHERE Id = '00Qnotanid'", org[1])
    assert error.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    assert error.message.endswith("invalid ID field: 00Qnotanid")


# ---- order, limit, offset -----------------------------------------------------------------------

def test_order_by_text_is_case_insensitive_and_direction(org):
    assert lead_names(org, NAMED) == ["bob", "Hopper", "Lovelace", "Percent_Under", "Turing"]
    assert lead_names(org, NAMED, "LastName DESC") == ["Turing", "Percent_Under", "Lovelace", "Hopper", "bob"]


def test_order_by_nulls(org):
    assert lead_names(org, NAMED, "Email")[0] == "Turing"  # nulls first ascending
    assert lead_names(org, NAMED, "Email DESC")[-1] == "Turing"  # nulls last descending
    assert lead_names(org, NAMED, "Email ASC NULLS LAST")[-1] == "Turing"
    assert lead_names(org, NAMED, "Email DESC NULLS FIRST")[0] == "Turing"
    assert lead_names(org, NAMED, "Lead_Score__c DESC NULLS LAST, LastName") == [
        "Lovelace", "Hopper", "Percent_Under", "bob", "Turing"]


def test_order_by_several_keys_and_relationship(org):
    assert lead_names(org, NAMED, "Owner.Email DESC, LastName DESC") == [
        "Hopper", "Percent_Under", "Lovelace", "bob", "Turing"]


def test_limit_and_offset(org):
    conn, schema = org
    base = "SELECT LastName FROM Lead WHERE Company = 'Filler' ORDER BY LastName"
    everything = [r[0] for r in run(conn, compile_query(base, schema, include_deleted=False, now=NOW))]
    assert len(everything) == 20
    page = compile_query(base + " LIMIT 5 OFFSET 3", schema, include_deleted=False, now=NOW)
    assert [r[0] for r in run(conn, page)] == everything[3:8]
    assert page.uses_offset and page.bulk_unsupported_reason() == "OFFSET clause is not supported in Bulk Query"
    tail = compile_query(base + " OFFSET 18", schema, include_deleted=False, now=NOW)
    assert [r[0] for r in run(conn, tail)] == everything[18:]
    assert conn.execute(tail.count_sql, tail.count_params).fetchone()[0] == 2
    limited = compile_query(base + " LIMIT 0", schema, include_deleted=False, now=NOW)
    assert run(conn, limited) == []


def test_unordered_queries_page_in_a_stable_order(org):
    conn, schema = org
    query = compile_query("SELECT Id FROM Lead", schema, include_deleted=False, now=NOW)
    assert [r[0] for r in run(conn, query)] == [ADA, GRACE, ALAN, PERCY, BOB, *FILLERS]


# ---- relationships ------------------------------------------------------------------------------

def test_polymorphic_owner_joins_users_and_ignores_groups(org):
    conn, schema = org
    rows = records(conn, schema, f"SELECT LastName, Owner.Email FROM Lead WHERE {NAMED} ORDER BY LastName")
    owners = {r["LastName"]: r["Owner"] for r in rows}
    assert owners["Hopper"]["Email"] == "Owner.Two@Example.com"
    assert owners["Hopper"]["attributes"] == {"type": "Name", "url": f"/services/data/v59.0/sobjects/User/{USER_2}"}
    assert owners["Turing"] == {"attributes": {"type": "Name", "url": f"/services/data/v59.0/sobjects/Group/{QUEUE}"},
                                "Email": None}
    assert lead_names(org, "Owner.Email = 'OWNER.TWO@example.com'") == ["Hopper"]
    assert lead_names(org, f"{NAMED} AND Owner.Email = null") == ["Turing"]


def test_campaign_member_to_lead_and_contact(org):
    conn, schema = org
    rows = records(conn, schema, "SELECT Id, Lead.HasOptedOutOfEmail, Contact.Email, Contact.Account.Name "
                                 "FROM CampaignMember WHERE Campaign.Name = 'spring' ORDER BY Id")
    assert [(r["Lead"] and r["Lead"]["HasOptedOutOfEmail"], r["Contact"] and r["Contact"]["Email"]) for r in rows] == [
        (False, None), (True, None), (None, "cole@acme.com")]
    account = rows[2]["Contact"]["Account"]
    assert account == {"attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{ACME}"},
                       "Name": "Acme"}
    assert list(rows[2]["Contact"]) == ["attributes", "Email", "Account"]
    query = compile_query("SELECT Id FROM CampaignMember WHERE Lead.HasOptedOutOfEmail = true", schema,
                          include_deleted=False, now=NOW)
    assert len(run(conn, query)) == 1


def test_polymorphic_who_coalesces_lead_and_contact(org):
    conn, schema = org
    rows = records(conn, schema, "SELECT Subject, Who.Name FROM Task ORDER BY Subject")
    assert [(r["Subject"], r["Who"] and r["Who"]["Name"]) for r in rows] == [
        ("Call", "Ada Lovelace"), ("Email", "Cole"), ("Other", None)]
    assert rows[1]["Who"]["attributes"] == {"type": "Name", "url": f"/services/data/v59.0/sobjects/Contact/{COLE}"}
    query = compile_query("SELECT Subject FROM Task WHERE Who.Name LIKE 'cole'", schema, include_deleted=False, now=NOW)
    assert [r[0] for r in run(conn, query)] == ["Email"]


def test_relationship_paths_and_column_names(org):
    conn, schema = org
    soql = "select id, CAMPAIGN.owner.EMAIL, contact.ACCOUNT.name, Lead.Owner.Email from campaignmember order by id"
    query = compile_query(soql, schema, include_deleted=False, now=NOW)
    assert query.object_name == "CampaignMember"
    assert query.column_names == ("Id", "Campaign.Owner.Email", "Contact.Account.Name", "Lead.Owner.Email")
    first = records(conn, schema, soql)[0]
    assert list(first) == ["attributes", "Id", "Campaign", "Contact", "Lead"]
    assert first["Campaign"]["Owner"]["Email"] == "owner.one@example.com"
    assert first["Lead"]["Owner"]["attributes"]["type"] == "Name"
    assert first["Campaign"]["Owner"]["attributes"]["type"] == "User"


def test_semi_join_and_anti_join(org):
    members = "SELECT LeadId FROM CampaignMember WHERE Campaign.Name = 'Spring'"
    assert lead_names(org, f"Id IN ({members})") == ["Hopper", "Lovelace"]  # Turing's membership is deleted
    assert lead_names(org, f"{NAMED} AND Id NOT IN ({members})") == ["bob", "Percent_Under", "Turing"]
    assert lead_names(org, f"Id IN ({members})", include_deleted=True) == ["Hopper", "Lovelace", "Turing"]


# ---- query vs queryAll --------------------------------------------------------------------------

def test_query_hides_deleted_rows_and_query_all_returns_them(org):
    assert lead_names(org, "Email = 'gone@example.com'") == []
    assert lead_names(org, "Email = 'gone@example.com'", include_deleted=True) == ["Gone"]
    assert lead_names(org, "IsDeleted = true", include_deleted=True) == ["Gone"]
    conn, schema = org
    for include_deleted, expected in ((False, 25), (True, 26)):
        query = compile_query("SELECT COUNT() FROM Lead", schema, include_deleted=include_deleted, now=NOW)
        assert conn.execute(query.count_sql, query.count_params).fetchone()[0] == expected


def test_objects_without_recycle_bin_have_no_deleted_filter(org):
    conn, schema = org
    query = compile_query("SELECT Email FROM User ORDER BY Email", schema, include_deleted=False, now=NOW)
    assert [r[0] for r in run(conn, query)] == ["owner.one@example.com", "Owner.Two@Example.com"]


# ---- select list forms --------------------------------------------------------------------------

def test_keywords_and_names_are_case_insensitive_with_any_whitespace(org):
    conn, schema = org
    soql = "  select   id,\n\tEMAIL\nfrom  LEAD\n  where email = 'ada@example.com'\n order by  LASTNAME  asc  "
    query = compile_query(soql, schema, include_deleted=False, now=NOW)
    assert query.column_names == ("Id", "Email")
    assert run(conn, query) == [(ADA, "ada@example.com")]


def test_count_and_count_field(org):
    conn, schema = org
    count = compile_query(f"SELECT COUNT() FROM Lead WHERE {NAMED}", schema, include_deleted=False, now=NOW)
    assert count.count_only and not count.aggregate and count.column_names == ()
    assert conn.execute(count.count_sql, count.count_params).fetchone() == (5,)
    assert count.bulk_unsupported_reason() == "Aggregate queries are not supported in Bulk Query"
    limited = compile_query("SELECT COUNT() FROM Lead LIMIT 3", schema, include_deleted=False, now=NOW)
    assert conn.execute(limited.count_sql, limited.count_params).fetchone() == (3,)
    field = compile_query(f"SELECT COUNT(Email), COUNT(Id) FROM Lead WHERE {NAMED}", schema,
                          include_deleted=False, now=NOW)
    assert field.aggregate and field.column_names == ("expr0", "expr1")
    assert conn.execute(field.aggregate_sql, field.aggregate_params).fetchall() == [(4, 5)]


def aggregate_rows(org, soql: str) -> list[tuple]:
    conn, schema = org
    query = compile_query(soql, schema, include_deleted=False, now=NOW)
    assert query.aggregate and query.bulk_unsupported_reason() == "Aggregate queries are not supported in Bulk Query"
    rows = conn.execute(query.aggregate_sql, query.aggregate_params).fetchall()
    assert conn.execute(query.count_sql, query.count_params).fetchone() == (len(rows),)
    return rows


def test_group_by_with_every_aggregate_function(org):
    assert aggregate_rows(org, f"SELECT Status, COUNT(Id), COUNT_DISTINCT(Company), MIN(Lead_Score__c), "
                               f"MAX(LastName), SUM(NumberOfEmployees), AVG(Lead_Score__c) FROM Lead WHERE {NAMED} "
                               "GROUP BY Status ORDER BY Status") == [
        ("Closed - Converted", 1, 1, 10.0, "bob", None, 10.0),
        ("Open - Not Contacted", 4, 4, 75.0, "Turing", 510, (90.0 + 75.5 + 75.0) / 3),
    ]


def test_group_by_having_order_by_and_limit_apply_to_groups(org):
    soql = ("SELECT Owner.Email owner, COUNT(Id) FROM Lead GROUP BY Owner.Email HAVING COUNT(Id) > 1 "
            "ORDER BY COUNT(Id) DESC")
    assert aggregate_rows(org, soql) == [("owner.one@example.com", 23)]
    assert aggregate_rows(org, "SELECT Company, COUNT(Id) FROM Lead GROUP BY Company ORDER BY COUNT(Id) DESC, "
                               "Company LIMIT 2 OFFSET 1") == [("Analytical", 1), ("Bletchley", 1)]
    assert aggregate_rows(org, "SELECT LastName FROM Lead WHERE Company = 'Navy' GROUP BY LastName") == [("Hopper",)]
    assert aggregate_rows(org, "SELECT COUNT(Id) FROM Lead WHERE Email = 'nobody@example.com'") == [(0,)]


def test_a_long_in_list_binds_one_parameter(org):
    conn, schema = org
    soql = f"SELECT LastName FROM Lead WHERE NumberOfEmployees IN ({'1,' * 40_000}500)"
    assert len(soql) < 100_000
    query = compile_query(soql, schema, include_deleted=False, now=NOW)
    assert len(query.params) == 1 and query.ids_sql.count("?") == 1
    assert [row[0] for row in run(conn, query)] == ["Hopper"]


def test_thousands_of_or_terms_nest_as_a_balanced_tree(org):
    terms = " OR ".join(f"Email = 'x{n}@example.com'" for n in range(3000))
    assert lead_names(org, f"{terms} OR Email = 'ADA@example.com'") == ["Lovelace"]


def test_text_folds_case_beyond_ascii():
    conn, schema = make_org()
    conn.executemany('UPDATE "Lead" SET "FirstName" = ?, "City" = ? WHERE "Id" = ?',
                     [("Mathéo", "Straße", ADA), ("Æsir", "KØBENHAVN", GRACE), ("ǅemal", None, PERCY)])
    org = (conn, schema)
    assert lead_names(org, "FirstName = 'MATHÉO'") == ["Lovelace"]
    assert lead_names(org, "FirstName = 'æsir'") == ["Hopper"]
    assert lead_names(org, "FirstName = '\u01c4EMAL'") == ["Percent_Under"]  # the digraph's upper case
    assert lead_names(org, "City = 'STRASSE'") == ["Lovelace"]  # casefold: ß is ss
    assert lead_names(org, "City IN ('københavn', 'Paris')") == ["Hopper"]
    assert lead_names(org, f"{NAMED} AND FirstName NOT IN ('MATHÉO', 'ÆSIR')") == ["bob", "Percent_Under", "Turing"]
    assert lead_names(org, f"{NAMED} AND FirstName != 'mathéo'") == ["bob", "Hopper", "Percent_Under", "Turing"]
    assert lead_names(org, "FirstName LIKE 'MATH_O'") == ["Lovelace"]
    assert lead_names(org, "City LIKE '%SS%'") == ["Lovelace"]
    assert lead_names(org, "City LIKE 'kø%'") == ["Hopper"]
    assert lead_names(org, "FirstName LIKE 'Æ\\_%'") == []  # an escaped wildcard stays literal
    assert lead_names(org, "Email LIKE 'ADA@%'") == ["Lovelace"]  # ASCII rows keep SQLite's own LIKE
    conn.close()


def test_plain_query_count_matches_ids(org):
    conn, schema = org
    query = compile_query("SELECT Id FROM Lead WHERE Lead_Score__c > 50 LIMIT 10", schema,
                          include_deleted=False, now=NOW)
    assert conn.execute(query.count_sql, query.count_params).fetchone()[0] == len(run(conn, query)) == 3


def test_fields_function(org):
    schema = org[1]
    lead = schema.object("Lead")
    standard = compile_query("SELECT FIELDS(STANDARD) FROM Lead", schema, include_deleted=False, now=NOW)
    assert standard.column_names == tuple(f.name for f in lead.fields if not f.custom)
    custom = compile_query("SELECT Id, FIELDS(CUSTOM) FROM Lead LIMIT 200", schema, include_deleted=False, now=NOW)
    assert custom.column_names == ("Id", "Lead_Score__c", "Interests__c", "External_Key__c", "Newsletter_Signup__c",
                                   "Audience_Id__c")
    every = compile_query("SELECT FIELDS(ALL) FROM Lead LIMIT 10", schema, include_deleted=False, now=NOW)
    assert every.column_names == tuple(f.name for f in lead.fields)
    assert every.bulk_unsupported_reason() == "Selecting compound data not supported in Bulk Query"
    assert len(records(org[0], schema, "SELECT FIELDS(ALL) FROM Lead ORDER BY LastName LIMIT 200")) == 25


def test_bulk_accepts_parent_relationship_fields(org):
    query = compile_query("SELECT Id, Owner.Email FROM Lead", org[1], include_deleted=True, now=NOW)
    assert query.bulk_unsupported_reason() is None


def test_schema_changes_at_run_time():
    conn, schema = make_org()
    lead = schema.object("Lead")
    extra = FieldDef("Region__c", "picklist", length=255, custom=True, picklist=("EMEA", "APAC"))
    renamed = [replace(f, name="Score__c") if f.name == "Lead_Score__c" else f for f in lead.fields]
    schema.replace_object(type(lead)(lead.name, lead.label_plural, [*renamed, extra]))
    conn.execute('ALTER TABLE "Lead" ADD COLUMN "Region__c" TEXT')
    conn.execute('ALTER TABLE "Lead" RENAME COLUMN "Lead_Score__c" TO "Score__c"')
    conn.execute('UPDATE "Lead" SET "Region__c" = \'EMEA\' WHERE "Id" = ?', (ADA,))
    query = compile_query("SELECT region__c, Score__c FROM Lead WHERE Region__c = 'emea'", schema,
                          include_deleted=False, now=NOW)
    assert query.column_names == ("Region__c", "Score__c")
    assert [row[:2] for row in run(conn, query)] == [("EMEA", 90.0)]
    error = soql_error("SELECT Lead_Score__c FROM Lead", schema)
    assert error.error_code == "INVALID_FIELD" and "No such column 'Lead_Score__c' on entity 'Lead'" in error.message
    conn.close()


# ---- errors -------------------------------------------------------------------------------------

def test_echo_block_format():
    error = soql_error("SELECT Id, Foo FROM Lead")
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo' on entity 'Lead'. If you are attempting to use a custom field, be sure to append "
        "the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
        "appropriate names.")


def test_echo_block_points_into_later_lines():
    error = soql_error("SELECT Id\nFROM Lead\nWHERE Bogus__c = 1")
    assert error.message.startswith("\nWHERE Bogus__c = 1\n      ^\nERROR at Row:3:Column:7\nNo such column 'Bogus__c'")


@pytest.mark.parametrize(("soql", "code", "description"), [
    ("SELECT Id FROM Lead xyz", "MALFORMED_QUERY", "unexpected token: 'xyz'"),
    ("SELECT Id FROM", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM Lead WHERE Email = 'a' AND Email = 'b' OR Email = 'c'", "MALFORMED_QUERY",
     "unexpected token: 'OR'"),
    ("SELECT Id FROM Lead WHERE Email = 'a' OR Email = 'b' AND Email = 'c'", "MALFORMED_QUERY",
     "unexpected token: 'AND'"),
    ('SELECT Id FROM Lead WHERE Email = "a@b.c"', "MALFORMED_QUERY", "unexpected token: '\"a@b.c\"'"),
    ("SELECT Id FROM Lead WHERE Email = 'a\\qb'", "MALFORMED_QUERY", "Illegal character sequence '\\q'"),
    ("SELECT Id FROM Lead WHERE Email = '50\\%'", "MALFORMED_QUERY", "Illegal character sequence '\\%'"),
    ("SELECT Id FROM Lead WHERE CreatedDate = SOMEDAY", "MALFORMED_QUERY", "unexpected token: 'SOMEDAY'"),
    ("SELECT Id, Id FROM Lead", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ("SELECT COUNT(Id), Email FROM Lead", "MALFORMED_QUERY", "Field must be grouped or aggregated: Email"),
    ("SELECT FIELDS(ALL) FROM Lead", "MALFORMED_QUERY", "The SOQL FIELDS function must have a LIMIT of at most 200"),
    ("SELECT FIELDS(CUSTOM) FROM Lead LIMIT 201", "MALFORMED_QUERY", "must have a LIMIT of at most 200"),
    ("SELECT Id FROM Foo", "INVALID_TYPE", "sObject type 'Foo' is not supported. If you are attempting to use a "
     "custom object, be sure to append the '__c' after the entity name."),
    ("SELECT Id FROM Lead WHERE Id IN (SELECT LeadId FROM Nope__c)", "INVALID_TYPE", "sObject type 'Nope__c'"),
    ("SELECT Foo.Email FROM Lead", "INVALID_FIELD", "Didn't understand relationship 'Foo' in field path."),
    ("SELECT Owner.Shoe FROM Lead", "INVALID_FIELD", "No such column 'Shoe' on entity 'Name'"),
    ("SELECT Contact.Shoe FROM CampaignMember", "INVALID_FIELD", "No such column 'Shoe' on entity 'Contact'"),
    ("SELECT Who.Account.Name FROM Task", "INVALID_FIELD", "Didn't understand relationship 'Account'"),
    ("SELECT Id FROM Lead WHERE Description = 'x'", "INVALID_FIELD",
     "field 'Description' can not be filtered in a query call"),
    ("SELECT Id FROM Lead ORDER BY Description", "INVALID_FIELD",
     "field 'Description' can not be sorted in a query call"),
    ("SELECT Id FROM Lead ORDER BY Interests__c", "INVALID_FIELD", "field 'Interests__c' can not be sorted"),
    ("SELECT Id FROM Lead WHERE Address = null", "INVALID_FIELD", "field 'Address' can not be filtered"),
    ("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01T00:00:00Z'", "INVALID_FIELD",
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE CreatedDate > 2024-01-01", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Lead WHERE Newsletter_Signup__c = 2024-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date"),
    ("SELECT Id FROM Lead WHERE HasOptedOutOfEmail = 'true'", "INVALID_FIELD",
     "field 'HasOptedOutOfEmail' must be of type boolean and should not be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE NumberOfEmployees = '5'", "INVALID_FIELD", "must be of type integer"),
    ("SELECT Id FROM Lead WHERE Lead_Score__c = true", "INVALID_FIELD", "must be of type double"),
    ("SELECT Id FROM Lead WHERE Email = 5", "INVALID_FIELD",
     "field 'Email' must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Lead WHERE Owner.Email = 5", "INVALID_FIELD", "field 'Owner.Email' must be of type string"),
    ("SELECT Id FROM Lead WHERE Email INCLUDES ('a')", "INVALID_QUERY_FILTER_OPERATOR",
     "includes or excludes operator only valid on multipicklist field: 'Email'"),
    ("SELECT Id FROM Lead WHERE Lead_Score__c LIKE '1%'", "INVALID_QUERY_FILTER_OPERATOR",
     "invalid operator on field 'Lead_Score__c'"),
    ("SELECT Id FROM Lead WHERE Email > null", "INVALID_QUERY_FILTER_OPERATOR", "invalid operator '>'"),
    ("SELECT Id FROM Lead OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
    ("SELECT A.B.C.D.E.F.Name FROM Lead", "MALFORMED_QUERY", "Cannot follow more than 5 levels of relationships"),
])
def test_error_codes_and_messages(soql, code, description):
    error = soql_error(soql)
    assert error.error_code == code
    assert description in error.message
    assert error.message.startswith("\n" + soql.split("\n")[0]) and "\nERROR at Row:1:Column:" in error.message


def test_error_caret_points_at_the_offending_token():
    error = soql_error("SELECT Id FROM Lead WHERE CreatedDate > '2024-01-01'")
    line, caret = error.message.split("\n")[1:3]
    assert line[len(caret) - 1:].startswith("'2024-01-01'")
    error = soql_error("SELECT Id FROM Lead WHERE Email = 'a' AND Name = 'b' OR Name = 'c'")
    line, caret = error.message.split("\n")[1:3]
    assert line[len(caret) - 1:].startswith("OR Name")


def test_five_relationship_levels_are_allowed():
    query = compile_query("SELECT Contact.Account.Parent.Parent.Owner.Email FROM CampaignMember", OrgSchema(),
                          include_deleted=False, now=NOW)
    assert query.column_names == ("Contact.Account.Parent.Parent.Owner.Email",)


# ---- query plans --------------------------------------------------------------------------------

def _plan(conn: sqlite3.Connection, sql: str, params: tuple) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


@pytest.mark.parametrize(("soql", "expected"), [
    ("SELECT Id FROM Lead WHERE SystemModstamp >= 2024-01-01T00:00:00Z ORDER BY SystemModstamp ASC",
     "SEARCH t0 USING INDEX Lead_SystemModstamp"),
    ("SELECT Id FROM Lead WHERE LastModifiedDate > 2024-01-01T00:00:00Z ORDER BY LastModifiedDate DESC",
     "SEARCH t0 USING INDEX Lead_LastModifiedDate"),
    ("SELECT Id FROM Lead ORDER BY Id ASC", "SCAN t0 USING INDEX Lead_Id"),
    (f"SELECT Id FROM Lead WHERE Id IN ('{ADA}', '{BOB[:15]}')", "SEARCH t0 USING INDEX Lead_Id (Id=?)"),
    (f"SELECT Id FROM CampaignMember WHERE LeadId = '{ADA}'", "USING INDEX CampaignMember_LeadId (LeadId=?)"),
    ("SELECT Id FROM Lead WHERE Id IN (SELECT LeadId FROM CampaignMember WHERE CampaignId = '7015g0000000001AAA')",
     "SEARCH t0 USING INDEX Lead_Id (Id=?)"),
])
def test_sync_tool_queries_use_the_org_indexes(org, soql, expected):
    conn, schema = org
    query = compile_query(soql, schema, include_deleted=False, now=NOW)
    plan = _plan(conn, query.ids_sql, query.params)
    assert expected in plan, plan
    if "ORDER BY" in soql:  # ordered reads walk the index instead of sorting the table
        assert "TEMP B-TREE" not in plan, plan


def test_page_sql_looks_rows_up_by_rowid_and_parents_by_id_index(org):
    conn, schema = org
    query = compile_query("SELECT Id, Lead.Email, Contact.Account.Name FROM CampaignMember", schema,
                          include_deleted=False, now=NOW)
    plan = _plan(conn, query.page_sql, ("[1, 2]",))
    assert "SEARCH t0 USING INTEGER PRIMARY KEY (rowid=?)" in plan
    for alias, table in (("t1", "Lead"), ("t2", "Contact"), ("t3", "Account")):
        assert f"SEARCH {alias} USING INDEX {table}_Id (Id=?)" in plan, plan
    assert "AUTOMATIC" not in plan
