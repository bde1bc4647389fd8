"""A process killed in the middle of a chunk leaves only whole chunks behind (real PostgreSQL, real SIGKILL)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine, text

import salesforce_sync
from salesforce_sync.store import AudienceStore, UpsertCounts

PROJECT = "proj"
INTEGRATION = "int1"
UPSERT_IN_CHILD = """
import sys
import pandas as pd
from salesforce_sync.store import AudienceStore
url, chunk_path = sys.argv[1], sys.argv[2]
with AudienceStore(url) as store:
    store.upsert_users("proj", "int1", pd.read_pickle(chunk_path))
print("committed", flush=True)
"""


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
def test_killed_mid_chunk_leaves_only_whole_chunks(
    postgres_database_url: str, make_chunk: Callable[..., pd.DataFrame], tmp_path: Path
) -> None:
    url = postgres_database_url
    first_ids = [f"ID{number:05d}" for number in range(1000)]
    # The second chunk inserts 500 new keys and updates 500 stored ones; the last row's key is locked
    # below, so the child blocks inside the upsert statement after writing the rows before it.
    locked_id = first_ids[-1]
    second_ids = [f"ID{number:05d}" for number in range(1000, 1500)] + first_ids[500:-1] + [locked_id]
    second_chunk = make_chunk(second_ids, modified="2024-05-02T00:00:00Z", first_name="second")
    second_chunk.to_pickle(tmp_path / "second.pkl")
    engine = create_engine(url)

    with AudienceStore(url) as store:
        store.create_schema()
        with engine.begin() as connection:
            connection.execute(text("TRUNCATE audience_users"))
        store.upsert_users(PROJECT, INTEGRATION, make_chunk(first_ids, modified="2024-05-01T00:00:00Z"))
        after_first_chunk = store.users(PROJECT)

        with engine.connect() as locker:
            locker.execute(
                text("SELECT 1 FROM audience_users WHERE project = :p AND external_id = :k FOR UPDATE"),
                {"p": PROJECT, "k": f"sf_{INTEGRATION}_Lead_{locked_id}"},
            )
            child = subprocess.Popen(
                [sys.executable, "-c", UPSERT_IN_CHILD, url, str(tmp_path / "second.pkl")],
                cwd=Path(salesforce_sync.__file__).parents[1],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                blocked_pid = wait_for(
                    lambda: _backend_waiting_on_lock(engine), "the child's upsert to block on the lock"
                )
            finally:
                child.kill()
                child.wait()
            locker.rollback()

        wait_for(lambda: not _backend_alive(engine, blocked_pid), "the killed client's backend to end")
        assert child.returncode != 0
        assert b"committed" not in child.stdout.read()
        pd.testing.assert_frame_equal(store.users(PROJECT), after_first_chunk)

        rerun = store.upsert_users(PROJECT, INTEGRATION, second_chunk)

        assert rerun == UpsertCounts(imported=500, updated=500)
        final = store.users(PROJECT).set_index("salesforce_id")
        assert len(final) == 1500
        assert final.loc[second_ids, "first_name"].eq("second").all()
        assert final.loc[first_ids[:500], "first_name"].eq("Ada").all()
    engine.dispose()


def _backend_waiting_on_lock(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO audience_users%'"
            )
        ).scalar()


def _backend_alive(engine: Engine, pid: int) -> bool:
    with engine.connect() as connection:
        return (
            connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar()
            > 0
        )
