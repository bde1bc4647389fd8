"""Lead conversion through SOAP `convertLead`, sent as a raw envelope over the TLS session simple-salesforce
uses (it has no convertLead of its own): new or existing Account and Contact, an optional Opportunity, only
empty target fields filled, per-lead results in order, and the converted Lead read-only afterwards."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_sync.emulator import EmulatedOrg
from salesforce_sync_tests.emulator.pubsub_support import COUNTS, SETTINGS, collect, pubsub_client

PARTNER = "urn:partner.soap.sforce.com"
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
TODAY = dt.datetime(2031, 6, 3, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def org(org: EmulatedOrg) -> EmulatedOrg:
    """The module's org (conftest), its clock held on one day so ConvertedDate is known."""
    org.control.set_clock(TODAY, freeze=True)
    return org


def envelope(session_id: str, converts: list[list[tuple[str, str]]]) -> str:
    """A convertLead request; each convert is its (element, value) pairs in the order to send them."""
    body = "".join("<urn:leadConverts>" + "".join(f"<urn:{name}>{escape(value)}</urn:{name}>" for name, value in c)
                   + "</urn:leadConverts>" for c in converts)
    return ('<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns:urn="{PARTNER}"><soapenv:Header><urn:SessionHeader><urn:sessionId>{session_id}</urn:sessionId>'
            f"</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:convertLead>{body}</urn:convertLead>"
            "</soapenv:Body></soapenv:Envelope>")


def post_soap(sf: Salesforce, text: str) -> Any:
    return sf.session.post(f"https://{sf.sf_instance}/services/Soap/u/{sf.sf_version}", data=text.encode(),
                           headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "convertLead"},
                           timeout=30)


