"""The SOQL a write-back sends, through simple-salesforce over TLS: IN lists of hundreds and thousands of values,
semi- and anti-joins, GROUP BY aggregates and case-insensitive matching beyond ASCII. Every result is checked
against a Python filter over the org's full data, read with plain queries."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_sync.emulator import EmulatedOrg

LEADS = 2600  # more than 2,000 distinct emails, so a GROUP BY Email outgrows one response


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedOrg]:
    """Read-only for every test here."""
    with EmulatedOrg(counts={"Lead": LEADS, "Contact": 400, "CampaignMember": 700},
                     tls_dir=tmp_path_factory.mktemp("tls")) as started:
        yield started


@pytest.fixture(scope="module")
def sf(org: EmulatedOrg) -> Salesforce:
    return org.simple_salesforce()


@pytest.fixture(scope="module")
def leads(sf: Salesforce) -> list[dict[str, Any]]:
    return sf.query_all("SELECT Id, FirstName, LastName, Email, LeadSource, OwnerId, CreatedDate FROM Lead")["records"]


@pytest.fixture(scope="module")
def members(sf: Salesforce) -> list[dict[str, Any]]:
    return sf.query_all("SELECT Id, CampaignId, LeadId, ContactId FROM CampaignMember")["records"]


def ids(sf: Salesforce, soql: str) -> set[str]:
    return {r["Id"] for r in sf.query_all(soql)["records"]}


def error_of(sf: Salesforce, soql: str) -> dict[str, str]:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    return caught.value.content[0]


def same(left: str | None, right: str) -> bool:
    return left is not None and left.casefold() == right.casefold()


# ---- IN lists -------------------------------------------------------------------------------------------------

def test_in_hundreds_of_ids_in_any_case_and_length(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    chosen = [lead["Id"] for lead in leads[::7]][:300]
    spelled = [i[:15] if n % 3 == 0 else i.lower() if n % 3 == 1 else i for n, i in enumerate(chosen)]
    assert ids(sf, format_soql("SELECT Id FROM Lead WHERE Id IN {}", spelled)) == set(chosen)
    rest = ids(sf, format_soql("SELECT Id FROM Lead WHERE Id NOT IN {}", spelled))
    assert rest == {lead["Id"] for lead in leads} - set(chosen)


def test_in_hundreds_of_emails_ignores_case(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    emails = sorted({lead["Email"] for lead in leads if lead["Email"]})[:400]
    shouted = [email.upper() for email in emails]
    folded = {email.casefold() for email in emails}
    expected = {lead["Id"] for lead in leads if lead["Email"] and lead["Email"].casefold() in folded}
    assert ids(sf, format_soql("SELECT Id FROM Lead WHERE Email IN {}", shouted)) == expected
    count = sf.query(format_soql("SELECT COUNT() FROM Lead WHERE Email NOT IN {}", shouted))["totalSize"]
    assert count == len(leads) - len(expected)


def test_in_strings_with_quotes_backslashes_and_accents(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    names = sorted({lead["LastName"] for lead in leads})
    tricky = [n for n in names if "'" in n or not n.isascii()]
    assert tricky and any("'" in n for n in tricky)
    values = [n.upper() for n in tricky] + ["back\\slash", 'double "quote"', "tab\there"]
    # upper-casing is not always undone by casefold (Turkish 'ı' becomes 'I', which folds to 'i'): the expected
    # rows are those equal to a value as sent
    folded = {v.casefold() for v in values}
    expected = {lead["Id"] for lead in leads if lead["LastName"].casefold() in folded}
    assert len(expected) > 50
    assert ids(sf, format_soql("SELECT Id FROM Lead WHERE LastName IN {}", values)) == expected


def test_thousands_of_ids_in_a_bulk_query_under_100000_characters(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    chosen = [lead["Id"] for lead in leads[:4000]]
    soql = format_soql("SELECT Id FROM Lead WHERE Id IN {}", chosen)
    assert 50_000 < len(soql) <= 100_000
    found = set()
    for chunk in sf.bulk2.Lead.query(soql):
        rows = list(csv.reader(io.StringIO(chunk)))
        assert rows[0] == ["Id"]
        found.update(row[0] for row in rows[1:])
    assert found == set(chosen)


def test_a_statement_over_100000_characters_is_refused(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    soql = format_soql("SELECT Id FROM Lead WHERE Id IN {}", [lead["Id"] for lead in leads] * 2)
    assert len(soql) > 100_000
    with pytest.raises(SalesforceMalformedRequest) as caught:
        next(sf.bulk2.Lead.query(soql, wait=0))
    error = caught.value.content[0]
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert error["message"].startswith("SOQL statements cannot be longer than 100,000 characters")


def test_hundreds_of_or_terms_stay_inside_sqlites_limits(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    emails = sorted({lead["Email"].casefold() for lead in leads if lead["Email"]})[:600]
    soql = "SELECT Id FROM Lead WHERE " + " OR ".join(format_soql("Email = {}", e) for e in emails)
    assert ids(sf, soql) == {lead["Id"] for lead in leads if lead["Email"] and lead["Email"].casefold() in emails}


def test_conditions_nested_too_deep_are_too_complicated(sf: Salesforce) -> None:
    error = error_of(sf, "SELECT Id FROM Lead WHERE " + "NOT (" * 120 + "Email = 'a@b.c'" + ")" * 120)
    assert error["errorCode"] == "QUERY_TOO_COMPLICATED"


# ---- semi-joins and anti-joins --------------------------------------------------------------------------------

def test_semi_join_and_anti_join_on_campaign_members(sf: Salesforce, leads: list[dict[str, Any]],
                                                     members: list[dict[str, Any]]) -> None:
    campaign, _ = Counter(m["CampaignId"] for m in members if m["LeadId"]).most_common(1)[0]
    in_campaign = {m["LeadId"] for m in members if m["CampaignId"] == campaign and m["LeadId"]}
    subquery = f"SELECT LeadId FROM CampaignMember WHERE CampaignId = '{campaign[:15]}'"
    assert ids(sf, f"SELECT Id FROM Lead WHERE Id IN ({subquery})") == in_campaign
    assert ids(sf, f"SELECT Id FROM Lead WHERE Id NOT IN ({subquery})") == {lead["Id"] for lead in leads} - in_campaign
    with_email = {lead["Id"] for lead in leads if lead["Email"]}
    both = ids(sf, f"SELECT Id FROM Lead WHERE Email != null AND Id IN ({subquery}) "
                   f"AND Id NOT IN (SELECT LeadId FROM CampaignMember WHERE Status = 'Responded')")
    responded = {m["LeadId"] for m in sf.query_all("SELECT LeadId FROM CampaignMember WHERE Status = 'Responded'")[
        "records"]}
    assert both == (in_campaign & with_email) - responded


def test_semi_join_on_a_reference_field(sf: Salesforce) -> None:
    contacts = sf.query_all("SELECT Id, AccountId FROM Contact")["records"]
    accounts = {a["Id"] for a in sf.query_all("SELECT Id FROM Account WHERE Name LIKE '%a%'")["records"]}
    found = ids(sf, "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Name LIKE '%a%')")
    assert found == {c["Id"] for c in contacts if c["AccountId"] in accounts}
    members = sf.query_all("SELECT ContactId FROM CampaignMember WHERE ContactId != null")["records"]
    assert ids(sf, "SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM CampaignMember)") == {
        m["ContactId"] for m in members}


@pytest.mark.parametrize(("where", "message"), [
    ("Email = 'a@b.c' OR Id IN (SELECT LeadId FROM CampaignMember)",
     "Semi join sub-selects are not allowed with the 'OR' operator"),
    ("Email != null AND (Email = 'a@b.c' OR Id IN (SELECT LeadId FROM CampaignMember))",
     "Semi join sub-selects are only allowed at the top level WHERE expressions and not in nested WHERE expressions."),
    ("NOT Id IN (SELECT LeadId FROM CampaignMember)", "Semi join sub-selects are only allowed at the top level"),
    ("Id IN (SELECT LeadId FROM CampaignMember) AND Id IN (SELECT LeadId FROM CampaignMember) "
     "AND Id NOT IN (SELECT LeadId FROM CampaignMember)", "Maximum 2 semi join sub-selects are allowed"),
    ("Id IN (SELECT LeadId FROM CampaignMember WHERE CampaignId IN (SELECT Id FROM Campaign))",
     "Nesting of semi join sub-selects is not supported"),
    ("Id IN (SELECT WhoId FROM Task)", "Entity 'Task' is not supported for semi join inner selects"),
    ("Id IN (SELECT Status FROM CampaignMember)", "must select an Id or reference field of its own object"),
    ("Id IN (SELECT Lead.Id FROM CampaignMember)", "must select an Id or reference field of its own object"),
    ("Id IN (SELECT ContactId FROM CampaignMember)", "The selected field 'ContactId' in the subquery and the left "
     "operand field 'Id' in the where expression in the outer query must point to the same object type"),
    ("Owner.Id IN (SELECT Id FROM User)", "can't traverse a relationship: Owner.Id"),
    ("Email IN (SELECT LeadId FROM CampaignMember)", "needs an id or reference field"),
])
def test_semi_join_restrictions(sf: Salesforce, where: str, message: str) -> None:
    error = error_of(sf, f"SELECT Id FROM Lead WHERE {where}")
    assert error["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_QUERY_FILTER_OPERATOR")
    assert message in error["message"]
    assert "\nERROR at Row:1:Column:" in error["message"]


# ---- GROUP BY -------------------------------------------------------------------------------------------------

def test_group_by_counts_as_aggregate_results(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    result = sf.query("SELECT LeadSource, COUNT(Id), COUNT_DISTINCT(OwnerId) owners, MIN(CreatedDate), "
                      "MAX(CreatedDate) latest FROM Lead GROUP BY LeadSource")
    groups: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for lead in leads:
        groups[lead["LeadSource"]].append(lead)
    assert result["done"] is True and result["totalSize"] == len(result["records"]) == len(groups)
    for record in result["records"]:
        assert list(record) == ["attributes", "LeadSource", "expr0", "owners", "expr1", "latest"]
        assert record["attributes"] == {"type": "AggregateResult"}
        members = groups[record["LeadSource"]]
        assert record["expr0"] == len(members)
        assert record["owners"] == len({m["OwnerId"] for m in members})
        assert record["expr1"] == min(m["CreatedDate"] for m in members)
        assert record["latest"] == max(m["CreatedDate"] for m in members)


def test_count_field_without_group_by_and_having(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    whole = sf.query("SELECT COUNT(Email), COUNT(Id) total FROM Lead")
    assert whole["records"] == [{"attributes": {"type": "AggregateResult"},
                                 "expr0": sum(1 for lead in leads if lead["Email"]), "total": len(leads)}]
    shared = Counter(lead["Email"].casefold() for lead in leads if lead["Email"])
    duplicates = sf.query_all("SELECT Email, COUNT(Id) FROM Lead WHERE Email != null GROUP BY Email "
                              "HAVING COUNT(Id) > 1 ORDER BY COUNT(Id) DESC")["records"]
    assert {r["Email"].casefold(): r["expr0"] for r in duplicates} == {e: n for e, n in shared.items() if n > 1}
    assert [r["expr0"] for r in duplicates] == sorted((r["expr0"] for r in duplicates), reverse=True)


def test_group_by_a_parent_field(sf: Salesforce) -> None:
    contacts = sf.query_all("SELECT Account.Name FROM Contact")["records"]
    expected = Counter(c["Account"]["Name"] if c["Account"] else None for c in contacts)
    records = sf.query("SELECT Account.Name, COUNT(Id) n FROM Contact GROUP BY Account.Name")["records"]
    assert {r["Name"]: r["n"] for r in records} == dict(expected)


def test_more_groups_than_one_response_holds(sf: Salesforce, leads: list[dict[str, Any]]) -> None:
    assert len({lead["Email"] for lead in leads}) > 2000
    error = error_of(sf, "SELECT Email, COUNT(Id) FROM Lead GROUP BY Email")
    assert error == {"errorCode": "EXCEEDED_ID_LIMIT", "message": "Aggregate query does not support queryMore(), "
                                                                  "use LIMIT to restrict the results to a single batch"}
    assert len(sf.query("SELECT Email, COUNT(Id) FROM Lead GROUP BY Email LIMIT 2000")["records"]) == 2000


def test_bulk_refuses_aggregates_synchronously(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        next(sf.bulk2.Lead.query("SELECT LeadSource, COUNT(Id) FROM Lead GROUP BY LeadSource", wait=0))
    assert caught.value.content[0]["message"] == "Aggregate queries are not supported in Bulk Query"


@pytest.mark.parametrize(("soql", "message"), [
    ("SELECT LeadSource, Email, COUNT(Id) FROM Lead GROUP BY LeadSource", "Field must be grouped or aggregated: Email"),
    ("SELECT COUNT() FROM Lead GROUP BY LeadSource", "COUNT() can't be used with GROUP BY"),
    ("SELECT COUNT(Id) n, COUNT(Email) n FROM Lead", "duplicate alias: n"),
    ("SELECT SUM(Email) FROM Lead", "field Email does not support aggregate operator SUM"),
    ("SELECT Description, COUNT(Id) FROM Lead GROUP BY Description", "field 'Description' can not be grouped"),
    ("SELECT Id FROM Lead WHERE COUNT(Id) > 1", "aggregate function COUNT is not allowed here"),
    ("SELECT LeadSource, COUNT(Id) FROM Lead GROUP BY LeadSource HAVING Email = 'a@b.c'",
     "Field must be grouped or aggregated: Email"),
])
def test_aggregate_errors(sf: Salesforce, soql: str, message: str) -> None:
    error = error_of(sf, soql)
    assert error["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD")
    assert message in error["message"]


# ---- case-insensitive beyond ASCII ----------------------------------------------------------------------------

@pytest.mark.parametrize(("field", "written"), [("FirstName", "MATHÉO"), ("FirstName", "chloé"),
                                                ("LastName", "KJÆR"), ("LastName", "WEISS"), ("LastName", "groß")])
def test_equality_and_in_fold_case_across_unicode(sf: Salesforce, leads: list[dict[str, Any]], field: str,
                                                  written: str) -> None:
    expected = {lead["Id"] for lead in leads if same(lead[field], written)}
    assert expected, f"the generated org has no {field} like {written}"
    assert ids(sf, format_soql(f"SELECT Id FROM Lead WHERE {field} = {{}}", written)) == expected
    assert ids(sf, format_soql(f"SELECT Id FROM Lead WHERE {field} IN {{}}", [written, "nobody"])) == expected
    unequal = ids(sf, format_soql(f"SELECT Id FROM Lead WHERE {field} != {{}}", written))
    assert unequal == {lead["Id"] for lead in leads} - expected


@pytest.mark.parametrize("pattern", ["MATH_O", "%É%", "STRAU%", "%ss", "chlo%"])
def test_like_folds_case_across_unicode(sf: Salesforce, leads: list[dict[str, Any]], pattern: str) -> None:
    import re

    regex = re.compile(re.escape(pattern.casefold()).replace("%", ".*").replace("_", "."), re.DOTALL)
    expected = {lead["Id"] for lead in leads
                if any(regex.fullmatch((lead[f] or "").casefold()) for f in ("FirstName", "LastName"))}
    assert expected, f"the generated org has no name like {pattern}"
    found = ids(sf, format_soql("SELECT Id FROM Lead WHERE FirstName LIKE {0} OR LastName LIKE {0}", pattern))
    assert found == expected
