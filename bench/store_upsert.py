"""Benchmark the audience store's upsert: 1,000,000 generated records in 50,000-row chunks, then a
re-sync of the same records with 1% changed, on SQLite and on PostgreSQL. Prints rows/s and peak RSS.

    .venv/bin/python bench/store_upsert.py [--rows 1000000] [--chunk 50000] [--backend sqlite --backend postgres]

PostgreSQL runs in a throwaway database created through --admin-url and dropped afterwards.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from salesforce_sync.store import AudienceStore, UpsertCounts, external_ids

PROJECT = "bench"
INTEGRATION = "int7"
BASE_TIME = pd.Timestamp("2024-01-01T00:00:00Z")


def generate_chunks(
    total: int, chunk_size: int, changed_share: float = 0.0, version: int = 1
) -> Iterator[pd.DataFrame]:
    """Leads with realistic-looking fields; with changed_share > 0 that share is modified `version` hours later."""
    rng = np.random.default_rng(7)
    for start in range(0, total, chunk_size):
        numbers = np.arange(start, min(start + chunk_size, total))
        salesforce_ids = pd.Series(np.char.mod("00Q5g%013d", numbers), dtype=object)
        object_types = pd.Series("Lead", index=salesforce_ids.index, dtype=object)
        changed = rng.random(len(numbers)) < changed_share
        modified = (
            BASE_TIME
            + pd.to_timedelta(numbers % 86_400, unit="s")
            + pd.to_timedelta(changed * 3600 * version, unit="s")
        )
        yield pd.DataFrame(
            {
                "external_id": external_ids(INTEGRATION, object_types, salesforce_ids),
                "salesforce_id": salesforce_ids,
                "object_type": object_types,
                "email": np.char.mod("person%d@example.com", numbers),
                "first_name": np.where(numbers % 2 == 0, "Ada", "Grace"),
                "last_name": np.where(changed, "Changed", "Lovelace"),
                "phone": np.where(numbers % 3 == 0, None, "+1 555 0100"),
                "properties": [
                    {"Company": "Acme", "AnnualRevenue": float(number), "Tags": ["b2b", "eu"], "Since": "2020-05-01"}
                    for number in numbers.tolist()
                ],
                "unsubscribed": numbers % 10 == 0,
                "deleted": numbers % 97 == 0,
                "sf_modified_at": modified,
            }
        )


def run_pass(
    store: AudienceStore, label: str, chunks: Iterator[pd.DataFrame], *, streamed: bool, project: str = PROJECT
) -> None:
    """Time upsert_users chunk by chunk (generation excluded), or upsert_stream over the whole generator."""
    rows = 0
    upsert_seconds = 0.0

    def counted(source: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        nonlocal rows
        for chunk in source:
            rows += len(chunk)
            yield chunk

    started = time.perf_counter()
    if streamed:
        totals = store.upsert_stream(project, INTEGRATION, counted(chunks))
        upsert_seconds = time.perf_counter() - started
        timing = f"stream {upsert_seconds:6.1f} s = {rows / upsert_seconds:>9,.0f} rows/s, generation included"
    else:
        totals = UpsertCounts()
        for chunk in counted(chunks):
            before = time.perf_counter()
            totals += store.upsert_users(project, INTEGRATION, chunk)
            upsert_seconds += time.perf_counter() - before
        elapsed = time.perf_counter() - started
        timing = (
            f"upsert {upsert_seconds:6.1f} s = {rows / upsert_seconds:>9,.0f} rows/s"
            f" (generation included: {rows / elapsed:>7,.0f} rows/s)"
        )
    print(f"  {label:<34} {rows:>9,} rows  {timing}  peak RSS {peak_rss_mb():,.0f} MB")
    print(
        f"  {'':<34} imported {totals.imported:,}  updated {totals.updated:,}  deleted {totals.deleted:,}"
        f"  skipped {totals.skipped:,}"
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bench(store: AudienceStore, rows: int, chunk_size: int) -> None:
    store.create_schema()
    run_pass(store, "initial load, upsert_users", generate_chunks(rows, chunk_size), streamed=False)
    run_pass(store, "re-sync 1% changed, upsert_users", generate_chunks(rows, chunk_size, 0.01), streamed=False)
    run_pass(store, "re-sync 1% changed, upsert_stream", generate_chunks(rows, chunk_size, 0.01, 2), streamed=True)
    # A second project, so the streamed initial load also inserts fresh keys (into a table already holding 1M).
    run_pass(store, "initial load, upsert_stream", generate_chunks(rows, chunk_size), streamed=True, project="bench-2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgres"])
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    arguments = parser.parse_args()
    print(f"audience store upsert benchmark: {arguments.rows:,} rows in chunks of {arguments.chunk:,}")

    for backend in arguments.backend or ["sqlite", "postgres"]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                print("SQLite (file, WAL)")
                with AudienceStore(f"sqlite:///{Path(folder) / 'bench.db'}") as store:
                    bench(store, arguments.rows, arguments.chunk)
        else:
            database = f"bench_store_{uuid.uuid4().hex[:12]}"
            admin = create_engine(arguments.admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{database}"'))
            try:
                print("PostgreSQL")
                url = admin.url.set(database=database).render_as_string(hide_password=False)
                with AudienceStore(url) as store:
                    bench(store, arguments.rows, arguments.chunk)
            finally:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
