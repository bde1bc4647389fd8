"""Leads and Contacts: people with names, emails and addresses; converted and duplicate Leads are the same
person as their Contact."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from salesforce_sync.emulator.generate.accounts import account_names, company_draws, firmographics, websites
from salesforce_sync.emulator.generate.draws import (
    HEX,
    Columns,
    Draws,
    external_keys,
    ascii_strings,
    between,
    fixed_digits,
    maybe,
    record_ids,
    sparse,
)
from salesforce_sync.emulator.generate.plan import DAY, Stamps, audit_columns, timeline
from salesforce_sync.emulator.generate.pools import (
    BOUNCE_REASON,
    COMPANY_DOMAINS,
    COMPANY_NAMES,
    COMPANY_SLUGS,
    DEPARTMENTS,
    DESCRIPTIONS,
    EMAIL_SUFFIXES,
    FIRST,
    FIRST_LOCAL_PARTS,
    FREE_MAIL,
    INTERESTS,
    LAST,
    LOCALE_CUMULATIVE,
    NOT_PROVIDED,
    PREFERRED_LANGUAGE,
    TITLES,
    picklist_values,
)
from salesforce_sync.emulator.schema import LEAD_CONVERTED_STATUS, LEAD_STATUSES

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

OPEN_LEAD_STATUSES = np.array([s for s in LEAD_STATUSES if s != LEAD_CONVERTED_STATUS], dtype=object)


def lead_stamps(plan: Plan, idx: np.ndarray) -> Stamps:
    """Lead stamps; a converted Lead was created before, and last modified at, its Contact's creation."""
    rank = plan.leads.rank(idx)
    stamps = timeline(plan, Draws(plan, "Lead", idx), rank >= plan.leads.live)
    converted = rank < plan.converted
    if converted.any():
        conversion = contact_stamps(plan, plan.contacts.index(rank[converted])).created
        stamps.created[converted] = np.minimum(stamps.created[converted], conversion)
        stamps.modified[converted] = conversion
        stamps.modstamp[converted] = conversion
    return stamps


def contact_stamps(plan: Plan, idx: np.ndarray) -> Stamps:
    return timeline(plan, Draws(plan, "Contact", idx), plan.contacts.rank(idx) >= plan.contacts.live)


# ---- people ------------------------------------------------------------------------------------

