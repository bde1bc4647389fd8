"""Sync rules -> SOQL WHERE, SELECT lists and window queries."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from salesforce_sync.config import FieldMapping, SyncRules, default_mappings, effective_mappings
from salesforce_sync.sync import (
    SyncRuleError,
    build_count_soql,
    build_window_soql,
    rules_to_where,
    select_fields,
    soql_like_pattern,
    soql_string,
)

FIELD_TYPES = {
    "Email": "email", "Company": "string", "Status": "picklist", "Website": "url", "Phone": "phone",
    "Description": "textarea", "OwnerId": "reference", "Id": "id", "Interests__c": "multipicklist",
    "Lead_Score__c": "double", "AnnualRevenue": "currency", "NumberOfEmployees": "int",
    "HasOptedOutOfEmail": "boolean", "Newsletter_Signup__c": "date", "LastModifiedDate": "datetime",
    "Account.Name": "string",
}


def where(*rules: dict, match: str = "all", object_type: str = "Lead") -> str | None:
    return rules_to_where(SyncRules.model_validate({"match": match, "rules": list(rules)}), FIELD_TYPES,
                          integration_id="acme", object_type=object_type)


def rule(field: str, operator: str, value: object = None) -> dict:
    return {"field": field, "operator": operator} | ({} if value is None else {"value": value})


@pytest.mark.parametrize(("field", "operator", "value", "soql"), [
    # text-like fields: quoted literals, LIKE patterns
    ("Email", "equals", "ada@example.com", "Email = 'ada@example.com'"),
    ("Status", "not_equals", "Closed", "Status != 'Closed'"),
    ("Company", "contains", "Acme", "Company LIKE '%Acme%'"),
    ("Company", "not_contains", "Acme", "(NOT Company LIKE '%Acme%')"),
    ("Website", "starts_with", "https://", "Website LIKE 'https://%'"),
    ("Email", "ends_with", "@example.com", "Email LIKE '%@example.com'"),
    ("Company", "greater_than", "M", "Company > 'M'"),
    ("Phone", "less_than", "5", "Phone < '5'"),
    ("Company", "equals", 12345, "Company = '12345'"),
    ("OwnerId", "equals", "005000000000001AAA", "OwnerId = '005000000000001AAA'"),
    ("Id", "not_equals", "00Q000000000001AAA", "Id != '00Q000000000001AAA'"),
    ("Account.Name", "starts_with", "Ac", "Account.Name LIKE 'Ac%'"),
    # multipicklist: INCLUDES / EXCLUDES for contains, exact string for equals
    ("Interests__c", "contains", "CRM", "Interests__c INCLUDES ('CRM')"),
    ("Interests__c", "not_contains", "CRM", "Interests__c EXCLUDES ('CRM')"),
    ("Interests__c", "equals", "CRM;Email", "Interests__c = 'CRM;Email'"),
    # numbers: bare, validated, normalised
    ("Lead_Score__c", "greater_than", 50, "Lead_Score__c > 50"),
    ("Lead_Score__c", "less_than", "12.5", "Lead_Score__c < 12.5"),
    ("AnnualRevenue", "equals", 1e6, "AnnualRevenue = 1000000.0"),
    ("AnnualRevenue", "not_equals", "1E3", "AnnualRevenue != 1000"),
    ("NumberOfEmployees", "greater_than", "-3", "NumberOfEmployees > -3"),
    # booleans: bare
    ("HasOptedOutOfEmail", "equals", False, "HasOptedOutOfEmail = false"),
    ("HasOptedOutOfEmail", "not_equals", "TRUE", "HasOptedOutOfEmail != true"),
    # dates and datetimes: bare, validated, datetimes in UTC
    ("Newsletter_Signup__c", "greater_than", date(2024, 1, 2), "Newsletter_Signup__c > 2024-01-02"),
    ("Newsletter_Signup__c", "equals", "2024-02-29", "Newsletter_Signup__c = 2024-02-29"),
    ("LastModifiedDate", "less_than", "2024-01-02T03:04:05+02:00", "LastModifiedDate < 2024-01-02T01:04:05Z"),
    ("LastModifiedDate", "greater_than", "2024-01-02", "LastModifiedDate > 2024-01-02T00:00:00Z"),
    ("LastModifiedDate", "equals", datetime(2024, 1, 2, 3, 4, 5, 120000), "LastModifiedDate = 2024-01-02T03:04:05.120Z"),
    ("LastModifiedDate", "not_equals", "2024-01-02T03:04:05.000+0000", "LastModifiedDate != 2024-01-02T03:04:05Z"),
    # presence tests on any type
    ("Email", "is_set", None, "Email != null"),
    ("Lead_Score__c", "is_not_set", None, "Lead_Score__c = null"),
    ("Newsletter_Signup__c", "is_set", None, "Newsletter_Signup__c != null"),
])
def test_every_operator_and_type(field: str, operator: str, value: object, soql: str) -> None:
    assert where(rule(field, operator, value)) == soql


def test_all_joins_with_and_any_with_or() -> None:
    rules = (rule("Email", "is_set"), rule("Company", "not_contains", "test"), rule("Status", "equals", "Open"))
    assert where(*rules) == "Email != null AND (NOT Company LIKE '%test%') AND Status = 'Open'"
    assert where(*rules, match="any") == "Email != null OR (NOT Company LIKE '%test%') OR Status = 'Open'"


def test_no_rules_means_all_records() -> None:
    assert where() is None
    assert rules_to_where(None, FIELD_TYPES, integration_id="acme", object_type="Lead") is None


def test_field_names_match_case_insensitively_and_use_the_describe_spelling() -> None:
    assert where(rule("email", "is_set"), rule("account.name", "equals", "x")) == "Email != null AND Account.Name = 'x'"


@pytest.mark.parametrize(("value", "literal"), [
    ("O'Brien", r"'O\'Brien'"),
    ('say "hi"', r"""'say \"hi\"'"""),
    ("back\\slash", r"'back\\slash'"),
    ("line\nbreak\rtab\tbs\bff\f", r"'line\nbreak\rtab\tbs\bff\f'"),
    ("100% _sure_", "'100% _sure_'"),
])
def test_string_escaping(value: str, literal: str) -> None:
    assert soql_string(value) == literal


def test_like_escaping_keeps_wildcards_literal() -> None:
    assert soql_like_pattern("100% _sure_ O'B", "%{}%") == r"'%100\% \_sure\_ O\'B%'"
    assert where(rule("Company", "contains", "50%_off")) == r"Company LIKE '%50\%\_off%'"


LITERAL_PERCENT, LITERAL_UNDERSCORE = "\x01", "\x02"  # decoded LIKE escapes, told apart from wildcards


def tokens(soql: str) -> list[tuple[str, str]]:
    """A SOQL tokenizer following §4's string rules: ('string', decoded value) or ('word', text)."""
    escapes = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t",
               "b": "\b", "B": "\b", "f": "\f", "F": "\f", "%": LITERAL_PERCENT, "_": LITERAL_UNDERSCORE}
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(soql):
        char = soql[i]
        if char.isspace():
            i += 1
        elif char == "'":
            value, i = "", i + 1
            while soql[i] != "'":
                if soql[i] == "\\":
                    value += escapes[soql[i + 1]]  # KeyError = an escape SOQL would reject
                    i += 2
                else:
                    value += soql[i]
                    i += 1
            out.append(("string", value))
            i += 1
        elif char in "()":
            out.append(("word", char))
            i += 1
        else:
            start = i
            while i < len(soql) and not soql[i].isspace() and soql[i] not in "()'":
                i += 1
            out.append(("word", soql[start:i]))
    return out


