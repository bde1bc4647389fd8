"""Tasks and Events about live people and, for Contacts only (as Salesforce requires: a Lead's activity
relates to nothing else), an Account, Opportunity or Campaign."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from salesforce_sync.emulator.generate.draws import (
    DELETED_SHARE,
    Columns,
    Draws,
    between,
    external_keys,
    maybe,
    object_array,
    record_ids,
)
from salesforce_sync.emulator.generate.opportunities import opportunity_accounts
from salesforce_sync.emulator.generate.people import contact_accounts, contact_stamps, lead_stamps
from salesforce_sync.emulator.generate.plan import DAY, HISTORY_SECONDS, Stamps, audit_columns, timeline
from salesforce_sync.emulator.generate.pools import DESCRIPTIONS, TASK_SUBJECTS, TASK_SUBTYPE_BY_SUBJECT, picklist_values

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

_CALL_RESULTS = object_array("Left voicemail", "Connected", "No answer", "Wrong number")
_EVENT_SUBJECTS = object_array("Meeting", "Call", "Demo: Analytics Suite", "Lunch with the \"A\" team",
                               "Quarterly business review", "Kundentermin", "打ち合わせ", "Rendez-vous, Lyon")
_LOCATIONS = object_array("Zoom", "Microsoft Teams", "Customer office", "HQ, Room 4.12", "Café Olé, Paris",
                          "München Messe", "東京本社")
_DURATIONS = np.array([15, 30, 30, 45, 60, 60, 90, 120])
_MINUTE = 60


@dataclass
class Subjects:
    """Who (Lead or Contact) and what (Account, Opportunity, Campaign) a batch of activities is about."""

    who: np.ndarray
    what: np.ndarray
    account: np.ndarray  # AccountId Salesforce derives: the What's account, else the Contact's
    earliest: np.ndarray  # seconds: not created before its person

    @classmethod
    def draw(cls, plan: Plan, d: Draws) -> Subjects:
        n = len(d.idx)
        people = plan.live_leads + plan.live_contacts
        person = d.below("Who", max(people, 1))
        has_who = d.chance("HasWho", 0.85) & (people > 0)
        is_lead = has_who & (person < plan.live_leads)
        is_contact = has_who & ~is_lead
        who, what, account = (np.full(n, None, dtype=object) for _ in range(3))
        earliest = np.full(n, plan.now - HISTORY_SECONDS, dtype=np.int64)
        if is_lead.any():
            lead = plan.leads.index(person[is_lead])
            who[is_lead] = record_ids("Lead", lead)
            earliest[is_lead] = lead_stamps(plan, lead).created
        if is_contact.any():
            contact = plan.contacts.index(person[is_contact] - plan.live_leads)
            who[is_contact] = record_ids("Contact", contact)
            earliest[is_contact] = contact_stamps(plan, contact).created
            contact_account = contact_accounts(plan, contact)
            account[is_contact] = maybe(contact_account >= 0, record_ids("Account", np.maximum(contact_account, 0)))

        live = {"Account": plan.accounts.live if plan.counts["Account"] else 0,
                "Opportunity": plan.opportunities.live if plan.counts["Opportunity"] else 0,
                "Campaign": plan.counts["Campaign"]}
        targets = [(name, count) for name, count in live.items() if count]
        if targets:
            kind = d.below("WhatKind", len(targets))
            wants_what = d.chance("HasWhat", 0.5) & ~is_lead
            for k, (name, count) in enumerate(targets):
                chosen = wants_what & (kind == k)
                number = d.below(f"What{name}", count)[chosen]
                if name == "Account":
                    target = plan.accounts.index(number)
                    account[chosen] = record_ids("Account", target)
                elif name == "Opportunity":
                    target = plan.opportunities.index(number)
                    account[chosen] = record_ids("Account", opportunity_accounts(plan, target))
                else:
                    target = number
                what[chosen] = record_ids(name, target)
        return cls(who, what, account, earliest)


def _activity_columns(plan: Plan, d: Draws, about: Subjects, stamps: Stamps) -> Columns:
    """Columns Tasks and Events fill alike."""
    return {
        "Id": record_ids(d.space, d.idx), "WhoId": about.who, "WhatId": about.what, "AccountId": about.account,
        "OwnerId": d.pick("Owner", plan.owners),
        "Description": maybe(d.chance("Described", 0.3), d.pick("Description", DESCRIPTIONS)),
        "IsArchived": np.zeros(len(d.idx), dtype=bool),
        "Activity_Key__c": external_keys(d, "act", 0.3),
        **audit_columns(plan, d, stamps, views=False),
    }


def task_columns(plan: Plan, idx: np.ndarray) -> Columns:
    d = Draws(plan, "Task", idx)
    about = Subjects.draw(plan, d)
    stamps = timeline(plan, d, d.chance("Deleted", DELETED_SHARE), about.earliest)
    subject_i = d.below("Subject", len(TASK_SUBJECTS))
    status = d.pick("Status", picklist_values("Task", "Status"))
    priority = d.pick("Priority", picklist_values("Task", "Priority"))
    closed = status == "Completed"
    subtype = TASK_SUBTYPE_BY_SUBJECT[subject_i]
    logged_call = (subtype == "Call") & closed
    due = stamps.created + ((-5 + 40 * d.unit("DueIn")) * DAY).astype(np.int64)
    reminded = d.chance("Reminder", 0.2) & ~closed
    return {
        **_activity_columns(plan, d, about, stamps),
        "Subject": TASK_SUBJECTS[subject_i],
        "ActivityDate": maybe(d.chance("Due", 0.8), plan.dates(due)),
        "Status": status, "Priority": priority, "IsHighPriority": priority == "High",
        "IsClosed": closed, "TaskSubtype": subtype,
        "CompletedDateTime": maybe(closed, between(d, "CompletedAt", stamps.created, stamps.modified) * 1000),
        "CallDurationInSeconds": maybe(logged_call, (20 + 1800 * d.unit("CallLength") ** 2).astype(np.int64)),
        "CallType": maybe(logged_call, np.where(d.chance("Inbound", 0.2), "Inbound", "Outbound")),
        "CallDisposition": maybe(logged_call & d.chance("CallResult", 0.7), d.pick("CallResultValue", _CALL_RESULTS)),
        "CallObject": None,
        "ReminderDateTime": maybe(reminded, (due - 3600) * 1000), "IsReminderSet": reminded,
    }


def event_columns(plan: Plan, idx: np.ndarray) -> Columns:
    """Meetings and calls on the calendar: timed ones last DurationInMinutes from StartDateTime to
    EndDateTime; all-day ones cover their ActivityDate."""
    d = Draws(plan, "Event", idx)
    about = Subjects.draw(plan, d)
    stamps = timeline(plan, d, d.chance("Deleted", DELETED_SHARE), about.earliest)
    all_day = d.chance("AllDay", 0.1)
    day_start = (stamps.created // DAY + (-2 + 32 * d.unit("StartsIn")).astype(np.int64)) * DAY
    timed_start = day_start + (7 * 3600 + d.below("StartSlot", 40) * 15 * _MINUTE)
    start = np.where(all_day, day_start, timed_start)
    minutes = np.where(all_day, 24 * 60, d.pick("Duration", _DURATIONS))
    end = np.where(all_day, day_start, start + minutes * _MINUTE)
    reminded = d.chance("Reminder", 0.3) & ~all_day
    return {
        **_activity_columns(plan, d, about, stamps),
        "Subject": d.pick("Subject", _EVENT_SUBJECTS),
        "Location": maybe(d.chance("Located", 0.6), d.pick("LocationValue", _LOCATIONS)),
        "IsAllDayEvent": all_day,
        "ActivityDateTime": start * 1000, "ActivityDate": plan.dates(start), "DurationInMinutes": minutes,
        "StartDateTime": start * 1000, "EndDateTime": end * 1000, "EndDate": plan.dates(end),
        "IsPrivate": d.chance("Private", 0.03),
        "ShowAs": np.where(d.chance("Free", 0.1), "Free", "Busy").astype(object),
        "IsChild": np.zeros(len(idx), dtype=bool), "IsGroupEvent": np.zeros(len(idx), dtype=bool),
        "GroupEventType": "0",
        "ReminderDateTime": maybe(reminded, (start - 15 * _MINUTE) * 1000), "IsReminderSet": reminded,
        "EventSubtype": "Event",
    }
