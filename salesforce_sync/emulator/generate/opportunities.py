"""Opportunities; the first ranks are those created by converting a Lead, at its Contact's Account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from salesforce_sync.emulator.generate.accounts import account_names
from salesforce_sync.emulator.generate.draws import Columns, Draws, maybe, object_array, record_ids
from salesforce_sync.emulator.generate.people import contact_accounts, contact_stamps
from salesforce_sync.emulator.generate.plan import DAY, audit_columns, timeline
from salesforce_sync.emulator.generate.pools import PRODUCTS, picklist_values
from salesforce_sync.emulator.generate.setup_rows import active_record_type_ids
from salesforce_sync.emulator.schema import OPPORTUNITY_STAGES

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

STAGES = object_array(*(stage for stage, _, _ in OPPORTUNITY_STAGES))
STAGE_PROBABILITIES = np.array([probability for _, probability, _ in OPPORTUNITY_STAGES])
FORECAST_CATEGORY_NAMES = object_array(*(category for _, _, category in OPPORTUNITY_STAGES))
_FORECAST_CATEGORIES = {"Pipeline": "Pipeline", "Best Case": "BestCase", "Commit": "Forecast", "Closed": "Closed",
                        "Omitted": "Omitted"}  # ForecastCategoryName -> ForecastCategory
_NEXT_STEPS = object_array("Send proposal", "Schedule demo", "Follow up with procurement", "Legal review",
                           "Call back after budget approval")


@dataclass
class Deals:
    """What campaign roll-ups need of Opportunities `idx`: stage, amount, campaign (-1: none) and liveness."""

    stage: np.ndarray
    amount: np.ndarray
    campaign: np.ndarray
    live: np.ndarray

    @classmethod
    def of(cls, plan: Plan, idx: np.ndarray) -> Deals:
        d = Draws(plan, "Opportunity", idx)
        campaigns = plan.counts["Campaign"]
        amount = np.where(d.chance("NoAmount", 0.1), np.nan, np.round(500 + 250_000 * d.unit("Amount") ** 2, 2))
        from_campaign = d.chance("FromCampaign", 0.2) & (campaigns > 0)
        return cls(d.below("Stage", len(STAGES)), amount,
                   np.where(from_campaign, d.below("Campaign", max(campaigns, 1)), -1),
                   plan.opportunities.rank(idx) < plan.opportunities.live)


def opportunity_accounts(plan: Plan, idx: np.ndarray) -> np.ndarray:
    """Account index of each Opportunity: a live Account, or for a converted Lead's one its Contact's Account."""
    d = Draws(plan, "Opportunity", idx)
    account = plan.accounts.index(d.below("Account", max(plan.accounts.live, 1)))
    rank = plan.opportunities.rank(idx)
    from_lead = rank < plan.conversion_opportunities
    if from_lead.any():
        account[from_lead] = contact_accounts(plan, plan.contacts.index(rank[from_lead]))
    return account


def opportunity_columns(plan: Plan, idx: np.ndarray) -> Columns:
    d = Draws(plan, "Opportunity", idx)
    rank = plan.opportunities.rank(idx)
    stamps = timeline(plan, d, rank >= plan.opportunities.live)
    account = opportunity_accounts(plan, idx)
    from_lead = rank < plan.conversion_opportunities
    contact = plan.contacts.index(rank[from_lead])
    contact_ids = np.full(len(idx), None, dtype=object)
    if from_lead.any():
        stamps.start_at(from_lead, contact_stamps(plan, contact).created)
        contact_ids[from_lead] = record_ids("Contact", contact)
    deals = Deals.of(plan, idx)
    stage = STAGES[deals.stage]
    closed = (stage == "Closed Won") | (stage == "Closed Lost")
    probability = STAGE_PROBABILITIES[deals.stage]
    amount = np.where(np.isnan(deals.amount), None, deals.amount)
    close = (stamps.created + ((14 + 180 * d.unit("CloseIn")) * DAY).astype(np.int64)) // DAY
    close_month = close.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    year, quarter = 1970 + close_month // 12, close_month % 12 // 3 + 1
    forecast_name = FORECAST_CATEGORY_NAMES[deals.stage]
    columns = {
        "Id": record_ids("Opportunity", idx), "AccountId": record_ids("Account", account),
        "RecordTypeId": d.pick("RecordType", active_record_type_ids("Opportunity")),
        "IsPrivate": d.chance("Private", 0.02),
        "Name": account_names(plan, account) + " - " + d.pick("Product", PRODUCTS),
        "Description": None,
        "StageName": stage,
        "Amount": amount,
        "Probability": probability,
        "ExpectedRevenue": np.where(np.isnan(deals.amount), None, np.round(np.nan_to_num(deals.amount) * probability / 100, 2)),
        "TotalOpportunityQuantity": maybe(d.chance("Quantified", 0.3), (1 + 99 * d.unit("Quantity")).round()),
        "CloseDate": plan.dates(close * DAY),
        "Type": maybe(d.chance("Typed", 0.8), d.pick("TypeValue", picklist_values("Opportunity", "Type"))),
        "NextStep": maybe(~closed & d.chance("HasNextStep", 0.4), d.pick("NextStep", _NEXT_STEPS)),
        "LeadSource": maybe(d.chance("Sourced", 0.6), d.pick("Source", picklist_values("Opportunity", "LeadSource"))),
        "IsClosed": closed, "IsWon": stage == "Closed Won",
        "ForecastCategory": object_array(*(_FORECAST_CATEGORIES[name] for name in forecast_name)),
        "ForecastCategoryName": forecast_name,
        "CampaignId": maybe(deals.campaign >= 0, record_ids("Campaign", np.maximum(deals.campaign, 0))),
        "HasOpportunityLineItem": np.zeros(len(idx), dtype=bool),
        "OwnerId": d.pick("Owner", plan.owners),
        **audit_columns(plan, d, stamps),
        "Fiscal": year.astype(str).astype(object) + " " + quarter.astype(str).astype(object),
        "FiscalQuarter": quarter, "FiscalYear": year,
        "ContactId": contact_ids,
        "HasOpenActivity": np.zeros(len(idx), dtype=bool), "HasOverdueTask": np.zeros(len(idx), dtype=bool),
    }
    return columns
