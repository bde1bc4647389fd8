"""The demo's write-back sources, loaded into the audience store the first time the demo needs them: a few
prospects (`audience_prospects`, one with an email Salesforce refuses, so `salesforce-sync rejected` has something
to show) and their activities (`audience_activities`: calls, emails, a touchpoint, a meeting and a visit, and one
whose person is nobody the org knows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.store import AudienceStore

DEMO_DIRECTORY = Path(__file__).resolve().parent
#: The demo's write-back sources: table name -> the CSV file it is loaded from.
DEMO_SOURCES = {"audience_prospects": DEMO_DIRECTORY / "audience_prospects.csv",
                "audience_activities": DEMO_DIRECTORY / "audience_activities.csv"}


def ensure_demo_source(store: AudienceStore, integration: IntegrationConfig) -> bool:
    """Load the demo tables an emulated integration's write-back reads and the store lacks; True when any was."""
    write_back = integration.write_back
    if write_back is None or integration.environment_kind != "emulator":
        return False
    sources = [*write_back.objects.values(), *([write_back.activities] if write_back.activities else [])]
    loaded = False
    for table in sorted({source.table for source in sources if source.table in DEMO_SOURCES}):
        rows = pd.read_csv(DEMO_SOURCES[table], dtype=str, keep_default_na=False).replace("", None)
        loaded = store.write_back.load_table_if_missing(table, rows) or loaded
    return loaded
