"""Sync benchmark: a full sync of N Leads (default 1,000,000) from an emulated org into PostgreSQL and into
SQLite, then an incremental sync after 1% of them change. Prints records/s, API calls and peak memory.

    .venv/bin/python bench/sync_throughput.py [--leads N] [--skip-postgres]

The emulator runs in its own process, so the peak RSS printed is the sync's own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from salesforce_sync.config.loader import parse_config
from salesforce_sync.emulator.org import Org
from salesforce_sync.runs.health import preflight
from salesforce_sync.runs.window import SyncWindow, apply_window, plan_window
from salesforce_sync.runs.connection import connect
from salesforce_sync.store import AudienceStore

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
CONFIG = """
projects: [bench]
integrations:
  - id: bench
    project: bench
    environment: {login_url}
    ca_file: {ca_file}
    auth: {{method: refresh_token, client_id_env: BENCH_CLIENT_ID, client_secret_env: BENCH_CLIENT_SECRET,
            refresh_token_env: BENCH_REFRESH_TOKEN}}
    start: 2026-01-01
    objects:
      Lead:
        sync_rules: {{match: all, rules: []}}
        field_mappings:
          - {{field: Company, property: company, type: string}}
          - {{field: Lead_Score__c, property: lead_score, type: number}}
          - {{field: Interests__c, property: interests, type: array}}
          - {{field: Newsletter_Signup__c, property: newsletter_signup, type: date}}
"""


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(state_file: Path, leads: int) -> tuple[subprocess.Popen, dict]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0", "--leads", str(leads),
         "--contacts", "0", "--campaign-members", "0", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, text=True)
    info = json.loads(process.stdout.readline())
    print(f"emulator: {leads:,} Leads generated and loaded in {time.perf_counter() - started:.1f} s")
    return process, info


def sync(integration, store: AudienceStore, window: SyncWindow, label: str) -> None:
    started = time.perf_counter()
    with connect(integration) as client:
        calls_at_start = client.api_calls
        describes = preflight(client, integration, "Lead")
        plan = plan_window(client, integration, "Lead", window, describes, calls_at_start=calls_at_start)
        result = apply_window(store, plan, run_id=f"bench-{uuid.uuid4().hex[:6]}")
    seconds = time.perf_counter() - started
    records = result.counts.imported + result.counts.updated + result.counts.deleted + result.counts.skipped
    print(f"  {label}: {records:,} records via {'Bulk 2.0' if plan.use_bulk else 'REST'} in {seconds:.1f} s = "
          f"{records / seconds:,.0f} records/s; {result.api_calls} API calls; imported {result.counts.imported:,}, "
          f"updated {result.counts.updated:,}, deleted {result.counts.deleted:,}, unchanged {result.counts.skipped:,}; "
          f"peak RSS so far {peak_rss_mb():.0f} MB")


def change_one_percent(state_file: Path, leads: int) -> None:
    org = Org(state_file)
    with org.read() as conn:
        ids = [row[0] for row in conn.execute('SELECT "Id" FROM "Lead" WHERE "IsDeleted" = 0 AND rowid % 100 = 0')]
    results = org.apply_dml([("update", "Lead", {"Id": i, "Title": "Changed for the benchmark"}) for i in ids],
                            all_or_none=False)
    org.close()
    print(f"changed {sum(r['success'] for r in results):,} of {leads:,} Leads (1%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    process, info = serve(work / "org.sqlite", args.leads)
    os.environ.update({"BENCH_CLIENT_ID": info["client_id"], "BENCH_CLIENT_SECRET": info["client_secret"],
                       "BENCH_REFRESH_TOKEN": info["refresh_token"]})
    integration = parse_config(CONFIG.format(login_url=info["login_url"], ca_file=info["ca_file"]),
                               source_name="bench").integration("bench")
    stores: list[tuple[str, str]] = [("SQLite", f"sqlite:///{work / 'audience.db'}")]
    admin = None
    if not args.skip_postgres:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        database = f"sync_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        stores.insert(0, ("PostgreSQL", admin.url.set(database=database).render_as_string(hide_password=False)))
    try:
        full_end = datetime.now(UTC) + timedelta(minutes=1)
        for name, url in stores:
            store = AudienceStore(url)
            store.create_schema()
            print(f"{name}:")
            sync(integration, store, SyncWindow(integration.start, full_end, first=True, full=True), "full sync")
            store.close()
        change_one_percent(work / "org.sqlite", args.leads)
        incremental = SyncWindow(full_end, datetime.now(UTC) + timedelta(minutes=2))
        for name, url in stores:
            store = AudienceStore(url)
            print(f"{name}:")
            sync(integration, store, incremental, "incremental sync after 1% changed")
            store.close()
    finally:
        process.terminate()
        process.wait()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