INJECTIONS = ["x' OR Name != '", "x\\' OR Name != \\'", "' OR '1'='1", "a\\", "x') OR (Id != null", "\"; DELETE"]


@pytest.mark.parametrize("attack", INJECTIONS)
def test_injection_stays_one_literal(attack: str) -> None:
    assert tokens(where(rule("Email", "equals", attack))) == [("word", "Email"), ("word", "="), ("string", attack)]
    like = tokens(where(rule("Company", "starts_with", attack)))
    assert like[:2] == [("word", "Company"), ("word", "LIKE")] and len(like) == 3
    assert like[2] == ("string", attack.replace("%", LITERAL_PERCENT).replace("_", LITERAL_UNDERSCORE) + "%")
    query = build_window_soql("Lead", ["Id"], where(rule("Email", "equals", attack), rule("Email", "is_set")),
                              None, datetime(2024, 1, 1, tzinfo=timezone.utc))
    words = [text for kind, text in tokens(query) if kind == "word"]
    assert "OR" not in words and words.count("AND") == 2
    assert [text for kind, text in tokens(query) if kind == "string"] == [attack]


@pytest.mark.parametrize(("field", "operator", "value", "problem"), [
    ("Lead_Score__c", "equals", "abc", "a number field needs a number"),
    ("Lead_Score__c", "equals", True, "a number field needs a number"),
    ("Lead_Score__c", "equals", float("nan"), "a number field needs a finite number"),
    ("Lead_Score__c", "equals", "1; DELETE", "a number field needs a number"),
    ("HasOptedOutOfEmail", "equals", "yes", "a boolean field needs true or false"),
    ("Newsletter_Signup__c", "equals", "tomorrow", "a date field needs a date like 2024-01-02"),
    ("Newsletter_Signup__c", "equals", "2024-02-30", "a date field needs a date like 2024-01-02"),
    ("Newsletter_Signup__c", "equals", datetime(2024, 1, 1), "a date field needs a date (2024-01-02), not a datetime"),
    ("LastModifiedDate", "greater_than", "soon", "a datetime field needs a datetime like 2024-01-02T03:04:05Z"),
    ("Lead_Score__c", "contains", "5", "operator 'contains' needs a text field, but the field is double"),
    ("OwnerId", "starts_with", "005", "operator 'starts_with' needs a text field, but the field is reference"),
    ("Interests__c", "starts_with", "C", "operator 'starts_with' needs a text field, but the field is multipicklist"),
    ("HasOptedOutOfEmail", "greater_than", True, "operator 'greater_than' cannot compare a boolean field"),
    ("Interests__c", "less_than", "C", "operator 'less_than' cannot compare a multipicklist field"),
])
def test_values_that_do_not_fit_the_field(field: str, operator: str, value: object, problem: str) -> None:
    with pytest.raises(SyncRuleError) as error:
        where(rule("Email", "is_set"), rule(field, operator, value))
    assert str(error.value) == (
        f"integration 'acme': Lead.sync_rules.rules[1]: Lead.{field} {operator} {value!r}: {problem}")


