"""The write-back's pure decisions: content hashes, website domains, value comparison, field modes, restricted
picklists and the match order of a row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from salesforce_sync.config.models import WriteBackField, WriteBackObjectConfig
from salesforce_sync.sync.write_back import (
    PRECHECK_RESTRICTED_PICKLIST,
    UNRECONCILED_CREATE,
    Candidates,
    field_changes,
    picklist_problems,
    plan_row,
    reconcile_order,
    restricted_picklists,
    row_hash,
    same_value,
    website_domain,
)


@pytest.mark.parametrize("website, domain, with_subdomains", [
    ("https://www.acme.com/about", "acme.com", "acme.com"),
    ("HTTP://Acme.COM:8080", "acme.com", "acme.com"),
    ("acme.com", "acme.com", "acme.com"),
    ("www.acme.com/", "acme.com", "acme.com"),
    ("https://eu.shop.acme.com/x?y=1", "acme.com", "eu.shop.acme.com"),
    ("https://www.acme.co.uk", "acme.co.uk", "acme.co.uk"),
    ("https://eu.acme.co.uk", "acme.co.uk", "eu.acme.co.uk"),
    ("localhost", None, None),
    ("", None, None),
    (None, None, None),
])
def test_website_domains(website: str | None, domain: str | None, with_subdomains: str | None) -> None:
    assert website_domain(website) == domain
    assert website_domain(website, keep_subdomains=True) == with_subdomains


def test_row_hash_covers_exactly_the_given_columns() -> None:
    row = {"k": "1", "name": "Acme", "score": Decimal("85.0"), "at": dt.date(2026, 1, 2), "other": "x"}
    same = {**row, "other": "changed"}
    assert row_hash(row, ["k", "name", "score", "at"]) == row_hash(same, ["k", "name", "score", "at"])
    assert row_hash(row, ["k", "name"]) != row_hash({**row, "name": "Acme Inc"}, ["k", "name"])
    assert row_hash({"k": "1", "v": None}, ["k", "v"]) != row_hash({"k": "1", "v": ""}, ["k", "v"])


@pytest.mark.parametrize("source, current, same", [
    (85, "85.0", True), (Decimal("1.50"), "1.5", True), (True, "true", True), (False, "true", False),
    ("Acme", "Acme", True), ("Acme", "acme", False), (None, "", True), (None, "x", False),
    (dt.date(2026, 1, 2), "2026-01-02", True), ("7", "x", False),
])
def test_same_value_compares_with_salesforce_text(source: object, current: str, same: bool) -> None:
    assert same_value(source, current) is same


def fields(*specs: dict) -> tuple[WriteBackField, ...]:
    return tuple(WriteBackField(**spec) for spec in specs)


def test_field_modes_against_the_current_record() -> None:
    mapped = fields({"column": "a", "field": "A", "mode": "fill"}, {"column": "b", "field": "B", "mode": "fill"},
                    {"column": "c", "field": "C"}, {"column": "d", "field": "D", "mode": "dont_sync"},
                    {"column": "e", "field": "E"}, {"column": "f", "field": "F", "send_nulls": True},
                    {"column": "g", "field": "G", "value_map": {"mql": "Working"}})
    row = {"a": "new", "b": "new", "c": "same", "d": "x", "e": None, "f": None, "g": "mql"}
    current = {"A": "held", "B": None, "C": "same", "D": "y", "E": "kept", "F": "cleared", "G": "Open"}
    assert field_changes(mapped, row, current) == {"B": "new", "F": None, "G": "Working"}
    assert field_changes(mapped, row, None) == {"A": "new", "B": "new", "C": "same", "G": "Working"}


def test_restricted_picklists_from_describe() -> None:
    describe = {"fields": [
        {"name": "Tier__c", "restrictedPicklist": True,
         "picklistValues": [{"value": "Gold", "active": True}, {"value": "Old", "active": False}]},
        {"name": "Industry", "restrictedPicklist": False, "picklistValues": [{"value": "Banking", "active": True}]}]}
    restricted = restricted_picklists(describe)
    assert restricted == {"Tier__c": ("Gold",)}
    assert picklist_problems({"Tier__c": "Gold", "Industry": "Anything"}, restricted) == []
    ((field, message),) = picklist_problems({"Tier__c": "Old"}, restricted)
    assert field == "Tier__c" and message.startswith("found before sending: Tier__c: 'Old'")


LEAD = WriteBackObjectConfig(table="t", key="k", email_column="email",
                             fields=fields({"column": "name", "field": "LastName"}))


def plan(row: dict, candidates: Candidates, settings: WriteBackObjectConfig = LEAD, **options: object):
    defaults = {"order": settings.match_order("Lead"), "contact_before_lead": True, "owner_ids": {},
                "default_owner_id": None, "restricted": {}, "create_intent": False}
    return plan_row("Lead", settings, row, candidates, **{**defaults, **options})


def test_match_order_link_before_email_and_contacts_before_leads() -> None:
    linked = {"Id": "00Q1", "LastName": "Old"}
    by_email = {"Id": "00Q2", "LastName": "Old"}
    candidates = Candidates(linked={"1": linked}, by_email={"a@x.test": by_email})
    row = {"k": "1", "email": "A@X.test", "name": "New"}
    assert (plan(row, candidates).action, plan(row, candidates).salesforce_id) == ("update", "00Q1")
    assert plan({**row, "k": "2"}, candidates).salesforce_id == "00Q2"
    assert plan({**row, "k": "2", "email": "b@x.test"}, candidates).action == "create"
    with_contact = Candidates(contacts_by_email={"a@x.test": {"Id": "0031"}}, by_email={"a@x.test": by_email})
    assert plan(row, with_contact).action == "skip"
    assert plan(row, with_contact, contact_before_lead=False).salesforce_id == "00Q2"
    converted = Candidates(linked={"1": {**linked, "IsConverted": "true"}})
    assert plan(row, converted).action == "skip"
    assert plan({**row, "name": "Old"}, candidates).action == "unchanged"


def test_external_id_upserts_and_claims_and_intents_reconcile() -> None:
    settings = LEAD.model_copy(update={"external_id_field": "Audience_Id__c"})
    row = {"k": "1", "email": "a@x.test", "name": "New"}
    created = plan(row, Candidates(), settings)
    assert (created.action, created.values) == ("upsert", {"LastName": "New", "Audience_Id__c": "1"})
    claimed = plan(row, Candidates(by_email={"a@x.test": {"Id": "00Q2", "Audience_Id__c": None}}), settings)
    assert claimed.action == "update" and claimed.values["Audience_Id__c"] == "1" and claimed.values["Id"] == "00Q2"
    assert reconcile_order(("linked",), LEAD, "Lead") == ("linked", "email")
    orphan = plan({"k": "1", "email": None, "name": "New"}, Candidates(), create_intent=True, order=("linked",))
    assert (orphan.action, orphan.status_code) == ("reject", UNRECONCILED_CREATE)


def test_a_value_outside_a_restricted_picklist_is_rejected_before_sending() -> None:
    settings = LEAD.model_copy(update={"fields": fields({"column": "name", "field": "LastName"},
                                                        {"column": "tier", "field": "Tier__c"})})
    refused = plan({"k": "1", "email": None, "name": "N", "tier": "Platinum"}, Candidates(), settings,
                   restricted={"Tier__c": ("Gold",)})
    assert (refused.action, refused.status_code, refused.fields) == ("reject", PRECHECK_RESTRICTED_PICKLIST,
                                                                     ("Tier__c",))


def test_owner_by_email_then_default() -> None:
    settings = LEAD.model_copy(update={"owner": {"column": "owner", "default_email": "d@x.test"}})
    settings = WriteBackObjectConfig.model_validate(settings.model_dump())
    options = {"owner_ids": {"o@x.test": "0051"}, "default_owner_id": "0052"}
    row = {"k": "1", "email": None, "name": "N", "owner": "O@x.test"}
    assert plan(row, Candidates(), settings, **options).values["OwnerId"] == "0051"
    assert plan({**row, "owner": "nobody@x.test"}, Candidates(), settings, **options).values["OwnerId"] == "0052"
    # fill: an existing record keeps its owner
    existing = Candidates(linked={"1": {"Id": "00Q1", "LastName": "M", "OwnerId": "0059"}})
    assert "OwnerId" not in plan(row, existing, settings, **options).values
