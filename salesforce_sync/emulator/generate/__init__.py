"""Deterministic, realistic records for a new emulated org, in the org's storage form.

Every value is a pure function of (seed, object, record index, field): a counter-based hash
(splitmix64, vectorised with numpy, in `draws`) keyed by salts drawn from `random.Random(seed)`. That is
what lets a converted Lead copy its Contact's name and email, and a CampaignMember mirror its person,
without holding a million people in memory: any record's fields can be recomputed from its index.

Record roles are fixed by affine shuffles of each object's index range ("ranks"), so they are spread
over the id space yet countable up front (`plan`):

* Lead ranks [0, converted) are converted into the Contact of the same rank; ranks
  [converted, converted + duplicates) are unconverted Leads of a person who is also that Contact;
  the top 1% of ranks are soft-deleted.
* Contact, Account and Opportunity ranks work the same way, so references only ever point at live
  records (Salesforce cascades a delete to a record's contacts, members and activities).

Timestamps are whole seconds, like the `.000` audit stamps Salesforce returns, so ties are common;
bulk imports and mass updates give many records the very same stamp, as in real orgs.

One module per object family builds its columns: users, setup rows (RecordType, LeadStatus), accounts,
people (Lead, Contact), campaigns (Campaign, CampaignMemberStatus, CampaignMember), opportunities and
activities (Task, Event).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from salesforce_sync.emulator.generate.accounts import account_columns
from salesforce_sync.emulator.generate.activities import event_columns, task_columns
from salesforce_sync.emulator.generate.campaigns import (
    campaign_columns,
    campaign_member_columns,
    campaign_member_status_columns,
)
from salesforce_sync.emulator.generate.draws import BATCH_SIZE, Columns, batches, record_ids
from salesforce_sync.emulator.generate.opportunities import opportunity_columns
from salesforce_sync.emulator.generate.people import contact_columns, lead_columns
from salesforce_sync.emulator.generate.plan import Plan
from salesforce_sync.emulator.generate.pools import OBJECTS
from salesforce_sync.emulator.generate.setup_rows import lead_status_columns, record_type_columns
from salesforce_sync.emulator.generate.users import (
    INTEGRATION_USER_ID,
    INTEGRATION_USERNAME,
    integration_user_id,
    user_columns,
)

__all__ = [
    "BATCH_SIZE", "GENERATED_OBJECTS", "INTEGRATION_USERNAME", "INTEGRATION_USER_ID", "default_counts",
    "generate_org", "generate_org_columns", "integration_user_id", "record_ids",
]

GENERATED_OBJECTS = ("User", "RecordType", "LeadStatus", "Account", "Contact", "Lead", "Campaign",
                     "CampaignMemberStatus", "CampaignMember", "Opportunity", "Task", "Event")
SETUP_OBJECTS = frozenset({"User", "RecordType", "LeadStatus", "CampaignMemberStatus"})  # sized by the generator
COUNTABLE_OBJECTS = frozenset(GENERATED_OBJECTS) - SETUP_OBJECTS
STORED_NAMES = {name: tuple(f.name for f in obj.stored_fields) for name, obj in OBJECTS.items()}

_WHOLE_OBJECT_BUILDERS: dict[str, Callable[[Plan], Columns]] = {
    "User": user_columns, "RecordType": record_type_columns, "LeadStatus": lead_status_columns,
}
_BATCHED_BUILDERS: dict[str, Callable[[Plan, np.ndarray], Columns]] = {
    "Account": account_columns, "Contact": contact_columns, "Lead": lead_columns, "Campaign": campaign_columns,
    "CampaignMemberStatus": campaign_member_status_columns, "CampaignMember": campaign_member_columns,
    "Opportunity": opportunity_columns, "Task": task_columns, "Event": event_columns,
}


def default_counts(counts: dict[str, int]) -> dict[str, int]:
    """The full per-object counts: the given ones, plus defaults derived from them for the rest."""
    check_counts(counts)
    leads, contacts = counts.get("Lead", 0), counts.get("Contact", 0)
    members = counts.get("CampaignMember", 0)
    accounts = counts.get("Account", max(math.ceil(contacts / 5), 1 if counts.get("Opportunity") else 0))
    people = leads + contacts
    campaigns = counts.get("Campaign", max(10, math.ceil(members / max(1, people // 2))) if people or members else 0)
    return {
        "Account": accounts, "Contact": contacts, "Lead": leads, "Campaign": campaigns,
        "CampaignMember": members, "Opportunity": counts.get("Opportunity", accounts // 2),
        "Task": counts.get("Task", people // 20), "Event": counts.get("Event", people // 40),
    }


def generate_org(seed: int, counts: dict[str, int], now_ms: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Yield (object name, up to BATCH_SIZE rows in storage form), Users first, parents before children.

    The same seed, counts and now_ms always give identical rows. Every stored field of the object is
    a key of every row, in schema order.
    """
    for name, columns in generate_org_columns(seed, counts, now_ms):
        yield name, rows_of(name, columns)


def generate_org_columns(seed: int, counts: dict[str, int], now_ms: int) -> Iterator[tuple[str, Columns]]:
    """The batches of `generate_org` as columns, for loading an org without a dict per row: each stored
    field, in schema order, maps to a numpy array (booleans as bool) or to one value shared by the batch."""
    plan = Plan.build(seed, default_counts(counts), now_ms)
    for name in GENERATED_OBJECTS:
        if name in _WHOLE_OBJECT_BUILDERS:
            yield name, in_schema_order(name, _WHOLE_OBJECT_BUILDERS[name](plan))
            continue
        for idx in batches(plan.row_count(name)):
            yield name, in_schema_order(name, _BATCHED_BUILDERS[name](plan, idx))


def check_counts(counts: dict[str, int]) -> None:
    for name, value in counts.items():
        if name not in COUNTABLE_OBJECTS:
            raise ValueError(f"generate_org: cannot generate object {name!r}; counts take {sorted(COUNTABLE_OBJECTS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"generate_org: count for {name} must be a non-negative integer, got {value!r}")


def in_schema_order(object_name: str, columns: Columns) -> Columns:
    """The columns keyed by every stored field of the object, in schema order."""
    names = STORED_NAMES[object_name]
    if columns.keys() != set(names):
        raise ValueError(
            f"generate_org: {object_name} columns out of step with the schema: missing "
            f"{sorted(set(names) - columns.keys())}, unexpected {sorted(columns.keys() - set(names))}")
    return {name: columns[name] for name in names}


def rows_of(object_name: str, columns: Columns) -> list[dict[str, Any]]:
    """Columns in schema order -> row dicts (booleans as 0/1)."""
    names = STORED_NAMES[object_name]
    values = []
    for name in names:
        value = columns[name]
        if isinstance(value, np.ndarray):
            values.append((value.astype(np.int8) if value.dtype == np.bool_ else value).tolist())
        else:
            values.append(itertools.repeat(value))
    return [dict(zip(names, row)) for row in zip(*values)]
