"""Re-read values written into stored rows without moving their version (a formula refresh), on SQLite and
PostgreSQL: only live rows at the version they were read against change, and a later sync of the same content
finds nothing to do while one with other content still applies."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from salesforce_sync.store import AudienceStore, UpsertCounts
from salesforce_sync_tests.store.conftest import INTEGRATION

PROJECT = "p1"


def test_live_rows_at_the_read_version_take_the_new_values_and_a_later_sync_agrees(
        store: AudienceStore, make_chunk: Callable[..., pd.DataFrame]) -> None:
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["00Q1", "00Q2", "00Q3", "00Q4"],
                                                         deleted=[False, False, False, True]))
    live = store.live_rows(PROJECT, INTEGRATION, "Lead", ["00Q1", "00Q2", "00Q3", "00Q4", "00Q9"])
    assert list(live["salesforce_id"]) == ["00Q1", "00Q2", "00Q3"]  # deleted and unknown rows are not live
    assert live.at[0, "properties"] == {"Company": "Acme"} and str(live["sf_modified_at"].dtype) == "datetime64[us, UTC]"
    # A sync rewrites 00Q2 with a newer version between the read and the write.
    store.upsert_users(PROJECT, INTEGRATION, make_chunk(["00Q2"], modified="2024-06-01T00:00:00Z"))
    refreshed = live.copy()
    # 00Q3 keeps its content: no write.
    refreshed["properties"] = [{"Company": "Globex"}, {"Company": "Globex"}, {"Company": "Acme"}]

    assert store.apply_refreshed(PROJECT, INTEGRATION, refreshed) == 1

    rows = store.users(PROJECT, INTEGRATION, "Lead").set_index("salesforce_id")
    assert rows.at["00Q1", "properties"] == {"Company": "Globex"}
    assert rows.at["00Q1", "sf_modified_at"] == live.at[0, "sf_modified_at"]  # the version stays
    assert rows.at["00Q2", "properties"] == {"Company": "Acme"}  # the sync's newer row is left alone
    assert rows.at["00Q4", "deleted"]
    # The same content at the same version later: nothing to apply; other content still applies.
    same = make_chunk(["00Q1"], properties=[{"Company": "Globex"}])
    assert store.upsert_users(PROJECT, INTEGRATION, same) == UpsertCounts(skipped=1)
    other = make_chunk(["00Q1"], properties=[{"Company": "Initech"}])
    assert store.upsert_users(PROJECT, INTEGRATION, other) == UpsertCounts(updated=1)
    assert store.apply_refreshed(PROJECT, INTEGRATION, refreshed.iloc[:0]) == 0
