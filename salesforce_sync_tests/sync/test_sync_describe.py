"""Field paths against describes (the emulated org's real describe payloads) and mapping health checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from salesforce_sync.config import DEMO_CONFIG_PATH, FieldMapping, load_config
from salesforce_sync.emulator.schema import OrgSchema
from salesforce_sync.sync import (
    field_infos,
    field_types,
    label_from_api_name,
    natural_property_type,
    objects_to_describe,
    rules_to_where,
    salesforce_type_fits,
    select_fields,
    validate_mappings,
)

SCHEMA = OrgSchema()


def describe(name: str) -> dict[str, Any]:
    return SCHEMA.object(name).describe("59.0", SCHEMA.child_relationships(name))


def describes_for(object_type: str, paths: list[str]) -> dict[str, dict[str, Any]]:
    """Describe objects the way a caller would: ask which are needed until none are."""
    known: dict[str, dict[str, Any]] = {}
    needed = {object_type}
    while needed:
        for name in needed:
            known[name] = describe(name) if SCHEMA.object(name) else {}
        needed = objects_to_describe(object_type, paths, known)
    return known


def test_demo_config_fits_the_emulated_org() -> None:
    demo = load_config(DEMO_CONFIG_PATH).integration("demo_org")
    for object_type in demo.object_types:
        mappings = demo.mappings(object_type)
        rule_paths = [rule.field for rule in demo.objects[object_type].sync_rules.rules]
        paths = list(select_fields(object_type, mappings)) + rule_paths
        describes = describes_for(object_type, paths)
        assert validate_mappings(object_type, mappings, describes) == [], object_type
        assert set(field_infos(object_type, paths, describes)) == set(paths), object_type
        where = rules_to_where(demo.objects[object_type].sync_rules, field_types(object_type, rule_paths, describes),
                               integration_id=demo.id, object_type=object_type)
        assert (where is not None) == bool(rule_paths), object_type


def test_relationship_paths_need_the_related_describe() -> None:
    only_contact = {"Contact": describe("Contact")}
    assert objects_to_describe("Contact", ["Email", "Account.Name"], only_contact) == {"Account"}
    assert field_infos("Contact", ["Account.Name"], only_contact) == {}
    with_account = {**only_contact, "Account": describe("Account")}
    assert objects_to_describe("Contact", ["Email", "Account.Name"], with_account) == set()
    info = field_infos("Contact", ["account.name"], with_account)["account.name"]
    assert (info.path, info.type, info.label) == ("Account.Name", "string", "Account Name")


def test_polymorphic_relationship_resolves_on_a_described_target() -> None:
    describes = {"Lead": describe("Lead"), "Group": {}, "User": describe("User")}
    assert objects_to_describe("Lead", ["Owner.Email"], {"Lead": describe("Lead")}) == {"Group", "User"}
    assert field_types("Lead", ["Owner.Email"], describes) == {"Owner.Email": "email"}


def test_campaign_member_opt_out_paths_are_booleans() -> None:
    describes = describes_for("CampaignMember", ["Lead.HasOptedOutOfEmail", "Contact.HasOptedOutOfEmail"])
    assert field_types("CampaignMember", ["Lead.HasOptedOutOfEmail", "Contact.HasOptedOutOfEmail"], describes) == {
        "Lead.HasOptedOutOfEmail": "boolean", "Contact.HasOptedOutOfEmail": "boolean"}


def renamed_lead_describe(old: str, new: str) -> dict[str, Any]:
    lead = copy.deepcopy(describe("Lead"))
    for field in lead["fields"]:
        if field["name"] == old:
            field["name"] = new
    return lead


def test_renamed_field_is_suggested_by_its_label() -> None:
    describes = {"Lead": renamed_lead_describe("Lead_Score__c", "Score__c")}
    problems = validate_mappings("Lead", [FieldMapping(field="Lead_Score__c", property="lead_score", type="number")],
                                 describes)
    assert [(p.field, p.property, p.suggestion) for p in problems] == [("Lead_Score__c", "lead_score", "Score__c")]
    assert str(problems[0]) == ("Lead.Lead_Score__c (property 'lead_score') does not exist in the org; "
                                "Lead.Score__c has the same label 'Lead Score', probably its new name: map 'Score__c' instead")


def test_renamed_field_found_through_a_remembered_label() -> None:
    describes = {"Lead": renamed_lead_describe("Interests__c", "Topics__c")}
    mapping = FieldMapping(field="Hobbies__c", property="interests", type="array")
    assert validate_mappings("Lead", [mapping], describes)[0].suggestion is None
    problems = validate_mappings("Lead", [mapping], describes, previous_labels={"Hobbies__c": "Interests"})
    assert problems[0].suggestion == "Topics__c"


def test_missing_field_without_a_look_alike() -> None:
    problems = validate_mappings("Contact", [FieldMapping(field="Account.Nickname__c", property="nick", type="string")],
                                 describes_for("Contact", ["Account.Name"]))
    assert [(str(p), p.suggestion) for p in problems] == [
        ("Contact.Account.Nickname__c (property 'nick') does not exist in the org", None)]


def test_undescribed_related_object_is_said() -> None:
    problems = validate_mappings("Contact", [FieldMapping(field="Account.Name", property="company", type="string")],
                                 {"Contact": describe("Contact")})
    assert str(problems[0]).endswith("or its object is not described: Account")


@pytest.mark.parametrize(("mapping", "message"), [
    (FieldMapping(field="Company", property="employees", type="number"),
     "Lead.Company is string, which does not fit the number property 'employees' (it fits string)"),
    (FieldMapping(field="Interests__c", property="interests", type="boolean"),
     "Lead.Interests__c is multipicklist, which does not fit the boolean property 'interests' (it fits array or string)"),
    (FieldMapping(field="Address", property="address", type="string"),
     "Lead.Address is address, which does not fit the string property 'address' (this field type cannot be synced)"),
    (FieldMapping(field="DoNotCall", property="unsubscribed", type="boolean"), None),
    (FieldMapping(field="Email", property="unsubscribed", type="boolean"),
     "the opt-out property 'unsubscribed' needs a boolean field, but Lead.Email is email"),
])
def test_type_fit_problems(mapping: FieldMapping, message: str | None) -> None:
    problems = validate_mappings("Lead", [mapping], {"Lead": describe("Lead")})
    assert [str(p) for p in problems] == ([] if message is None else [message])


@pytest.mark.parametrize(("salesforce_type", "natural"), [
    ("string", "string"), ("picklist", "string"), ("email", "string"), ("phone", "string"), ("url", "string"),
    ("textarea", "string"), ("combobox", "string"), ("id", "string"), ("reference", "string"),
    ("int", "number"), ("double", "number"), ("currency", "number"), ("percent", "number"),
    ("boolean", "boolean"), ("date", "date"), ("datetime", "date"), ("multipicklist", "array"),
    ("address", None), ("base64", None),
])
def test_natural_property_types(salesforce_type: str, natural: str | None) -> None:
    assert natural_property_type(salesforce_type) == natural


def test_type_fits() -> None:
    assert salesforce_type_fits("currency", "number") and salesforce_type_fits("currency", "string")
    assert salesforce_type_fits("datetime", "date") and salesforce_type_fits("multipicklist", "array")
    assert not salesforce_type_fits("string", "number") and not salesforce_type_fits("boolean", "date")
    assert not salesforce_type_fits("picklist", "array") and not salesforce_type_fits("address", "string")


def test_label_from_api_name() -> None:
    assert label_from_api_name("Lead_Score__c") == "Lead Score"
    assert label_from_api_name("NumberOfEmployees") == "Number Of Employees"
