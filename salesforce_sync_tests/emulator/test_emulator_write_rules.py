"""Single-record writes through simple-salesforce refused as a real org refuses them: the status code, the REST
error body (errorCode, label-prefixed message, fields with API names) and nothing committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from salesforce_sync.emulator import EmulatedOrg

ALLOW_SAVE = {"Sforce-Duplicate-Rule-Header": "allowSave=true; includeRecordDetails=false"}


@pytest.fixture(scope="module")
def org(org: EmulatedOrg) -> EmulatedOrg:
    """The module's org (conftest) with a restricted and an unrestricted custom picklist on Lead."""
    org.control.add_field("Lead", "Segment__c", "picklist", "Segment", values=("SMB", "Enterprise"), restricted=True)
    org.control.add_field("Lead", "Channel__c", "picklist", "Channel", values=("Web", "Event"))
    return org


@pytest.fixture
def sf(org: EmulatedOrg) -> Iterator[Salesforce]:
    yield org.simple_salesforce()
    org.control.update_settings(duplicate_rules={"Lead": "Alert", "Contact": "Alert", "Account": "Alert"})


def refused(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The single error entry of a write simple-salesforce reports as a malformed request (HTTP 400)."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 400
    (entry,) = caught.value.content
    return entry


def field_label(sf: Salesforce, object_name: str, field: str) -> str:
    return next(f["label"] for f in getattr(sf, object_name).describe()["fields"] if f["name"] == field)


def count(sf: Salesforce, soql_where: str, object_name: str = "Lead") -> int:
    return sf.query(f"SELECT COUNT() FROM {object_name} WHERE {soql_where}")["totalSize"]


def active_user(sf: Salesforce, skip: int = 0) -> str:
    users = sf.query("SELECT Id FROM User WHERE IsActive = true AND Alias != 'integ' ORDER BY Id")["records"]
    return users[skip]["Id"]


# ---- field values --------------------------------------------------------------------------------------------

def test_required_fields_are_listed_by_api_name(sf: Salesforce) -> None:
    assert refused(sf.Lead.create, {"FirstName": "Nameless", "Email": "nameless@rules.test"}) == {
        "message": "Required fields are missing: [LastName, Company]", "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["LastName", "Company"]}
    assert refused(sf.Opportunity.create, {"Name": "Deal"})["fields"] == ["StageName", "CloseDate"]
    lead_id = sf.Lead.create({"LastName": "Kept", "Company": "K"})["id"]
    assert refused(sf.Lead.update, lead_id, {"Company": None})["fields"] == ["Company"]
    assert sf.Lead.get(lead_id)["Company"] == "K"
    assert count(sf, "Email = 'nameless@rules.test'") == 0


def test_restricted_picklists_refuse_unknown_values_and_unrestricted_ones_store_them(sf: Salesforce) -> None:
    label = field_label(sf, "Lead", "Segment__c")
    assert refused(sf.Lead.create, {"LastName": "P", "Company": "C", "Segment__c": "Galactic"}) == {
        "message": f"{label}: bad value for restricted picklist field: Galactic",
        "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Segment__c"]}
    created = sf.Lead.create({"LastName": "P", "Company": "C", "Segment__c": "SMB", "Channel__c": "Carrier pigeon"})
    assert (sf.Lead.get(created["id"])["Segment__c"], sf.Lead.get(created["id"])["Channel__c"]) == \
        ("SMB", "Carrier pigeon")


def test_email_and_length_are_checked_with_label_prefixed_messages(sf: Salesforce) -> None:
    assert refused(sf.Lead.create, {"LastName": "E", "Company": "C", "Email": "not an address"}) == {
        "message": f"{field_label(sf, 'Lead', 'Email')}: invalid email address: not an address",
        "errorCode": "INVALID_EMAIL_ADDRESS", "fields": ["Email"]}
    too_long = refused(sf.Lead.create, {"LastName": "L" * 81, "Company": "C"})
    assert (too_long["errorCode"], too_long["fields"]) == ("STRING_TOO_LONG", ["LastName"])
    assert too_long["message"].startswith(f"{field_label(sf, 'Lead', 'LastName')}: data value too large: LLLL")
    assert too_long["message"].endswith("(max length=80)")
    assert count(sf, "LastName LIKE 'LLLLLLLL%'") == 0


def test_read_only_fields_are_refused_all_at_once(sf: Salesforce) -> None:
    entry = refused(sf.Lead.create, {"LastName": "R", "Company": "C", "ConvertedDate": "2031-01-01",
                                     "ConvertedAccountId": "001000000000001AAA"})
    assert entry["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert entry["fields"] == ["ConvertedDate", "ConvertedAccountId"]
    assert entry["message"].startswith("Unable to create/update fields: ConvertedDate, ConvertedAccountId. Please check")
    lead_id = sf.Lead.create({"LastName": "R", "Company": "C"})["id"]
    assert refused(sf.Lead.update, lead_id, {"IsConverted": True})["fields"] == ["IsConverted"]


# ---- references -----------------------------------------------------------------------------------------------

def test_references_malformed_of_the_wrong_type_or_missing(sf: Salesforce) -> None:
    account_id = sf.Account.create({"Name": "Referenced Account Ltd"})["id"]
    tasks_before = count(sf, "Id != null", "Task")
    assert refused(sf.Task.create, {"Subject": "Call", "WhoId": "not-an-id"}) == {
        "message": f"{field_label(sf, 'Task', 'WhoId')}: id value of incorrect type: not-an-id",
        "errorCode": "MALFORMED_ID", "fields": ["WhoId"]}
    assert refused(sf.Task.create, {"Subject": "Call", "WhoId": account_id}) == {
        "message": f"{field_label(sf, 'Task', 'WhoId')}: id value of incorrect type: {account_id}",
        "errorCode": "FIELD_INTEGRITY_EXCEPTION", "fields": ["WhoId"]}
    missing_contact = "003" + account_id[3:]
    assert refused(sf.Task.create, {"Subject": "Call", "WhoId": missing_contact}) == {
        "message": "invalid cross reference id", "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": ["WhoId"]}
    assert count(sf, "Id != null", "Task") == tasks_before


def test_a_task_about_a_lead_cannot_also_be_related_to_a_record(sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Who", "Company": "Lead Co"})["id"]
    account_id = sf.Account.create({"Name": "What Account Inc"})["id"]
    before = count(sf, f"WhoId = '{lead_id}'", "Task")
    entry = refused(sf.Task.create, {"Subject": "Email", "WhoId": lead_id, "WhatId": account_id})
    assert (entry["errorCode"], entry["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["WhatId"])
    assert entry["message"].startswith(field_label(sf, "Task", "WhatId") + ": ")
    assert count(sf, f"WhoId = '{lead_id}'", "Task") == before
    task_id = sf.Task.create({"Subject": "Email", "WhoId": lead_id})["id"]
    assert refused(sf.Task.update, task_id, {"WhatId": account_id})["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    contact_id = sf.Contact.create({"LastName": "Person", "AccountId": account_id})["id"]
    assert sf.Task.create({"Subject": "Email", "WhoId": contact_id, "WhatId": account_id})["success"]


def test_an_inactive_owner_is_refused(org: EmulatedOrg, sf: Salesforce) -> None:
    owner = active_user(sf)
    assert sf.Lead.create({"LastName": "Owned", "Company": "O", "OwnerId": owner})["success"]
    org.control.deactivate_user(owner)
    try:
        assert refused(sf.Lead.create, {"LastName": "Orphaned", "Company": "O", "OwnerId": owner}) == {
            "message": f"operation performed with inactive user [{owner}] as owner of lead",
            "errorCode": "INACTIVE_OWNER_OR_USER"}
        assert count(sf, "LastName = 'Orphaned'") == 0
    finally:
        org.control.activate_user(owner)
    assert sf.Lead.create({"LastName": "Orphaned", "Company": "O", "OwnerId": owner})["success"]


# ---- duplicates, unique values, deleted records and locks ------------------------------------------------------

def test_duplicate_lead_email_is_detected_in_the_real_shape(sf: Salesforce) -> None:
    first = sf.Lead.create({"LastName": "Original", "Company": "D", "Email": "twin@rules.test"})["id"]
    entry = refused(sf.Lead.create, {"LastName": "Copy", "Company": "D", "Email": "TWIN@rules.test"})
    assert entry["errorCode"] == "DUPLICATES_DETECTED"
    result = entry["duplicateResut"]
    assert (result["duplicateRule"], result["duplicateRuleEntityType"], result["allowSave"]) == \
        ("Standard_Lead_Duplicate_Rule", "Lead", True)
    (match,) = result["matchResults"]
    assert (match["entityType"], match["size"], match["success"]) == ("Lead", 1, True)
    assert [r["record"]["Id"] for r in match["matchRecords"]] == [first]
    assert match["matchRecords"][0]["record"]["attributes"] == {
        "type": "Lead", "url": f"/services/data/v{sf.sf_version}/sobjects/Lead/{first}"}
    assert count(sf, "Email = 'twin@rules.test'") == 1

    copy = sf.Lead.create({"LastName": "Copy", "Company": "D", "Email": "twin@rules.test"}, headers=ALLOW_SAVE)
    assert copy["success"] and count(sf, "Email = 'twin@rules.test'") == 2
    other = sf.Lead.create({"LastName": "Other", "Company": "D", "Email": "other@rules.test"})["id"]
    assert refused(sf.Lead.update, other, {"Email": "twin@rules.test"})["errorCode"] == "DUPLICATES_DETECTED"
    assert sf.Lead.update(other, {"Title": "Unrelated edit"}) == 204


def test_block_rules_ignore_allow_save_and_rules_can_be_switched_off(org: EmulatedOrg, sf: Salesforce) -> None:
    sf.Contact.create({"LastName": "Block", "Email": "block@rules.test"})
    org.control.set_duplicate_rules({"Contact": "Block"})
    entry = refused(sf.Contact.create, {"LastName": "Block 2", "Email": "block@rules.test"}, headers=ALLOW_SAVE)
    assert (entry["errorCode"], entry["duplicateResut"]["allowSave"]) == ("DUPLICATES_DETECTED", False)
    org.control.set_duplicate_rules({})
    assert sf.Contact.create({"LastName": "Block 2", "Email": "block@rules.test"})["success"]
    assert count(sf, "Email = 'block@rules.test'", "Contact") == 2


def test_accounts_match_by_normalised_website_domain_or_name(sf: Salesforce) -> None:
    first = sf.Account.create({"Name": "Domain Holder", "Website": "https://www.Matching-Domain.test/about"})["id"]
    by_domain = refused(sf.Account.create, {"Name": "Another Name", "Website": "matching-domain.test"})
    assert by_domain["duplicateResut"]["matchResults"][0]["matchRecords"][0]["record"]["Id"] == first
    by_name = refused(sf.Account.create, {"Name": "domain holder"})
    assert by_name["duplicateResut"]["duplicateRule"] == "Standard_Account_Duplicate_Rule"
    assert sf.Account.create({"Name": "Elsewhere", "Website": "http://other-domain.test"})["success"]


def test_unique_external_ids_and_campaign_memberships(sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Member", "Company": "M", "External_Key__c": "RULES-1"})["id"]
    entry = refused(sf.Lead.create, {"LastName": "Clash", "Company": "M", "External_Key__c": "rules-1"})
    assert entry == {"message": f"duplicate value found: External_Key__c duplicates value on record with id: {lead_id}",
                     "errorCode": "DUPLICATE_VALUE", "fields": ["External_Key__c"]}
    campaign_id = sf.Campaign.create({"Name": "Rules Campaign"})["id"]
    assert sf.CampaignMember.create({"CampaignId": campaign_id, "LeadId": lead_id})["success"]
    assert refused(sf.CampaignMember.create, {"CampaignId": campaign_id, "LeadId": lead_id}) == {
        "message": "Already a campaign member.", "errorCode": "DUPLICATE_VALUE"}
    assert refused(sf.CampaignMember.create, {"CampaignId": campaign_id})["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert count(sf, f"CampaignId = '{campaign_id}'", "CampaignMember") == 1


def test_writes_to_a_deleted_record_say_entity_is_deleted(sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Gone", "Company": "G"})["id"]
    sf.Lead.delete(lead_id)
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.update(lead_id, {"Title": "Too late"})
    assert caught.value.content == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED"}]


def test_locked_rows_fail_the_next_writes_then_clear(org: EmulatedOrg, sf: Salesforce) -> None:
    lead_id = sf.Lead.create({"LastName": "Locked", "Company": "L"})["id"]
    org.control.lock_rows("Lead", count=2)
    for _ in range(2):
        entry = refused(sf.Lead.update, lead_id, {"Title": "Blocked"})
        assert entry == {"message": f"unable to obtain exclusive access to this record or 1 records: {lead_id}",
                         "errorCode": "UNABLE_TO_LOCK_ROW"}
    assert sf.Account.create({"Name": "Unlocked Object"})["success"]
    assert sf.Lead.update(lead_id, {"Title": "Retried"}) == 204
    assert sf.Lead.get(lead_id)["Title"] == "Retried"


def test_an_event_needs_a_duration_unless_all_day_and_obeys_the_who_what_rule(sf: Salesforce) -> None:
    contact_id = sf.Contact.create({"LastName": "Visited"})["id"]
    lead_id = sf.Lead.create({"LastName": "Met", "Company": "Meeting Co"})["id"]
    account_id = sf.Account.create({"Name": "Venue Holdings"})["id"]
    start = "2031-06-03T09:00:00.000+0000"
    missing = refused(sf.Event.create, {"Subject": "Visit", "WhoId": contact_id, "ActivityDateTime": start})
    assert (missing["errorCode"], missing["fields"]) == ("REQUIRED_FIELD_MISSING", ["DurationInMinutes"])
    assert count(sf, f"WhoId = '{contact_id}'", "Event") == 0
    by_duration = sf.Event.create({"Subject": "Visit", "WhoId": contact_id, "WhatId": account_id,
                                   "ActivityDateTime": start, "DurationInMinutes": 45})["id"]
    by_end = sf.Event.create({"Subject": "Call", "WhoId": contact_id, "StartDateTime": start,
                              "EndDateTime": "2031-06-03T10:00:00.000+0000"})["id"]
    all_day = sf.Event.create({"Subject": "Trade fair", "WhoId": contact_id, "IsAllDayEvent": True,
                               "ActivityDate": "2031-06-04"})["id"]
    assert count(sf, f"WhoId = '{contact_id}'", "Event") == 3
    assert sf.Event.get(by_duration)["AccountId"] == account_id  # derived from WhatId, as Salesforce does
    assert refused(sf.Event.update, by_end, {"EndDateTime": None})["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Event.get(all_day)["IsAllDayEvent"] is True
    about_lead = refused(sf.Event.create, {"Subject": "Visit", "WhoId": lead_id, "WhatId": account_id,
                                           "ActivityDateTime": start, "DurationInMinutes": 30})
    assert (about_lead["errorCode"], about_lead["fields"]) == ("FIELD_INTEGRITY_EXCEPTION", ["WhatId"])


def test_a_campaign_member_copies_its_person_and_follows_later_changes(sf: Salesforce) -> None:
    campaign_id = sf.Campaign.create({"Name": "Mirror Campaign"})["id"]
    contact_id = sf.Contact.create({"LastName": "Copied", "Email": "copied@mirror.test", "MailingCity": "Lille",
                                    "MobilePhone": "555-0142"})["id"]
    lead_id = sf.Lead.create({"LastName": "Led", "Company": "Mirror Leads", "City": "Brest", "Fax": "555-0100"})["id"]
    by_contact = sf.CampaignMember.create({"CampaignId": campaign_id, "ContactId": contact_id})["id"]
    by_lead = sf.CampaignMember.create({"CampaignId": campaign_id, "LeadId": lead_id})["id"]
    member = sf.CampaignMember.get(by_contact)
    assert (member["City"], member["Email"], member["MobilePhone"], member["Type"]) == \
        ("Lille", "copied@mirror.test", "555-0142", "Contact")
    lead_member = sf.CampaignMember.get(by_lead)
    assert (lead_member["City"], lead_member["Fax"], lead_member["CompanyOrAccount"]) == \
        ("Brest", "555-0100", "Mirror Leads")
    sf.Contact.update(contact_id, {"MailingCity": "Roubaix", "HasOptedOutOfEmail": True})
    moved = sf.CampaignMember.get(by_contact)
    assert (moved["City"], moved["HasOptedOutOfEmail"]) == ("Roubaix", True)