def test_unknown_field_is_named() -> None:
    with pytest.raises(SyncRuleError) as error:
        where(rule("Score__c", "equals", 1), object_type="Contact")
    assert str(error.value) == (
        "integration 'acme': Contact.sync_rules.rules[0]: field 'Score__c' does not exist on Contact")


def test_unsupported_field_type_in_rules() -> None:
    with pytest.raises(SyncRuleError, match="fields of type address cannot be used in sync rules"):
        rules_to_where(SyncRules.model_validate({"rules": [rule("Address", "equals", "x")]}), {"Address": "address"},
                       integration_id="acme", object_type="Lead")


def test_select_fields_for_lead() -> None:
    custom = (FieldMapping(field="Company", property="company", type="string"),
              FieldMapping(field="email", property="work_email", type="string"),
              FieldMapping(field="Account.Name", property="account", type="string"))
    assert select_fields("Lead", effective_mappings("Lead", custom)) == (
        "Id", "IsDeleted", "LastModifiedDate", "Email", "FirstName", "LastName", "Phone", "HasOptedOutOfEmail",
        "ConvertedContactId", "IsConverted", "Company", "Account.Name")
    assert select_fields("Lead", default_mappings("Lead"), cursor_field="SystemModstamp")[:4] == (
        "Id", "IsDeleted", "LastModifiedDate", "SystemModstamp")


