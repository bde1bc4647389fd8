"""Lead conversion, as SOAP `convertLead` does it: the Lead becomes (or merges into) an Account and a Contact,
optionally an Opportunity, and is marked converted and read-only, all in one transaction."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from salesforce_sync.emulator.errors import SalesforceApiError
from salesforce_sync.emulator.ids import KEY_PREFIXES, canonical_id
from salesforce_sync.emulator.records import WriteOptions

FALLBACK_CONVERTED_STATUS = "Closed - Converted"  # an org without LeadStatus rows: the standard converted value
# Standard mapping of Lead fields onto the records a conversion creates or fills (target field: lead field).
ACCOUNT_FROM_LEAD = {"Name": "Company", "Website": "Website", "Industry": "Industry", "AnnualRevenue": "AnnualRevenue",
                     "NumberOfEmployees": "NumberOfEmployees", "Phone": "Phone", "Rating": "Rating",
                     "BillingStreet": "Street", "BillingCity": "City", "BillingState": "State",
                     "BillingPostalCode": "PostalCode", "BillingCountry": "Country"}
CONTACT_FROM_LEAD = {"FirstName": "FirstName", "LastName": "LastName", "Salutation": "Salutation", "Title": "Title",
                     "Email": "Email", "Phone": "Phone", "MobilePhone": "MobilePhone", "LeadSource": "LeadSource",
                     "HasOptedOutOfEmail": "HasOptedOutOfEmail", "DoNotCall": "DoNotCall",
                     "HasOptedOutOfFax": "HasOptedOutOfFax", "Description": "Description",
                     "MailingStreet": "Street", "MailingCity": "City", "MailingState": "State",
                     "MailingPostalCode": "PostalCode", "MailingCountry": "Country"}
OPPORTUNITY_FROM_LEAD = {"LeadSource": "LeadSource"}


@dataclass(frozen=True)
class LeadConvert:
    """One `leadConverts` entry of a convertLead call."""

    lead_id: str | None
    converted_status: str | None
    account_id: str | None = None
    contact_id: str | None = None
    do_not_create_opportunity: bool = False
    opportunity_name: str | None = None
    overwrite_lead_source: bool = False
    owner_id: str | None = None
    bypass_account_dedupe_check: bool = False
    bypass_contact_dedupe_check: bool = False


class LeadConversion:
    """Mixin of `Org`: convertLead."""

    def convert_leads(self, converts: list[LeadConvert]) -> list[dict[str, Any]]:
        """Convert each lead in its own savepoint of one transaction; one LeadConvertResult-shaped dict per
        input, in order: accountId, contactId, leadId, opportunityId, success, errors."""
        results = []
        with self.transaction():
            for convert in converts:
                try:
                    with self.transaction() as conn:
                        results.append({**self._convert(conn, convert), "success": True, "errors": []})
                except SalesforceApiError as err:
                    results.append({"accountId": None, "contactId": None, "leadId": convert.lead_id,
                                    "opportunityId": None, "success": False, "errors": [err.record_error()]})
        return results

    def converted_statuses(self) -> list[str]:
        """The Lead statuses a conversion may set: LeadStatus rows with IsConverted, else the standard one."""
        status_obj = self.schema.object("LeadStatus")
        if status_obj is not None and status_obj.field("IsConverted"):
            label = "ApiName" if status_obj.field("ApiName") else "MasterLabel"
            with self.read() as conn:
                rows = conn.execute(f'SELECT "{label}" FROM "LeadStatus" WHERE "IsConverted" = 1').fetchall()
            if rows:
                return [r[0] for r in rows]
        return [FALLBACK_CONVERTED_STATUS]

    def _convert(self, conn: sqlite3.Connection, convert: LeadConvert) -> dict[str, Any]:
        lead_obj = self.object("Lead")
        lead = self._live_record(conn, "Lead", convert.lead_id, "leadId")
        if lead.get("IsConverted"):
            raise SalesforceApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", ["leadId"])
        if convert.converted_status not in self.converted_statuses():
            raise SalesforceApiError(400, "INVALID_STATUS", f"invalid convertedStatus: {convert.converted_status}",
                                     ["convertedStatus"])
        if convert.contact_id is not None and convert.account_id is None:
            raise SalesforceApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [accountId]",
                                     ["accountId"])
        owner = convert.owner_id or lead.get("OwnerId")
        if not owner or not owner.startswith(KEY_PREFIXES["User"]):
            raise SalesforceApiError(400, "INVALID_CROSS_REFERENCE_KEY",
                                     "Converted objects can only be owned by users. If the lead is not owned by a "
                                     "user, you must specify a user for the Owner field.", ["ownerId"])
        account_id = self._merge_or_create(conn, "Account", convert.account_id, "accountId", lead,
                                           ACCOUNT_FROM_LEAD, {"OwnerId": owner}, convert.bypass_account_dedupe_check)
        if convert.contact_id is not None:
            contact = self._live_record(conn, "Contact", convert.contact_id, "contactId")
            if (contact.get("AccountId") or "") != account_id:
                raise SalesforceApiError(400, "INVALID_CROSS_REFERENCE_KEY",
                                         f"contact {contact['Id']} does not belong to account {account_id}",
                                         ["contactId"])
        overwrite = {"LeadSource": lead.get("LeadSource")} if convert.overwrite_lead_source and \
            lead.get("LeadSource") else {}
        contact_id = self._merge_or_create(conn, "Contact", convert.contact_id, "contactId", lead, CONTACT_FROM_LEAD,
                                           {"OwnerId": owner, "AccountId": account_id},
                                           convert.bypass_contact_dedupe_check, overwrite)
        opportunity_id = None
        if not convert.do_not_create_opportunity:
            stage = self.object("Opportunity").field("StageName")
            values = {"Name": convert.opportunity_name or lead.get("Company"), "AccountId": account_id,
                      "StageName": stage.default or stage.picklist[0], "CloseDate": self.now().date().isoformat(),
                      "OwnerId": owner, **_mapped(self.object("Opportunity"), lead, OPPORTUNITY_FROM_LEAD)}
            opportunity_id = self._create(conn, self.object("Opportunity"), values, None)
        self._update(conn, lead_obj, lead["Id"], {
            "IsConverted": True, "Status": convert.converted_status, "ConvertedDate": self.now().date().isoformat(),
            "ConvertedAccountId": account_id, "ConvertedContactId": contact_id,
            "ConvertedOpportunityId": opportunity_id}, None, system=True)
        return {"accountId": account_id, "contactId": contact_id, "leadId": lead["Id"], "opportunityId": opportunity_id}

    def _live_record(self, conn: sqlite3.Connection, object_name: str, record_id: str | None,
                     argument: str) -> dict[str, Any]:
        canonical = canonical_id(record_id or "")
        record = None
        if canonical and canonical.startswith(KEY_PREFIXES[object_name]):
            record = self._stored(conn, self.object(object_name), canonical)
        if record is None or record.get("IsDeleted"):
            raise SalesforceApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [argument])
        return record

    def _merge_or_create(self, conn: sqlite3.Connection, object_name: str, existing_id: str | None, argument: str,
                         lead: dict[str, Any], mapping: dict[str, str], fixed: dict[str, Any], bypass_dedupe: bool,
                         overwrite: dict[str, Any] | None = None) -> str:
        """The existing record with only its empty fields filled from the lead (plus `overwrite`), or a new one."""
        obj = self.object(object_name)
        values = _mapped(obj, lead, mapping)
        options = WriteOptions(allow_save=bypass_dedupe)
        if existing_id is None:
            return self._create(conn, obj, {**values, **fixed}, None, options)
        current = self._live_record(conn, object_name, existing_id, argument)
        fill = {k: v for k, v in values.items() if current.get(k) is None and not obj.field(k).type == "boolean"}
        fill.update(overwrite or {})
        if fill:
            self._update(conn, obj, current["Id"], fill, None, options)
        return current["Id"]


def _mapped(obj: Any, lead: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """Lead values under the target's field names, in API form, for the target fields this org has."""
    out = {}
    for target, source in mapping.items():
        f = obj.field(target)
        value = lead.get(source)
        if f is None or value is None:
            continue
        out[target] = bool(value) if f.type == "boolean" else value
    return out
