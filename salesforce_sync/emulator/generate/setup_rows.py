"""Setup rows an org is configured with: record types and the Lead status values."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from salesforce_sync.emulator.generate.draws import Columns, object_array, record_ids
from salesforce_sync.emulator.generate.plan import DAY, HISTORY_SECONDS
from salesforce_sync.emulator.generate.users import ADMIN
from salesforce_sync.emulator.schema import (
    LEAD_CONVERTED_STATUS,
    LEAD_DEFAULT_STATUS,
    LEAD_STATUSES,
    RECORD_TYPES,
    record_type_id,
)

if TYPE_CHECKING:
    from salesforce_sync.emulator.generate.plan import Plan


def active_record_type_ids(object_name: str) -> np.ndarray:
    """Ids of the object's active record types, for records to draw from."""
    return object_array(*(record_type_id(n) for n, rt in enumerate(RECORD_TYPES)
                          if rt.object_name == object_name and rt.active))


def _configured(plan: Plan) -> Columns:
    """Audit stamps of setup rows: made by the admin when the org was set up, a month before the first records."""
    set_up = (plan.now - HISTORY_SECONDS - 30 * DAY + 7200) * 1000
    admin = plan.user_ids[ADMIN]
    return {"CreatedDate": set_up, "CreatedById": admin, "LastModifiedDate": set_up, "LastModifiedById": admin,
            "SystemModstamp": set_up}


def record_type_columns(plan: Plan) -> Columns:
    return {
        "Id": record_ids("RecordType", np.arange(len(RECORD_TYPES))),
        "Name": object_array(*(rt.name for rt in RECORD_TYPES)),
        "DeveloperName": object_array(*(rt.developer_name for rt in RECORD_TYPES)), "NamespacePrefix": None,
        "Description": object_array(*(rt.description for rt in RECORD_TYPES)),
        "SobjectType": object_array(*(rt.object_name for rt in RECORD_TYPES)),
        "IsActive": np.array([rt.active for rt in RECORD_TYPES]), **_configured(plan),
    }


def lead_status_columns(plan: Plan) -> Columns:
    statuses = object_array(*LEAD_STATUSES)
    return {
        "Id": record_ids("LeadStatus", np.arange(len(statuses))), "MasterLabel": statuses, "ApiName": statuses,
        "SortOrder": np.arange(1, len(statuses) + 1), "IsDefault": statuses == LEAD_DEFAULT_STATUS,
        "IsConverted": statuses == LEAD_CONVERTED_STATUS, **_configured(plan),
    }
