"""Campaign membership and Lead conversion decisions without I/O, and the convertLead request and result shapes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from salesforce_sync.config.models import WriteBackCampaignMembers, WriteBackConvert
from salesforce_sync.salesforce.convert import LeadConvert, _fault, _results
from salesforce_sync.sync.campaign_members import (
    PRECHECK_UNKNOWN_MEMBER_STATUS,
    CampaignPerson,
    member_status,
    plan_member,
)
from salesforce_sync.sync.lead_conversion import PRECHECK_CONVERTED_STATUS, at_stage, lead_domain, plan_conversion

MEMBERS = WriteBackCampaignMembers(campaign="Webinar", table="t", key="k", email_column="e", status_column="s",
                                   status_map={"clicked": "Responded"})
CONTACT = CampaignPerson("003A", None, ("003A", "00QA"), "email")
STATUSES = {"Sent", "Responded"}


def test_member_status_maps_engagement_and_leaves_empty_values_alone() -> None:
    assert member_status(MEMBERS, {"s": "clicked"}) == "Responded"
    assert member_status(MEMBERS, {"s": "Sent"}) == "Sent"
    assert member_status(MEMBERS, {"s": ""}) is None and member_status(MEMBERS, {"s": None}) is None


def test_a_membership_is_created_moved_left_or_refused() -> None:
    create = plan_member(MEMBERS, "k1", {"s": "clicked"}, "701A", CONTACT, None, STATUSES)
    assert (create.action, dict(create.values)) == ("create", {"CampaignId": "701A", "ContactId": "003A",
                                                              "Status": "Responded"})
    lead = CampaignPerson(None, "00QB", ("00QB",), "linked")
    assert dict(plan_member(MEMBERS, "k", {"s": None}, "701A", lead, None, STATUSES).values) == {
        "CampaignId": "701A", "LeadId": "00QB"}
    member = {"Id": "00vA", "Status": "Sent"}
    moved = plan_member(MEMBERS, "k1", {"s": "clicked"}, "701A", CONTACT, member, STATUSES)
    assert (moved.action, dict(moved.values)) == ("update", {"Id": "00vA", "Status": "Responded"})
    assert plan_member(MEMBERS, "k1", {"s": "Sent"}, "701A", CONTACT, member, STATUSES).action == "unchanged"
    assert plan_member(MEMBERS, "k1", {"s": "x"}, "701A", None, None, STATUSES).action == "skip"
    refused = plan_member(MEMBERS, "k1", {"s": "attended"}, "701A", CONTACT, member, STATUSES)
    assert (refused.action, refused.status_code, refused.fields) == ("reject", PRECHECK_UNKNOWN_MEMBER_STATUS,
                                                                    ("Status",))
    allowed = MEMBERS.model_copy(update={"create_missing_statuses": True})
    assert plan_member(allowed, "k1", {"s": "attended"}, "701A", CONTACT, member, STATUSES).action == "update"


CONVERT = WriteBackConvert(stage_column="stage", at_stage="customer")
LEAD = {"Id": "00QA", "Email": "Ana@Acme.test", "Website": None, "IsConverted": False}


def test_stage_and_domain() -> None:
    assert at_stage(CONVERT, {"stage": "customer"}) and not at_stage(CONVERT, {"stage": "mql"})
    assert lead_domain(LEAD) == "acme.test"
    assert lead_domain({**LEAD, "Website": "https://www.other.example/x"}) == "other.example"


def test_a_lead_converts_into_a_matched_contact_or_account_or_new_records() -> None:
    allowed = ("Closed - Converted",)
    contact = {"Id": "003A", "AccountId": "001C"}
    account = {"Id": "001D"}
    merged = plan_conversion(CONVERT, "k", LEAD, "Closed - Converted", allowed, {"ana@acme.test": contact},
                             {"acme.test": account})
    assert dict(merged.values) == {"leadId": "00QA", "convertedStatus": "Closed - Converted", "accountId": "001C",
                                   "contactId": "003A"}
    joined = plan_conversion(CONVERT, "k", LEAD, "Closed - Converted", allowed, {}, {"acme.test": account})
    assert joined.values["accountId"] == "001D" and "contactId" not in joined.values
    new = WriteBackConvert(stage_column="stage", at_stage="customer", account="new")
    assert "accountId" not in plan_conversion(new, "k", LEAD, "Closed - Converted", allowed, {}, {"acme.test": account}).values
    done = plan_conversion(CONVERT, "k", {**LEAD, "IsConverted": True, "ConvertedContactId": "003Z"},
                           "Closed - Converted", allowed, {}, {})
    assert (done.action, done.salesforce_id) == ("unchanged", "003Z")
    assert plan_conversion(CONVERT, "k", None, "Closed - Converted", allowed, {}, {}).action == "skip"
    bad = plan_conversion(CONVERT, "k", LEAD, "Won", allowed, {}, {})
    assert (bad.action, bad.status_code) == ("reject", PRECHECK_CONVERTED_STATUS)


def test_the_convert_lead_request_escapes_values_and_keeps_wsdl_order() -> None:
    xml = LeadConvert("00QA", "Won <big> & \"done\"", account_id="001A").xml()
    element = ET.fromstring(xml.replace("urn:", ""))
    assert [child.tag for child in element] == ["accountId", "convertedStatus", "doNotCreateOpportunity", "leadId",
                                                "overwriteLeadSource", "sendNotificationEmail"]
    assert element.find("convertedStatus").text == "Won <big> & \"done\""
    assert element.find("doNotCreateOpportunity").text == "true"


def test_convert_lead_results_and_faults_are_read_in_order() -> None:
    answer = (b'<Envelope xmlns="urn:partner.soap.sforce.com"><Body><convertLeadResponse>'
              b'<result><accountId>001A</accountId><contactId>003A</contactId><leadId>00QA</leadId>'
              b'<opportunityId xmlns:xsi="x" xsi:nil="true"/><success>true</success></result>'
              b'<result><accountId/><errors><fields>leadId</fields><message>cannot reference converted lead</message>'
              b'<statusCode>CANNOT_UPDATE_CONVERTED_LEAD</statusCode></errors><leadId>00QB</leadId>'
              b'<success>false</success></result></convertLeadResponse></Body></Envelope>')
    first, second, third = _results(answer, [LeadConvert("00QA", "S"), LeadConvert("00QB", "S"),
                                             LeadConvert("00QC", "S")])
    assert (first.account_id, first.contact_id, first.opportunity_id, first.error) == ("001A", "003A", None, None)
    assert (second.error.status_code, second.error.fields) == ("CANNOT_UPDATE_CONVERTED_LEAD", ("leadId",))
    assert third.error is not None and third.lead_id == "00QC"
    fault = (b'<e:Envelope xmlns:e="e"><e:Body><e:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode>'
             b'<faultstring>INVALID_SESSION_ID: bad</faultstring></e:Fault></e:Body></e:Envelope>')
    assert _fault(fault, 500).status_code == "INVALID_SESSION_ID"
    assert _fault(b'[{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}]', 503).status_code == "SERVER_UNAVAILABLE"
    assert _fault(answer, 200) is None
