"""Benchmark rebuilding a project's people: N generated records (60% Leads, a third of them converted into a
Contact, 25% Contacts, 15% CampaignMembers of a Lead; one email in five shared by two people records) upserted
into a SQLite or PostgreSQL store, then rebuild_people. Prints records/s, CPU seconds and peak RSS of the
rebuild, run in a fresh process (as a run does) so the loading's memory is not counted.

    .venv/bin/python bench/people_rebuild.py [--records 1000000] [--backend sqlite --backend postgres]

PostgreSQL runs in a throwaway database created through --admin-url and dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, text

from salesforce_sync.runs.people import rebuild_people
from salesforce_sync.store import AudienceStore, external_ids
from salesforce_sync.store.people import PeopleCounts

PROJECT = "bench"
INTEGRATION = "int7"
CHUNK = 50_000


def chunks(total: int) -> Iterator[pd.DataFrame]:
    shares = {"Lead": 0.60, "Contact": 0.25, "CampaignMember": 0.15}
    for object_type, share in shares.items():
        count = int(total * share)
        for start in range(0, count, CHUNK):
            numbers = np.arange(start, min(start + CHUNK, count))
            ids = pd.Series(np.char.mod(f"{object_type[:3]}%015d", numbers), dtype=object)
            if object_type == "Lead":
                properties = [{"converted_contact_id": f"Con{n // 3:015d}" if n % 3 == 0 else None,
                               "is_converted": n % 3 == 0} for n in numbers.tolist()]
                emails = np.char.mod("lead%d@example.com", numbers)
            elif object_type == "Contact":
                properties = [{} for _ in numbers]
                emails = np.char.mod("contact%d@example.com", numbers)
            else:
                properties = [{"lead_id": f"Lea{n * 4:015d}", "contact_id": None} for n in numbers.tolist()]
                emails = np.char.mod("lead%d@example.com", numbers * 4)
            emails = np.where(numbers % 5 == 1, np.char.mod("Shared%d@Example.com ", numbers // 10), emails)
            yield pd.DataFrame({
                "external_id": external_ids(INTEGRATION, pd.Series(object_type, index=ids.index, dtype=object), ids),
                "salesforce_id": ids, "object_type": object_type, "email": emails, "first_name": "Ada",
                "last_name": "Lovelace", "phone": None, "properties": properties, "unsubscribed": numbers % 10 == 0,
                "deleted": False, "sf_modified_at": pd.Timestamp("2024-01-01T00:00:00Z")
                + pd.to_timedelta(numbers, unit="s")})


def rebuild(url: str) -> tuple[PeopleCounts, float, float, float]:
    """One rebuild in a fresh process (as a run would do it): counts, seconds, CPU seconds, peak RSS in MB."""
    with AudienceStore(url) as store:
        started, cpu = time.perf_counter(), time.process_time()
        counts = rebuild_people(store, PROJECT)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return counts, seconds, cpu, peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's own peak RSS (Linux VmHWM; ru_maxrss would count the parent a spawned process forked from)."""
    return int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024


def bench(url: str, label: str, total: int) -> None:
    with AudienceStore(url) as store:
        store.create_schema()
        loaded = store.upsert_stream(PROJECT, INTEGRATION, chunks(total))
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        idle = pool.apply(peak_rss_mb)
    print(f"{label}: {loaded.imported:,} records loaded; a fresh process with the product imported holds "
          f"{idle:,.0f} MB", flush=True)
    for attempt in ("first", "again"):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            counts, seconds, cpu, peak = pool.apply(rebuild, (url,))
        print(f"{label}: rebuild ({attempt}) of {counts.records:,} records into {counts.people:,} people "
              f"({counts.merged:,} merged) in {seconds:.1f} s ({cpu:.1f} s CPU) = {counts.records / seconds:,.0f} "
              f"records/s; peak RSS of the rebuilding process {peak:,.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--backend", action="append", choices=("sqlite", "postgres"))
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    for backend in args.backend or ["sqlite"]:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                bench(f"sqlite:///{Path(folder) / 'audience.db'}", "sqlite", args.records)
            continue
        admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
        name = f"bench_people_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            bench(admin.url.set(database=name).render_as_string(hide_password=False), "postgres", args.records)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