def convert(sf: Salesforce, *converts: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The LeadConvertResults, in order, as dicts (nil ids as None, errors as a list of dicts)."""
    response = post_soap(sf, envelope(sf.session_id, list(converts)))
    assert response.status_code == 200, response.text
    results = []
    for result in ET.fromstring(response.content).iter(f"{{{PARTNER}}}result"):
        out: dict[str, Any] = {"errors": []}
        for child in result:
            name = child.tag.split("}")[1]
            if name == "errors":
                out["errors"].append({
                    "statusCode": child.findtext(f"{{{PARTNER}}}statusCode"),
                    "message": child.findtext(f"{{{PARTNER}}}message"),
                    "fields": [f.text for f in child.findall(f"{{{PARTNER}}}fields")]})
            else:
                out[name] = None if child.get(NIL) == "true" else child.text
        results.append(out)
    return results


def new_lead(sf: Salesforce, **values: Any) -> str:
    slug = values.get("LastName", "cora").lower().replace(" ", ".")
    base = {"LastName": "Convertible", "Company": "Convert Co", "FirstName": "Cora", "Title": "CTO",
            "Email": f"{slug}@convert.test", "Phone": "555-0101", "City": "Nantes", "Website": f"{slug}.convert.test",
            "LeadSource": "Web"}
    return sf.Lead.create({**base, **values})["id"]


def basic(lead_id: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    return [("convertedStatus", "Closed - Converted"), ("doNotCreateOpportunity", "false"), ("leadId", lead_id),
            *extra, ("overwriteLeadSource", "false"), ("sendNotificationEmail", "false")]


def test_conversion_creates_account_contact_and_opportunity(org: EmulatedOrg, sf: Salesforce) -> None:
    org.control.reset_api_calls()
    lead_id = new_lead(sf, LastName="Fresh Start", Company="Fresh Start Ltd")
    (result,) = convert(sf, basic(lead_id))
    assert result["success"] == "true" and result["errors"] == []
    assert (result["leadId"], result["relatedPersonAccountId"]) == (lead_id, None)
    account = sf.Account.get(result["accountId"])
    assert (account["Name"], account["Website"], account["BillingCity"]) == \
        ("Fresh Start Ltd", "fresh.start.convert.test", "Nantes")
    contact = sf.Contact.get(result["contactId"])
    assert (contact["FirstName"], contact["LastName"], contact["Email"], contact["AccountId"], contact["MailingCity"]) \
        == ("Cora", "Fresh Start", "fresh.start@convert.test", result["accountId"], "Nantes")
    opportunity = sf.Opportunity.get(result["opportunityId"])
    assert (opportunity["Name"], opportunity["AccountId"], opportunity["LeadSource"]) == \
        ("Fresh Start Ltd", result["accountId"], "Web")
    lead = sf.Lead.get(lead_id)
    assert (lead["IsConverted"], lead["Status"], lead["ConvertedDate"]) == (True, "Closed - Converted", "2031-06-03")
    assert (lead["ConvertedAccountId"], lead["ConvertedContactId"], lead["ConvertedOpportunityId"]) == \
        (result["accountId"], result["contactId"], result["opportunityId"])
    assert org.control.api_calls()["by_endpoint"]["soap.convertLead"] == 1


def test_a_converted_lead_is_read_only(sf: Salesforce) -> None:
    lead_id = new_lead(sf, LastName="Read Only", Company="Frozen Inc")
    (result,) = convert(sf, basic(lead_id))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(lead_id, {"Title": "Changed"})
    assert caught.value.content == [{"message": "cannot reference converted lead",
                                     "errorCode": "CANNOT_UPDATE_CONVERTED_LEAD"}]
    campaign_id = sf.Campaign.create({"Name": "After Conversion"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as joining:
        sf.CampaignMember.create({"CampaignId": campaign_id, "LeadId": lead_id})
    assert joining.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    (again,) = convert(sf, basic(lead_id))
    assert again["success"] == "false" and again["errors"][0]["statusCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert sf.query(f"SELECT COUNT() FROM Opportunity WHERE AccountId = '{result['accountId']}'")["totalSize"] == 1


def test_merging_into_existing_records_fills_only_empty_fields(sf: Salesforce) -> None:
    account_id = sf.Account.create({"Name": "Existing Holdings", "Website": "existing-holdings.test"})["id"]
    contact_id = sf.Contact.create({"LastName": "Existing Person", "AccountId": account_id, "Title": "Founder"})["id"]
    lead_id = new_lead(sf, LastName="Merging", Company="Lead Company Name", Title="Intern", Phone="555-0199")
    (result,) = convert(sf, [("accountId", account_id), ("contactId", contact_id),
                             ("convertedStatus", "Closed - Converted"), ("doNotCreateOpportunity", "true"),
                             ("leadId", lead_id)])
    assert (result["accountId"], result["contactId"], result["opportunityId"]) == (account_id, contact_id, None)
    account = sf.Account.get(account_id)
    assert (account["Name"], account["Website"], account["Phone"]) == \
        ("Existing Holdings", "existing-holdings.test", "555-0199")
    contact = sf.Contact.get(contact_id)
    assert (contact["LastName"], contact["Title"], contact["Email"]) == \
        ("Existing Person", "Founder", "merging@convert.test")
    assert sf.query(f"SELECT COUNT() FROM Opportunity WHERE AccountId = '{account_id}'")["totalSize"] == 0


def test_results_follow_the_input_order_and_failures_commit_nothing(sf: Salesforce) -> None:
    good = new_lead(sf, LastName="Good Convert", Company="Good Co")
    bad_status = new_lead(sf, LastName="Bad Status", Company="Bad Co")
    orphan_contact = new_lead(sf, LastName="Orphan Contact", Company="Orphan Co")
    some_contact = sf.Contact.create({"LastName": "Somebody"})["id"]
    accounts_before = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    results = convert(sf, basic(good, ("opportunityName", "Good Co - 10 seats")),
                      [("convertedStatus", "Open - Not Contacted"), ("doNotCreateOpportunity", "false"),
                       ("leadId", bad_status)],
                      [("contactId", some_contact), ("convertedStatus", "Closed - Converted"),
                       ("doNotCreateOpportunity", "false"), ("leadId", orphan_contact)])
    assert [r["success"] for r in results] == ["true", "false", "false"]
    assert [r["leadId"] for r in results] == [good, bad_status, orphan_contact]
    assert results[1]["errors"] == [{"statusCode": "INVALID_STATUS",
                                     "message": "invalid convertedStatus: Open - Not Contacted",
                                     "fields": ["convertedStatus"]}]
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[2]["errors"][0]["fields"] == ["accountId"]
    assert sf.Opportunity.get(results[0]["opportunityId"])["Name"] == "Good Co - 10 seats"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == accounts_before + 1
    assert [sf.Lead.get(i)["IsConverted"] for i in (good, bad_status, orphan_contact)] == [True, False, False]


def test_elements_out_of_wsdl_order_are_ignored(sf: Salesforce) -> None:
    lead_id = new_lead(sf, LastName="Out Of Order", Company="Sequence Ltd")
    (result,) = convert(sf, [("convertedStatus", "Closed - Converted"), ("leadId", lead_id),
                             ("doNotCreateOpportunity", "true")])  # after leadId: ignored, so one is created
    assert result["success"] == "true" and result["opportunityId"] is not None


def test_a_duplicate_contact_fails_the_conversion_unless_bypassed(sf: Salesforce) -> None:
    sf.Contact.create({"LastName": "Already Here", "Email": "twin@convert-dupe.test"})
    lead_id = new_lead(sf, LastName="Twin", Company="Twin Co", Email="twin@convert-dupe.test")
    (refused,) = convert(sf, basic(lead_id))
    assert refused["errors"][0]["statusCode"] == "DUPLICATES_DETECTED"
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Twin Co'")["totalSize"] == 0
    (result,) = convert(sf, [("bypassContactDedupeCheck", "true"), *basic(lead_id)])
    assert result["success"] == "true"


def test_an_invalid_session_or_unknown_operation_is_a_soap_fault(sf: Salesforce) -> None:
    response = post_soap(sf, envelope("00Dbogus!session", [basic(new_lead(sf, LastName="Faulted"))]))
    assert response.status_code == 500
    fault = ET.fromstring(response.content).find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault.findtext("faultcode") == "sf:INVALID_SESSION_ID"
    unknown = post_soap(sf, envelope(sf.session_id, []).replace("convertLead>", "mergeEverything>"))
    assert unknown.status_code == 500
    assert b"No operation available for request {urn:partner.soap.sforce.com}mergeEverything" in unknown.content


def test_a_conversion_is_one_transaction_of_change_events(emulated_org_factory: Any) -> None:
    """Lead UPDATE plus Account, Contact and Opportunity CREATE events sharing one transactionKey, in sequence,
    stamped with the SOAP API and the caller's client name."""
    org = emulated_org_factory(counts=COUNTS, settings=SETTINGS)
    sf = org.simple_salesforce()
    lead_id = new_lead(sf, LastName="Evented", Company="Evented Corp")
    with pubsub_client(org) as client, client.subscribe("/data/ChangeEvents") as subscription:
        assert collect(subscription, 0, quiet_seconds=0.3) == []  # subscribed from LATEST
        sf.session.headers["Sforce-Call-Options"] = "client=audience-writer"
        (result,) = convert(sf, basic(lead_id))
        events = collect(subscription, 4)
    assert {(e.entity, e.change_type, e.record_ids[0]) for e in events} == {
        ("Lead", "UPDATE", lead_id), ("Account", "CREATE", result["accountId"]),
        ("Contact", "CREATE", result["contactId"]), ("Opportunity", "CREATE", result["opportunityId"])}
    assert len({e.transaction_key for e in events}) == 1
    assert sorted(e.sequence_number for e in events) == [1, 2, 3, 4]
    assert {e.change_origin for e in events} == {f"com/salesforce/api/soap/{sf.sf_version};client=audience-writer"}
    lead_update = next(e for e in events if e.entity == "Lead")
    assert {"IsConverted", "ConvertedContactId", "Status"} <= set(lead_update.changed_fields)


def test_the_converted_status_must_be_a_lead_status_marked_converted(sf: Salesforce) -> None:
    converted = [row["MasterLabel"] for row in
                 sf.query("SELECT MasterLabel FROM LeadStatus WHERE IsConverted = true")["records"]]
    open_statuses = [row["MasterLabel"] for row in
                     sf.query("SELECT MasterLabel FROM LeadStatus WHERE IsConverted = false")["records"]]
    assert converted == ["Closed - Converted"] and "Open - Not Contacted" in open_statuses
    lead_id = new_lead(sf, LastName="Wrong Status", Company="Status Check Ltd")
    wrong = [("convertedStatus", open_statuses[0]), *basic(lead_id)[1:]]
    (refused,) = convert(sf, wrong)
    assert refused["success"] == "false" and refused["errors"][0]["statusCode"] == "INVALID_STATUS"
    assert sf.Lead.get(lead_id)["IsConverted"] is False
    (done,) = convert(sf, [("convertedStatus", converted[0]), *basic(lead_id)[1:]])
    assert done["success"] == "true" and sf.Lead.get(lead_id)["Status"] == converted[0]