def test_select_fields_for_campaign_member_reads_opt_out_through_lead_and_contact() -> None:
    fields = select_fields("CampaignMember", default_mappings("CampaignMember"))
    assert fields == ("Id", "IsDeleted", "LastModifiedDate", "Email", "FirstName", "LastName", "Phone",
                      "Lead.HasOptedOutOfEmail", "Contact.HasOptedOutOfEmail", "LeadId", "ContactId")
    overridden = effective_mappings("CampaignMember", (
        FieldMapping(field="HasOptedOutOfEmail", property="unsubscribed", type="boolean"),))
    assert select_fields("CampaignMember", overridden)[-5:] == (
        "LeadId", "ContactId", "HasOptedOutOfEmail", "Lead.HasOptedOutOfEmail", "Contact.HasOptedOutOfEmail")


START = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
END = datetime(2024, 1, 2, 4, 0, tzinfo=timezone.utc)


def test_window_query() -> None:
    assert build_window_soql("Lead", ["Id", "Email"], "Email != null OR Status = 'Open'", START, END) == (
        "SELECT Id, Email FROM Lead WHERE LastModifiedDate >= 2024-01-02T03:04:05Z "
        "AND LastModifiedDate < 2024-01-02T04:00:00Z AND (Email != null OR Status = 'Open')")
    assert build_window_soql("Contact", ["Id"], None, None, END, cursor_field="SystemModstamp") == (
        "SELECT Id FROM Contact WHERE SystemModstamp < 2024-01-02T04:00:00Z")
    other_zone = timezone(timedelta(hours=2))
    assert build_window_soql("Lead", ["Id"], None, START.astimezone(other_zone), END.astimezone(other_zone)) == (
        "SELECT Id FROM Lead WHERE LastModifiedDate >= 2024-01-02T03:04:05Z AND LastModifiedDate < 2024-01-02T04:00:00Z")


def test_count_query() -> None:
    assert build_count_soql("CampaignMember", "Email != null", START, END) == (
        "SELECT COUNT() FROM CampaignMember WHERE LastModifiedDate >= 2024-01-02T03:04:05Z "
        "AND LastModifiedDate < 2024-01-02T04:00:00Z AND (Email != null)")
    assert build_count_soql("Lead", None, None, END) == "SELECT COUNT() FROM Lead WHERE LastModifiedDate < 2024-01-02T04:00:00Z"


def test_window_query_refuses_bad_bounds() -> None:
    with pytest.raises(ValueError, match="is not before its end"):
        build_window_soql("Lead", ["Id"], None, END, START)
    with pytest.raises(ValueError, match="has no time zone"):
        build_window_soql("Lead", ["Id"], None, None, datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="is not an sObject API name"):
        build_count_soql("Lead WHERE Id != null", None, None, END)
    with pytest.raises(ValueError, match="no fields to select"):
        build_window_soql("Lead", [], None, None, END)


def test_window_without_an_upper_bound_reads_everything_since_its_start() -> None:
    start = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    soql = build_window_soql("Lead", ["Id"], None, start, None)
    assert soql == "SELECT Id FROM Lead WHERE LastModifiedDate >= 2024-01-02T03:04:05Z"
    assert build_window_soql("Lead", ["Id"], None, None, None) == "SELECT Id FROM Lead"


def test_related_parents_changed_inside_the_window_also_select_a_record() -> None:
    start = datetime(2024, 1, 2, tzinfo=timezone.utc)
    end = datetime(2024, 1, 3, tzinfo=timezone.utc)
    soql = build_count_soql("CampaignMember", "Status = 'Sent'", start, end, related=("Lead", "Contact"))
    assert soql == (
        "SELECT COUNT() FROM CampaignMember WHERE (LastModifiedDate >= 2024-01-02T00:00:00Z"
        " OR (Lead.LastModifiedDate >= 2024-01-02T00:00:00Z AND Lead.LastModifiedDate < 2024-01-03T00:00:00Z)"
        " OR (Contact.LastModifiedDate >= 2024-01-02T00:00:00Z AND Contact.LastModifiedDate < 2024-01-03T00:00:00Z))"
        " AND LastModifiedDate < 2024-01-03T00:00:00Z AND (Status = 'Sent')")
