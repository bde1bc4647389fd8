"""Setup rows an org is configured with: record types and the Lead status values."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from salesforce_sync.emulator.generate.draws import Columns, object_array, record_ids
from salesforce_sync.emulator.generate.plan import DAY, HISTORY_SECONDS
from salesforce_sync.emulator.generate.users import ADMIN
from salesforce_sync.emulator.schema import LEAD_CONVERTED_STATUS, LEAD_DEFAULT_STATUS, LEAD_STATUSES

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan

RECORD_TYPES = (
    # object, name, developer name, description, active
    ("Account", "Customer", "Customer", "Companies that buy from us", True),
    ("Account", "Partner", "Partner", "Resellers and referral partners", True),
    ("Opportunity", "New Business", "New_Business", "A first sale to a new customer", True),
    ("Opportunity", "Renewal", "Renewal", None, True),
    ("Opportunity", "Legacy Deal", "Legacy_Deal", "Imported from the old CRM; no longer used", False),
)


def active_record_type_ids(object_name: str) -> np.ndarray:
    """Ids of the object's active record types, for records to draw from."""
    numbers = [n for n, (obj, *_rest, active) in enumerate(RECORD_TYPES) if obj == object_name and active]
    return record_ids("RecordType", np.array(numbers, dtype=np.int64))


def _configured(plan: Plan) -> Columns:
    """Audit stamps of setup rows: made by the admin when the org was set up, a month before the first records."""
    set_up = (plan.now - HISTORY_SECONDS - 30 * DAY + 7200) * 1000
    admin = plan.user_ids[ADMIN]
    return {"CreatedDate": set_up, "CreatedById": admin, "LastModifiedDate": set_up, "LastModifiedById": admin,
            "SystemModstamp": set_up}


def record_type_columns(plan: Plan) -> Columns:
    objects, names, developer_names, descriptions, active = (object_array(*v) for v in zip(*RECORD_TYPES))
    return {
        "Id": record_ids("RecordType", np.arange(len(RECORD_TYPES))), "Name": names,
        "DeveloperName": developer_names, "NamespacePrefix": None, "Description": descriptions,
        "SobjectType": objects, "IsActive": active.astype(bool), **_configured(plan),
    }


def lead_status_columns(plan: Plan) -> Columns:
    statuses = object_array(*LEAD_STATUSES)
    return {
        "Id": record_ids("LeadStatus", np.arange(len(statuses))), "MasterLabel": statuses, "ApiName": statuses,
        "SortOrder": np.arange(1, len(statuses) + 1), "IsDefault": statuses == LEAD_DEFAULT_STATUS,
        "IsConverted": statuses == LEAD_CONVERTED_STATUS, **_configured(plan),
    }
