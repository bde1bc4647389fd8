"""What a Lead conversion does, decided without I/O: which source rows reached their stage, and per row whether
its Lead is converted (into which Account and Contact), was converted already, or cannot be."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from salesforce_sync.config.models import WriteBackConvert
from salesforce_sync.sync.write_back import RowPlan, email_key, is_true, sendable, website_domain

#: Outcome code of a configured converted status the org's LeadStatus values do not allow, found before sending.
PRECHECK_CONVERTED_STATUS = "PRECHECK_INVALID_CONVERTED_STATUS"


def at_stage(convert: WriteBackConvert, row: Mapping[str, Any]) -> bool:
    value = sendable(row.get(convert.stage_column))
    return value is not None and str(value) in convert.at_stage


def lead_domain(lead: Mapping[str, Any]) -> str | None:
    """The company domain a Lead's Account is matched by: its Website's, else its email's."""
    domain = website_domain(lead.get("Website"))
    if domain is None and (email := email_key(lead.get("Email"))) and "@" in email:
        domain = website_domain(email.rsplit("@", 1)[1])
    return domain


def plan_conversion(convert: WriteBackConvert, key: str, lead: Mapping[str, Any] | None, converted_status: str,
                    allowed_statuses: tuple[str, ...], contacts_by_email: Mapping[str, Mapping[str, Any]],
                    accounts_by_domain: Mapping[str, Mapping[str, Any]]) -> RowPlan:
    """Convert the row's Lead: into the Account of an existing Contact with its email (merging into that Contact),
    else an Account with its domain (match_by_domain), else new records. A Lead converted already is unchanged
    (its Contact is linked); values are the convertLead arguments."""
    if lead is None:
        return RowPlan(key, "skip", message="no Lead has the row's key or email")
    if is_true(lead.get("IsConverted")):
        return RowPlan(key, "unchanged", lead.get("ConvertedContactId"), matched_by="converted already")
    if converted_status not in allowed_statuses:
        return RowPlan(key, "reject", lead["Id"], {"convertedStatus": converted_status}, None,
                       PRECHECK_CONVERTED_STATUS,
                       f"found before sending: convertedStatus: {converted_status!r} is not a converted LeadStatus "
                       f"of the org ({', '.join(allowed_statuses)})", ("convertedStatus",))
    values: dict[str, Any] = {"leadId": lead["Id"], "convertedStatus": converted_status}
    matched_by = "new Account and Contact"
    if convert.account == "match_by_domain":
        contact = contacts_by_email.get(email_key(lead.get("Email")) or "")
        account = accounts_by_domain.get(lead_domain(lead) or "")
        if contact is not None:
            values.update(accountId=contact["AccountId"], contactId=contact["Id"])
            matched_by = "Contact with the Lead's email"
        elif account is not None:
            values["accountId"] = account["Id"]
            matched_by = "Account with the Lead's domain"
    return RowPlan(key, "update", lead["Id"], values, matched_by)
