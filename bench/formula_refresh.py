"""Formula refresh benchmark: N Contacts (default 200,000) mapping the formula Account_Tier__c and the path
Account.Name, fully synced into PostgreSQL and SQLite; then the tier of 1% of the Accounts changes (the Contacts'
stamps stay) and a formula refresh re-reads every Contact. Prints records read/s, rows changed, API calls and
peak memory.

    .venv/bin/python bench/formula_refresh.py [--contacts N] [--skip-postgres]

The emulator runs in its own process, so the peak RSS printed is the refresh's own.
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
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.formula_refresh import refresh_formulas
from salesforce_sync.runs.health import preflight
from salesforce_sync.runs.lease import cli_holder
from salesforce_sync.runs.window import SyncWindow, apply_window, plan_window
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
      Contact:
        sync_rules: {{match: all, rules: []}}
        field_mappings:
          - {{field: Account_Tier__c, property: account_tier, type: string}}
          - {{field: Account.Name, property: company, type: string}}
          - {{field: Lifetime_Value__c, property: lifetime_value, type: number}}
"""
TIERS = ("Gold", "Silver", "Bronze")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def serve(state_file: Path, contacts: int) -> tuple[subprocess.Popen, dict]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0", "--leads", "0",
         "--contacts", str(contacts), "--campaign-members", "0", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, text=True)
    info = json.loads(process.stdout.readline())
    print(f"emulator: {contacts:,} Contacts generated and loaded in {time.perf_counter() - started:.1f} s")
    return process, info


def full_sync(integration, store: AudienceStore, end: datetime) -> None:
    started = time.perf_counter()
    with connect(integration) as client:
        describes = preflight(client, integration, "Contact")
        window = SyncWindow(integration.start, end, first=True, full=True)
        result = apply_window(store, plan_window(client, integration, "Contact", window, describes), run_id="bench")
    print(f"  full sync: {result.counts.imported + result.counts.deleted:,} Contacts in "
          f"{time.perf_counter() - started:.1f} s")


def change_tiers(state_file: Path) -> int:
    """A new tier for 1% of the Accounts; returns the live Contacts whose formula value changes."""
    org = Org(state_file)
    with org.read() as conn:
        accounts = list(conn.execute('SELECT "Id", "Tier__c" FROM "Account" WHERE "IsDeleted" = 0 AND rowid % 100 = 0'))
        listed = ", ".join(f"'{account_id}'" for account_id, _ in accounts)
        affected = conn.execute(f'SELECT COUNT(*) FROM "Contact" WHERE "IsDeleted" = 0 AND "AccountId" IN ({listed})'
                                ).fetchone()[0]
    org.apply_dml([("update", "Account", {"Id": account_id, "Tier__c": next(t for t in TIERS if t != tier)})
                   for account_id, tier in accounts], all_or_none=False)
    org.close()
    print(f"changed the tier of {len(accounts):,} Accounts (1%), the formula of {affected:,} Contacts")
    return affected


def refresh(integration, store: AudienceStore) -> None:
    started = time.perf_counter()
    with connect(integration) as client:
        [result] = refresh_formulas(store, client, integration, cli_holder(), say=lambda _line: None)
    seconds = time.perf_counter() - started
    print(f"  formula refresh: {result.rows_read:,} records read via {'Bulk 2.0' if result.bulk else 'REST'} in "
          f"{seconds:.1f} s = {result.rows_read / seconds:,.0f} records/s; {result.rows_changed:,} rows changed; "
          f"{result.api_calls} API calls; peak RSS so far {peak_rss_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="formula-bench-"))
    process, info = serve(work / "org.sqlite", args.contacts)
    os.environ.update({"BENCH_CLIENT_ID": info["client_id"], "BENCH_CLIENT_SECRET": info["client_secret"],
                       "BENCH_REFRESH_TOKEN": info["refresh_token"]})
    integration = parse_config(CONFIG.format(login_url=info["login_url"], ca_file=info["ca_file"]),
                               source_name="bench").integration("bench")
    stores: list[tuple[str, str]] = [("SQLite", f"sqlite:///{work / 'audience.db'}")]
    admin = None
    if not args.skip_postgres:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        database = f"formula_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        stores.insert(0, ("PostgreSQL", admin.url.set(database=database).render_as_string(hide_password=False)))
    try:
        end = datetime.now(UTC) + timedelta(minutes=1)
        for name, url in stores:
            with AudienceStore(url) as store:
                store.create_schema()
                print(f"{name}:")
                full_sync(integration, store, end)
        change_tiers(work / "org.sqlite")
        for name, url in stores:
            with AudienceStore(url) as store:
                print(f"{name}:")
                refresh(integration, store)
                refresh(integration, store)
    finally:
        process.terminate()
        process.wait()
        if admin is not None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
