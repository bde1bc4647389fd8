"""External ids of store rows: `sf_<integrationId>_<objectType>_<salesforceId>`.

The integration id is part of the key so two orgs feeding one project never overwrite each other's
people, and the object type keeps a Lead and a Contact of the same person apart.
"""

from __future__ import annotations

import pandas as pd


def external_id(integration_id: str, object_type: str, salesforce_id: str) -> str:
    """The store key of one Salesforce record."""
    return f"{external_id_prefix(integration_id, object_type)}{salesforce_id}"


def external_id_prefix(integration_id: str, object_type: str) -> str:
    """What every external id of one integration's object starts with (for scoped deletes/lookups)."""
    return f"sf_{integration_id}_{object_type}_"


def external_ids(integration_id: str, object_type: str, salesforce_ids: pd.Series) -> pd.Series:
    """Vectorised `external_id` over a Series of Salesforce ids."""
    return external_id_prefix(integration_id, object_type) + salesforce_ids.astype(object)
