"""Fixtures: an AudienceStore on each backend (from the root `store_url`), and a chunk builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pytest

from salesforce_sync.store import AudienceStore, external_ids

INTEGRATION = "int1"


@pytest.fixture
def store(store_url: str) -> Iterator[AudienceStore]:
    with AudienceStore(store_url) as opened:
        yield opened


@pytest.fixture
def make_chunk() -> Callable[..., pd.DataFrame]:
    """Build a valid chunk of Leads (or another object) from per-row overrides."""

    def build(
        salesforce_ids: list[str],
        *,
        modified: str | list[str] = "2024-05-01T10:00:00Z",
        deleted: bool | list[bool] = False,
        object_type: str = "Lead",
        integration_id: str = INTEGRATION,
        **columns: Any,
    ) -> pd.DataFrame:
        count = len(salesforce_ids)
        ids = pd.Series(salesforce_ids, dtype=object)
        frame = pd.DataFrame(
            {
                "external_id": external_ids(integration_id, pd.Series([object_type] * count, dtype=object), ids),
                "salesforce_id": ids,
                "object_type": object_type,
                "email": [f"{sf_id.lower()}@example.com" for sf_id in salesforce_ids],
                "first_name": "Ada",
                "last_name": "Lovelace",
                "phone": None,
                "properties": [{"Company": "Acme"} for _ in salesforce_ids],
                "unsubscribed": None,
                "deleted": deleted,
                "sf_modified_at": pd.to_datetime(
                    modified if isinstance(modified, list) else [modified] * count, utc=True, format="ISO8601"
                ),
            }
        )
        for name, values in columns.items():
            frame[name] = values
        return frame

    return build
