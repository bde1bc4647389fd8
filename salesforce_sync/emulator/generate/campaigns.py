"""Campaigns with their roll-ups, each campaign's member statuses, and members mirroring their Lead or Contact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from salesforce_sync.emulator.generate.accounts import account_names
from salesforce_sync.emulator.generate.draws import Columns, Draws, batches, between, maybe, object_array, record_ids
from salesforce_sync.emulator.generate.opportunities import STAGES, Deals
from salesforce_sync.emulator.generate.people import (
    contact_accounts,
    contact_stamps,
    lead_companies,
    lead_person_fields,
    lead_stamps,
    person_details,
    person_fields,
)
from salesforce_sync.emulator.generate.plan import DAY, Stamps, audit_columns, timeline
from salesforce_sync.emulator.generate.pools import CAMPAIGN_THEMES, DESCRIPTIONS, picklist_values
from salesforce_sync.emulator.schema import CAMPAIGN_MEMBER_MIRRORS, CAMPAIGN_MEMBER_STATUSES

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

_STATUS_LABELS = object_array(*(label for label, _, _ in CAMPAIGN_MEMBER_STATUSES))
_DEFAULT_STATUS = int(np.flatnonzero([is_default for _, is_default, _ in CAMPAIGN_MEMBER_STATUSES])[0])
_RESPONDED_STATUS = int(np.flatnonzero([responded for _, _, responded in CAMPAIGN_MEMBER_STATUSES])[0])
_PERSON_MIRRORS = tuple(key for key in CAMPAIGN_MEMBER_MIRRORS if key not in ("Description", "LeadSource"))


def campaign_stamps(plan: Plan, idx: np.ndarray) -> Stamps:
    return timeline(plan, Draws(plan, "Campaign", idx), np.zeros(len(idx), dtype=bool))


def campaigns_created(plan: Plan) -> np.ndarray:
    return plan.memo("campaigns_created", lambda: campaign_stamps(plan, np.arange(plan.counts["Campaign"])).created)


@dataclass
class RollUps:
    """Per-campaign roll-up summaries of its members and opportunities, as Salesforce keeps them."""

    leads: np.ndarray
    converted_leads: np.ndarray
    contacts: np.ndarray
    responses: np.ndarray
    opportunities: np.ndarray
    won_opportunities: np.ndarray
    amount_all: np.ndarray
    amount_won: np.ndarray

    @classmethod
    def of(cls, plan: Plan) -> RollUps:
        return plan.memo("campaign_roll_ups", lambda: cls._count(plan))

    @classmethod
    def _count(cls, plan: Plan) -> RollUps:
        campaigns = plan.counts["Campaign"]

        def tally(selected: np.ndarray, campaign: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
            chosen = None if weights is None else weights[selected]
            return np.bincount(campaign[selected], weights=chosen, minlength=campaigns)

        totals = {name: np.zeros(campaigns) for name in cls.__dataclass_fields__}
        for slots in batches(plan.counts["CampaignMember"]):
            campaign, person = member_slots(plan, slots)
            is_lead = person < plan.live_leads
            totals["leads"] += tally(is_lead, campaign)
            totals["converted_leads"] += tally(is_lead & (person < plan.converted), campaign)
            totals["contacts"] += tally(~is_lead, campaign)
            totals["responses"] += tally(member_responded(plan, slots), campaign)
        for idx in batches(plan.counts["Opportunity"]):
            deals = Deals.of(plan, idx)
            counted = deals.live & (deals.campaign >= 0)
            won = counted & (STAGES[deals.stage] == "Closed Won")
            amount = np.nan_to_num(deals.amount)
            totals["opportunities"] += tally(counted, deals.campaign)
            totals["won_opportunities"] += tally(won, deals.campaign)
            totals["amount_all"] += tally(counted, deals.campaign, amount)
            totals["amount_won"] += tally(won, deals.campaign, amount)
        counts = {name: values.astype(np.int64) for name, values in totals.items() if not name.startswith("amount")}
        return cls(**counts, amount_all=np.round(totals["amount_all"], 2), amount_won=np.round(totals["amount_won"], 2))


def member_slots(plan: Plan, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(campaign index, live-person number) of member slots; distinct pairs for distinct slots.

    Live-person numbers [0, live leads) are Lead ranks, the rest Contact ranks after them.
    """
    campaigns = plan.counts["Campaign"]
    people = plan.live_leads + plan.live_contacts
    campaign = slots % campaigns
    turn = slots // campaigns
    person = (turn * plan.member_stride + campaign * (people // max(campaigns, 1) + 1)) % people
    return campaign, person


def member_responded(plan: Plan, idx: np.ndarray) -> np.ndarray:
    return Draws(plan, "CampaignMember", idx).chance("Responded", 0.25)


def campaign_columns(plan: Plan, idx: np.ndarray) -> Columns:
    d = Draws(plan, "Campaign", idx)
    stamps = campaign_stamps(plan, idx)
    roll_ups = RollUps.of(plan)
    start = between(d, "StartAt", stamps.created, plan.now + 60 * DAY)
    end = start + ((1 + 90 * d.unit("Length")) * DAY).astype(np.int64)
    year = plan.dates(start).astype("U4").astype(object)
    parent = (d.unit("Parent") * idx).astype(np.int64)
    budget = np.round(1000 + 99_000 * d.unit("Budget"))
    sent = roll_ups.leads[idx] + roll_ups.contacts[idx]
    columns = {
        "Id": record_ids("Campaign", idx), "Name": year + " " + d.pick("Theme", CAMPAIGN_THEMES),
        "ParentId": maybe(d.chance("HasParent", 0.2) & (idx > 0), record_ids("Campaign", parent)),
        "Type": d.pick("Type", picklist_values("Campaign", "Type")),
        "Status": d.pick("Status", picklist_values("Campaign", "Status")),
        "StartDate": plan.dates(start), "EndDate": maybe(~d.chance("OpenEnded", 0.2), plan.dates(end)),
        "ExpectedRevenue": maybe(d.chance("Expects", 0.4), np.round(budget * (2 + 8 * d.unit("Return")))),
        "BudgetedCost": maybe(d.chance("Budgeted", 0.7), budget),
        "ActualCost": maybe(d.chance("Costed", 0.5), np.round(budget * (0.5 + d.unit("Spend")))),
        "ExpectedResponse": maybe(d.chance("ExpectsResponse", 0.3), np.round(1 + 20 * d.unit("Response"), 2)),
        "NumberSent": maybe(d.chance("CountsSent", 0.5), sent.astype(np.float64)),
        "IsActive": d.chance("Active", 0.6),
        "Description": maybe(d.chance("Described", 0.5), d.pick("Description", DESCRIPTIONS)),
        "NumberOfLeads": roll_ups.leads[idx], "NumberOfConvertedLeads": roll_ups.converted_leads[idx],
        "NumberOfContacts": roll_ups.contacts[idx], "NumberOfResponses": roll_ups.responses[idx],
        "NumberOfOpportunities": roll_ups.opportunities[idx],
        "NumberOfWonOpportunities": roll_ups.won_opportunities[idx],
        "AmountAllOpportunities": roll_ups.amount_all[idx], "AmountWonOpportunities": roll_ups.amount_won[idx],
        "OwnerId": d.pick("Owner", plan.owners),
        **audit_columns(plan, d, stamps),
    }
    return columns


def campaign_member_status_columns(plan: Plan, idx: np.ndarray) -> Columns:
    """The member statuses every campaign starts with (`Sent` the default, `Responded` counted as a response),
    created with their campaign."""
    per_campaign = len(CAMPAIGN_MEMBER_STATUSES)
    campaign, position = idx // per_campaign, idx % per_campaign
    d = Draws(plan, "Campaign", campaign)  # the campaign's own creator and stamps
    created = campaigns_created(plan)[campaign] * 1000
    creator = d.pick("CreatedBy", plan.editors)
    return {
        "Id": record_ids("CampaignMemberStatus", idx), "IsDeleted": np.zeros(len(idx), dtype=bool),
        "CampaignId": record_ids("Campaign", campaign), "Label": _STATUS_LABELS[position],
        "SortOrder": position + 1, "IsDefault": position == _DEFAULT_STATUS,
        "HasResponded": position == _RESPONDED_STATUS,
        "CreatedDate": created, "CreatedById": creator, "LastModifiedDate": created, "LastModifiedById": creator,
        "SystemModstamp": created,
    }


def campaign_member_columns(plan: Plan, idx: np.ndarray) -> Columns:
    """Members of Leads and Contacts with the person's fields mirrored; none deleted, as Salesforce
    hard-deletes members (with their person) instead of keeping them in the recycle bin."""
    d = Draws(plan, "CampaignMember", idx)
    campaign, person = member_slots(plan, idx)
    is_lead = person < plan.live_leads
    lead = plan.leads.index(person[is_lead])
    contact = plan.contacts.index(person[~is_lead] - plan.live_leads)

    mirrored = (*CAMPAIGN_MEMBER_MIRRORS, "Salutation", "CompanyOrAccount", "LeadOrContactOwnerId")
    columns: dict[str, Any] = {key: np.empty(len(idx), dtype=object) for key in mirrored}
    person_ids = np.empty(len(idx), dtype=object)
    person_created = np.empty(len(idx), dtype=np.int64)
    if len(lead):
        _mirror(columns, is_lead, {**lead_person_fields(plan, lead), **person_details(plan, "Lead", lead),
                                   "CompanyOrAccount": lead_companies(plan, lead)})
        person_ids[is_lead] = record_ids("Lead", lead)
        person_created[is_lead] = lead_stamps(plan, lead).created
    if len(contact):
        account = contact_accounts(plan, contact)
        _mirror(columns, ~is_lead, {**person_fields(plan, "Contact", contact), **person_details(plan, "Contact", contact),
                                    "CompanyOrAccount": maybe(account >= 0, account_names(plan, np.maximum(account, 0)))})
        person_ids[~is_lead] = record_ids("Contact", contact)
        person_created[~is_lead] = contact_stamps(plan, contact).created
    for flag in ("HasOptedOutOfEmail", "DoNotCall", "HasOptedOutOfFax"):
        columns[flag] = columns[flag].astype(bool)

    earliest = np.maximum(person_created, campaigns_created(plan)[campaign])
    stamps = timeline(plan, d, np.zeros(len(idx), dtype=bool), earliest)
    responded = member_responded(plan, idx)
    columns.update({
        "Id": record_ids("CampaignMember", idx), "CampaignId": record_ids("Campaign", campaign),
        "LeadId": np.where(is_lead, person_ids, None), "ContactId": np.where(is_lead, None, person_ids),
        "Status": _STATUS_LABELS[np.where(responded, _RESPONDED_STATUS, _DEFAULT_STATUS)], "HasResponded": responded,
        "FirstRespondedDate": maybe(responded, plan.dates(stamps.modified)),
        "Type": np.where(is_lead, "Lead", "Contact"), "LeadOrContactId": person_ids,
        **audit_columns(plan, d, stamps, views=False),
    })
    return columns


def _mirror(columns: dict[str, Any], rows: np.ndarray, person: dict[str, np.ndarray]) -> None:
    """Copy a person's fields into the member rows `rows` (their owner into LeadOrContactOwnerId)."""
    for key in columns:
        columns[key][rows] = person["OwnerId" if key == "LeadOrContactOwnerId" else key]
