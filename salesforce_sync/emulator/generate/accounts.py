"""Accounts: company names, tiers and websites (companies of one name share a domain, written in different forms)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from salesforce_sync.emulator.generate.draws import (
    Columns,
    Draws,
    external_keys,
    maybe,
    object_array,
    record_ids,
)
from salesforce_sync.emulator.generate.plan import audit_columns, timeline
from salesforce_sync.emulator.generate.pools import (
    COMPANY_NAMES,
    COMPANY_SLUGS,
    DESCRIPTIONS,
    LOCALE_CUMULATIVE,
    REGIONS,
    WEBSITE_FORMS,
    picklist_values,
)
from salesforce_sync.emulator.generate.setup_rows import active_record_type_ids

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

_SIC_CODES = object_array("7372", "5812", "8062", "2834", "4213", "6021")
_SIC_DESCRIPTIONS = object_array("Prepackaged Software", "Eating Places", "Hospitals", "Pharmaceutical Preparations",
                                 "Trucking", "National Banks")
_TICKERS = object_array("ACME", "GLBX", "INTC", "UMBR", "HOOL", "STRK")


def company_draws(d: Draws) -> np.ndarray:
    """Which company of the pool each record names; the same draw picks its web slug, so names and domains agree."""
    return d.below("Company", len(COMPANY_NAMES))


def account_names(plan: Plan, idx: np.ndarray) -> np.ndarray:
    d = Draws(plan, "Account", idx)
    names = COMPANY_NAMES[company_draws(d)]
    return np.where(d.chance("Regional", 0.15), names + d.pick("Region", REGIONS), names)


def websites(d: Draws, slugs: np.ndarray) -> np.ndarray:
    form = d.below("WebsiteForm", len(WEBSITE_FORMS))
    prefixes = object_array(*(p for p, _ in WEBSITE_FORMS))[form]
    suffixes = object_array(*(s for _, s in WEBSITE_FORMS))[form]
    return maybe(~d.chance("NoWebsite", 0.3), prefixes + slugs + suffixes)


def firmographics(d: Draws, object_name: str) -> dict[str, Any]:
    revenue = np.round(10 ** (4 + 5 * d.unit("Revenue")), -3)
    employees = (10 ** (4.5 * d.unit("Employees"))).astype(np.int64) + 1
    return {
        "Industry": maybe(~d.chance("NoIndustry", 0.2), d.pick("IndustryValue", picklist_values(object_name, "Industry"))),
        "AnnualRevenue": maybe(~d.chance("NoRevenue", 0.4), revenue),
        "NumberOfEmployees": maybe(~d.chance("NoEmployees", 0.35), employees),
    }


def account_columns(plan: Plan, idx: np.ndarray) -> Columns:
    d = Draws(plan, "Account", idx)
    deleted = plan.accounts.rank(idx) >= plan.accounts.live
    stamps = timeline(plan, d, deleted)
    live = max(plan.accounts.live, 1)
    parent = plan.accounts.index(d.below("Parent", live))
    has_parent = d.chance("HasParent", 0.08) & (parent < idx)
    merged_into = plan.accounts.index(d.below("MergedInto", live))
    address_i = plan.addresses.choose(d, "Address", d.weighted("Locale", LOCALE_CUMULATIVE))
    has_address = ~d.chance("NoAddress", 0.1)
    ships_to_billing = has_address & d.chance("ShipsToBilling", 0.5)
    sic = d.below("Sic", len(_SIC_CODES))
    has_sic = d.chance("HasSic", 0.2)
    public = d.chance("Public", 0.05)
    address = {key: maybe(has_address, plan.addresses.columns[column][address_i])
               for key, column in (("Street", "street"), ("City", "city"), ("State", "state"),
                                   ("PostalCode", "postal"), ("Country", "country"))}
    no_geocode = {f"{prefix}{key}": None for prefix in ("Billing", "Shipping")
                  for key in ("Latitude", "Longitude", "GeocodeAccuracy")}
    columns = {
        "Id": record_ids("Account", idx),
        "MasterRecordId": maybe(deleted & d.chance("Merged", 0.3), record_ids("Account", merged_into)),
        "Name": account_names(plan, idx),
        "Type": maybe(~d.chance("NoType", 0.1), d.pick("TypeValue", picklist_values("Account", "Type"))),
        "RecordTypeId": d.pick("RecordType", active_record_type_ids("Account")),
        "ParentId": maybe(has_parent, record_ids("Account", parent)),
        **{f"Billing{key}": values for key, values in address.items()},
        **{f"Shipping{key}": maybe(ships_to_billing, values) for key, values in address.items()},
        **no_geocode,
        "Phone": maybe(d.chance("Phone", 0.7), d.pick("PhoneValue", plan.phones)),
        "Fax": maybe(d.chance("Fax", 0.1), d.pick("FaxValue", plan.phones)),
        "AccountNumber": maybe(d.chance("Numbered", 0.4), "CD" + (100_000 + idx).astype(str).astype(object)),
        "Website": websites(d, COMPANY_SLUGS[company_draws(d)]),
        "PhotoUrl": None,
        "Sic": maybe(has_sic, _SIC_CODES[sic]),
        **firmographics(d, "Account"),
        "Ownership": maybe(d.chance("HasOwnership", 0.3), np.where(public, "Public", "Private")),
        "TickerSymbol": maybe(public, d.pick("Ticker", _TICKERS)),
        "Description": maybe(d.chance("Described", 0.2), d.pick("Description", DESCRIPTIONS)),
        "Rating": maybe(d.chance("Rated", 0.3), d.pick("RatingValue", picklist_values("Account", "Rating"))),
        "Site": maybe(d.chance("HasSite", 0.1), d.pick("SiteValue", REGIONS)),
        "OwnerId": d.pick("Owner", plan.owners),
        **audit_columns(plan, d, stamps),
        "Jigsaw": None, "CleanStatus": maybe(d.chance("Cleaned", 0.2), "Pending"),
        "AccountSource": maybe(d.chance("Sourced", 0.5), d.pick("Source", picklist_values("Account", "AccountSource"))),
        "SicDesc": maybe(has_sic, _SIC_DESCRIPTIONS[sic]),
        "Tier__c": maybe(d.chance("Tiered", 0.6), d.pick("Tier", picklist_values("Account", "Tier__c"))),
        "Audience_Id__c": external_keys(d, "aud", 0.05),
    }
    return columns

