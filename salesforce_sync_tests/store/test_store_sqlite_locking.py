"""SQLite with several writers (Dagster runs) on one file: writers queue, readers never wait."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from salesforce_sync.store import AudienceStore, UpsertCounts


def test_concurrent_writers_queue_instead_of_failing(tmp_path: Path, make_chunk: Callable[..., pd.DataFrame]) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with AudienceStore(url) as setup:
        setup.create_schema()

    def write(integration_id: str) -> UpsertCounts:
        with AudienceStore(url) as store:  # its own engine and connections, like another process
            totals = UpsertCounts()
            for start in range(0, 2000, 200):
                ids = [f"ID{number:05d}" for number in range(start, start + 200)]
                totals += store.upsert_users("proj", integration_id, make_chunk(ids, integration_id=integration_id))
            return totals

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(write, ["int1", "int2", "int3"]))

    assert results == [UpsertCounts(imported=2000)] * 3
    with AudienceStore(url) as store:
        assert store.user_counts("proj")["users"].tolist() == [2000, 2000, 2000]


def test_reads_do_not_wait_for_a_writer(tmp_path: Path, make_chunk: Callable[..., pd.DataFrame]) -> None:
    database = tmp_path / "store.db"
    with AudienceStore(f"sqlite:///{database}") as store:
        store.create_schema()
        store.upsert_users("proj", "int1", make_chunk(["A"]))
        writer = sqlite3.connect(database, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock, mid-chunk
        writer.execute("UPDATE audience_users SET first_name = 'uncommitted'")
        try:
            started = time.monotonic()
            users = store.users("proj")
            state = store.get_state("int1")
            elapsed = time.monotonic() - started
        finally:
            writer.execute("ROLLBACK")
            writer.close()

    assert users["first_name"].tolist() == ["Ada"]  # the committed version
    assert state is None
    assert elapsed < 5  # the busy timeout is 60 s: a read that queued behind the writer would take that long
