"""The demo's write-back source: a few prospects in the audience store's `audience_prospects` table, loaded the
first time the demo needs it (one of them with an email Salesforce refuses, so `salesforce-sync rejected` has
something to show)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.store import AudienceStore

DEMO_SOURCE_TABLE = "audience_prospects"
DEMO_SOURCE_FILE = Path(__file__).resolve().parent / "audience_prospects.csv"


def ensure_demo_source(store: AudienceStore, integration: IntegrationConfig) -> bool:
    """Load the demo prospects when an emulated integration's write-back reads the missing demo table."""
    write_back = integration.write_back
    if write_back is None or integration.environment_kind != "emulator":
        return False
    if not any(source.table == DEMO_SOURCE_TABLE for source in write_back.objects.values()):
        return False
    rows = pd.read_csv(DEMO_SOURCE_FILE, dtype=str, keep_default_na=False).replace("", None)
    return store.write_back.load_table_if_missing(DEMO_SOURCE_TABLE, rows)