def person_fields(plan: Plan, space: str, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Name, contact details, address and opt-outs of the people behind records `idx` of `space`."""
    d = Draws(plan, space, idx)
    locale = d.weighted("Locale", LOCALE_CUMULATIVE)
    first_i, last_i = FIRST.choose(d, "FirstName", locale), LAST.choose(d, "LastName", locale)
    has_first = ~d.chance("NoFirstName", 0.04)
    first = maybe(has_first, FIRST.columns["name"][first_i])
    last = LAST.columns["name"][last_i]
    name = np.where(has_first, FIRST.columns["name_"][first_i] + last, last)

    mixed_case = d.chance("EmailMixedCase", 0.08)
    prefix = np.where(has_first, FIRST_LOCAL_PARTS[first_i, 2 * d.below("EmailStyle", 4) + mixed_case], "")
    last_part = np.where(mixed_case, LAST.columns["caps"][last_i], LAST.columns["ascii"][last_i])
    local = prefix + last_part + d.pick("EmailSuffix", EMAIL_SUFFIXES)
    domain = np.where(d.chance("WorkEmail", 0.5), d.pick("WorkDomain", COMPANY_DOMAINS),
                      d.pick("FreeMail", FREE_MAIL))
    shouted = mixed_case & d.chance("UpperDomain", 0.5)
    domain[shouted] = [value.upper() for value in domain[shouted]]
    email = local + "@" + domain
    email_kind = d.unit("EmailKind")
    malformed = (email_kind >= 0.04) & (email_kind < 0.055)
    email[malformed] = malformed_emails(local[malformed], domain[malformed], d.below("MalformedKind", 3)[malformed])
    email[email_kind < 0.04] = None

    addresses = plan.addresses
    address_i = addresses.choose(d, "Address", locale)
    has_address = ~d.chance("NoAddress", 0.15)
    return {
        "FirstName": first, "LastName": last, "Name": name, "Email": email,
        "Salutation": maybe(d.chance("Salutation", 0.25), d.pick("SalutationValue", picklist_values("Lead", "Salutation"))),
        "Title": maybe(~d.chance("NoTitle", 0.2), d.pick("Title", TITLES)),
        "Phone": maybe(d.chance("Phone", 0.8), d.pick("PhoneValue", plan.phones)),
        "MobilePhone": maybe(d.chance("Mobile", 0.35), d.pick("MobileValue", plan.phones)),
        "Fax": maybe(d.chance("Fax", 0.05), d.pick("FaxValue", plan.phones)),
        "Street": maybe(has_address & ~d.chance("NoStreet", 0.1), addresses.columns["street"][address_i]),
        "City": maybe(has_address, addresses.columns["city"][address_i]),
        "State": maybe(has_address, addresses.columns["state"][address_i]),
        "PostalCode": maybe(has_address & ~d.chance("NoPostalCode", 0.1), addresses.columns["postal"][address_i]),
        "Country": maybe(has_address, addresses.columns["country"][address_i]),
        "HasOptedOutOfEmail": d.chance("OptedOutOfEmail", 0.04),
        "DoNotCall": d.chance("DoNotCall", 0.06),
        "HasOptedOutOfFax": d.chance("OptedOutOfFax", 0.02),
        "locale": locale,
    }


def person_details(plan: Plan, object_name: str, idx: np.ndarray) -> Columns:
    """Description, LeadSource and OwnerId of Leads or Contacts (their CampaignMembers mirror them)."""
    d = Draws(plan, object_name, idx)
    return {
        "Description": maybe(d.chance("Described", 0.2 if object_name == "Lead" else 0.15),
                             d.pick("Description", DESCRIPTIONS)),
        "LeadSource": maybe(~d.chance("NoSource", 0.15), d.pick("Source", picklist_values(object_name, "LeadSource"))),
        "OwnerId": d.pick("Owner", plan.owners),
    }


def malformed_emails(local: np.ndarray, domain: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """The typos people make: 'bob@', 'no-at-sign.example.com', 'two@@example.com'."""
    return np.select([kind == 0, kind == 1], [local + "@", local + "." + domain], local + "@@" + domain)


def lead_person_fields(plan: Plan, idx: np.ndarray) -> dict[str, np.ndarray]:
    """People of Leads; converted and duplicate Leads are the same person as their Contact."""
    people = person_fields(plan, "Lead", idx)
    rank = plan.leads.rank(idx)
    linked = rank < plan.converted + plan.duplicates
    if linked.any():
        contact_people = person_fields(plan, "Contact", plan.contacts.index(rank[linked]))
        for key, values in people.items():
            values[linked] = contact_people[key]
    return people


def contact_accounts(plan: Plan, idx: np.ndarray) -> np.ndarray:
    """Account index of each Contact (always a live Account), -1 for the few private Contacts."""
    d = Draws(plan, "Contact", idx)
    account = plan.accounts.index(d.below("Account", max(plan.accounts.live, 1)))
    private = d.chance("Private", 0.03) & (plan.contacts.rank(idx) >= plan.converted + plan.duplicates)
    return np.where(private, -1, account)


def lead_companies(plan: Plan, idx: np.ndarray) -> np.ndarray:
    """A Lead's Company; a Lead who is also a Contact works at that Contact's Account."""
    d = Draws(plan, "Lead", idx)
    company = np.where(d.chance("CompanyNotProvided", 0.02), NOT_PROVIDED, COMPANY_NAMES[company_draws(d)])
    rank = plan.leads.rank(idx)
    linked = rank < plan.converted + plan.duplicates
    if linked.any():
        company[linked] = account_names(plan, contact_accounts(plan, plan.contacts.index(rank[linked])))
    return company


def bounces(d: Draws, email: np.ndarray, stamps: Stamps) -> tuple[np.ndarray, np.ndarray]:
    bounced = d.chance("Bounced", 0.01) & (email != None)  # noqa: E711 - element-wise comparison
    when = between(d, "BouncedAt", stamps.created, stamps.modified) * 1000
    return bounced, maybe(bounced, when)


def contact_columns(plan: Plan, idx: np.ndarray) -> Columns:
    d = Draws(plan, "Contact", idx)
    stamps = contact_stamps(plan, idx)
    people = person_fields(plan, "Contact", idx)
    account = contact_accounts(plan, idx)
    manager = plan.contacts.index(d.below("ReportsTo", max(plan.contacts.live, 1)))
    bounced, bounced_at = bounces(d, people["Email"], stamps)
    born = plan.now - ((20 + 55 * d.unit("Age")) * 365.25 * DAY).astype(np.int64)
    language = np.where(d.chance("LanguageFromLocale", 0.7), PREFERRED_LANGUAGE[people["locale"]],
                        d.pick("Language", picklist_values("Contact", "Preferred_Language__c")))
    has_other_address = d.chance("OtherAddress", 0.05)
    columns = {
        "Id": record_ids("Contact", idx),
        "AccountId": maybe(account >= 0, record_ids("Account", np.maximum(account, 0))),
        **{key: people[key] for key in ("LastName", "FirstName", "Salutation", "Name", "Title", "Email", "Phone",
                                        "Fax", "MobilePhone", "HasOptedOutOfEmail", "DoNotCall", "HasOptedOutOfFax")},
        **{f"{prefix}{key}": maybe(has_other_address, people[key]) if prefix == "Other" else people[key]
           for prefix in ("Mailing", "Other") for key in ("Street", "City", "State", "PostalCode", "Country")},
        **_unknown_geocodes("Mailing", "Other"),
        "HomePhone": maybe(d.chance("HomePhone", 0.1), d.pick("HomePhoneValue", plan.phones)),
        "OtherPhone": maybe(d.chance("OtherPhone", 0.03), d.pick("OtherPhoneValue", plan.phones)),
        "AssistantPhone": None, "AssistantName": None, "LastCURequestDate": None, "LastCUUpdateDate": None,
        **_person_extras(plan, d, "Contact", stamps),
        **person_details(plan, "Contact", idx),
        "EmailBouncedReason": maybe(bounced, BOUNCE_REASON), "EmailBouncedDate": bounced_at,
        "Department": maybe(d.chance("HasDepartment", 0.5), d.pick("Department", DEPARTMENTS)),
        "Birthdate": maybe(d.chance("HasBirthdate", 0.3), plan.dates(born)),
        "ReportsToId": maybe(d.chance("ReportsToSomeone", 0.1) & (manager < idx), record_ids("Contact", manager)),
        "IsEmailBounced": bounced,
        **audit_columns(plan, d, stamps),
        "Preferred_Language__c": maybe(~d.chance("NoLanguage", 0.3), language),
        "Lifetime_Value__c": maybe(d.chance("Valued", 0.6), np.round(50_000 * d.unit("Value") ** 3, 2)),
        "Audience_Id__c": external_keys(d, "aud", 0.05),
    }
    return columns


def lead_columns(plan: Plan, idx: np.ndarray) -> Columns:
    d = Draws(plan, "Lead", idx)
    stamps = lead_stamps(plan, idx)
    people = lead_person_fields(plan, idx)
    rank = plan.leads.rank(idx)
    converted = rank < plan.converted
    contact_ids, account_ids, opportunity_ids = (np.full(len(idx), None, dtype=object) for _ in range(3))
    if converted.any():
        contact = plan.contacts.index(rank[converted])
        contact_ids[converted] = record_ids("Contact", contact)
        account_ids[converted] = record_ids("Account", contact_accounts(plan, contact))
    with_opportunity = rank < plan.conversion_opportunities
    if with_opportunity.any():
        opportunity_ids[with_opportunity] = record_ids("Opportunity", plan.opportunities.index(rank[with_opportunity]))
    bounced, bounced_at = bounces(d, people["Email"], stamps)
    external = (idx.astype(np.uint64) * np.uint64(plan.external_key_multiplier)
                + np.uint64(plan.external_key_offset)) & np.uint64((1 << 40) - 1)
    columns = {
        "Id": record_ids("Lead", idx),
        **{key: people[key] for key in ("LastName", "FirstName", "Salutation", "Name", "Title", "Street", "City",
                                        "State", "PostalCode", "Country", "Email", "Phone", "Fax", "MobilePhone",
                                        "HasOptedOutOfEmail", "DoNotCall", "HasOptedOutOfFax")},
        **_unknown_geocodes(""),
        **_person_extras(plan, d, "Lead", stamps),
        "CompanyDunsNumber": sparse(d.chance("Duns", 0.02), lambda rows: (100_000_000 + idx[rows]).astype(str)),
        **person_details(plan, "Lead", idx),
        "EmailBouncedReason": maybe(bounced, BOUNCE_REASON), "EmailBouncedDate": bounced_at,
        "Company": lead_companies(plan, idx),
        "Website": websites(d, COMPANY_SLUGS[company_draws(d)]),
        **firmographics(d, "Lead"),
        "Rating": maybe(d.chance("Rated", 0.5), d.pick("RatingValue", picklist_values("Lead", "Rating"))),
        "Status": np.where(converted, LEAD_CONVERTED_STATUS, d.pick("Status", OPEN_LEAD_STATUSES)),
        "IsConverted": converted,
        "ConvertedDate": maybe(converted, plan.dates(stamps.modified)),
        "ConvertedAccountId": account_ids, "ConvertedContactId": contact_ids,
        "ConvertedOpportunityId": opportunity_ids,
        "IsUnreadByOwner": d.chance("Unread", 0.1) & ~converted,
        **audit_columns(plan, d, stamps),
        "Lead_Score__c": maybe(~d.chance("Unscored", 0.1), np.floor(101 * d.unit("Score"))),
        "Interests__c": maybe(d.chance("HasInterests", 0.7), d.pick("Interests", INTERESTS)),
        "External_Key__c": maybe(~d.chance("NoExternalKey", 0.03),
                                  "LD-" + ascii_strings(fixed_digits(external.astype(np.int64), HEX, 10))),
        "Newsletter_Signup__c": maybe(d.chance("Newsletter", 0.35),
                                       plan.dates(between(d, "SignedUpAt", stamps.created, stamps.modified))),
        "Audience_Id__c": external_keys(d, "aud", 0.05),
    }
    return columns


def _unknown_geocodes(*prefixes: str) -> Columns:
    """Latitude, Longitude and GeocodeAccuracy: filled only by a geocoding clean rule, which this org has not run."""
    return {f"{prefix}{key}": None for prefix in prefixes for key in ("Latitude", "Longitude", "GeocodeAccuracy")}


def _person_extras(plan: Plan, d: Draws, object_name: str, stamps: Stamps) -> Columns:
    """Fields Leads and Contacts fill alike: the merge survivor of a deleted record, data-quality stamps."""
    shuffle = plan.leads if object_name == "Lead" else plan.contacts
    survivor = shuffle.index(d.below("MergedInto", max(shuffle.live, 1)))
    return {
        "MasterRecordId": sparse(stamps.deleted & d.chance("Merged", 0.3),
                                 lambda rows: record_ids(object_name, survivor[rows])),
        "PhotoUrl": None, "Jigsaw": None, "CleanStatus": maybe(d.chance("Cleaned", 0.1), "Pending"),
    }
