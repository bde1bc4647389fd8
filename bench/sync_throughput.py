"""Sync benchmark: a full sync of N Leads (default 1,000,000) from an emulated org into PostgreSQL and into
SQLite, each next to the database's own limit on the same rows measured in the same run, then an incremental
sync after 1% of them change.

    .venv/bin/python bench/sync_throughput.py [--leads N] [--runs 3] [--backend postgres --backend sqlite]

Each full sync runs in a fresh process (its peak RSS and CPU seconds are its own) into a fresh database. The
limit is what the database does with the rows that sync stored, pre-built in memory: on PostgreSQL COPY into a
staging table and INSERT ... ON CONFLICT DO UPDATE, on SQLite an executemany upsert, 50,000 rows per
transaction, into another fresh database. Printed per run and as the median (min-max) of the runs: records/s,
the limit's rows/s and the ratio, API calls, the sync's peak RSS, and CPU seconds per 100,000 records of the
sync process, the emulator and the database server (SQLite works inside the sync process).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

POSTGRES_ADMIN_URL = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
CHUNK_ROWS = 50_000
KEY_COLUMNS = ("project", "external_id")
CONFIG = """
projects: [bench]
integrations:
  - id: bench
    project: bench
    environment: {login_url}
    ca_file: {ca_file}
    auth: {{method: refresh_token, client_id_env: BENCH_CLIENT_ID, client_secret_env: BENCH_CLIENT_SECRET,
            refresh_token_env: BENCH_REFRESH_TOKEN}}
    start: {start}
    objects:
      Lead:
        sync_rules: {{match: all, rules: [{rules}]}}
        field_mappings:
          - {{field: Company, property: company, type: string}}
          - {{field: Lead_Score__c, property: lead_score, type: number}}
          - {{field: Interests__c, property: interests, type: array}}
          - {{field: Newsletter_Signup__c, property: newsletter_signup, type: date}}
"""
NO_RECORD_RULE = "{field: Company, operator: equals, value: 'No company has this name'}"
"""A rule no emulated Lead matches: a sync that reads nothing shows the fixed cost of a sync."""


def config_text(info: dict[str, Any], rules: str = "", start: str = "2026-01-01") -> str:
    """The benchmark's integration; every record was created before `start`, and its first window reads them."""
    return CONFIG.format(login_url=info["login_url"], ca_file=info["ca_file"], rules=rules, start=start)


def credentials_env(info: dict[str, Any]) -> dict[str, str]:
    return {"BENCH_CLIENT_ID": info["client_id"], "BENCH_CLIENT_SECRET": info["client_secret"],
            "BENCH_REFRESH_TOKEN": info["refresh_token"]}


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(engine: Any, database: str) -> dict[int, float]:
    """CPU seconds of each live PostgreSQL backend serving `database`, by pid."""
    with engine.connect() as connection:
        pids = connection.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :database"),
                                  {"database": database}).scalars().all()
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = process_cpu_seconds(pid)
        except OSError:
            pass  # ended meanwhile
    return seconds


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started its program (VmHWM: unlike ru_maxrss, not
    inherited from the process that forked it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def serve(state_file: Path, leads: int) -> tuple[subprocess.Popen, dict]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0", "--leads", str(leads),
         "--contacts", "0", "--campaign-members", "0", "--state-file", str(state_file)],
        stdout=subprocess.PIPE, text=True)
    info = json.loads(process.stdout.readline())
    print(f"emulator: {leads:,} Leads generated and loaded in {time.perf_counter() - started:.1f} s")
    return process, info


def sync_in_process(config: str, env: dict[str, str], url: str, start: str, end: str, full: bool) -> dict[str, Any]:
    """One window synced by this (fresh) process as the pipeline syncs it; its own figures."""
    from salesforce_sync.config.loader import parse_config
    from salesforce_sync.runs.connection import connect
    from salesforce_sync.runs.health import preflight
    from salesforce_sync.runs.window import SyncWindow, apply_window, plan_window
    from salesforce_sync.store import AudienceStore

    os.environ.update(env)
    integration = parse_config(config, source_name="bench").integration("bench")
    window = SyncWindow(datetime.fromisoformat(start), datetime.fromisoformat(end), first=full, full=full)
    store = AudienceStore(url)
    store.create_schema()
    engine = create_engine(url) if url.startswith("postgresql") else None
    database = engine.url.database if engine else None
    backends = postgres_cpu_seconds(engine, database) if engine else {}
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    with connect(integration) as client:
        calls_at_start = client.api_calls
        describes = preflight(client, integration, "Lead")
        plan = plan_window(client, integration, "Lead", window, describes, calls_at_start=calls_at_start)
        result = apply_window(store, plan, run_id=f"bench-{uuid.uuid4().hex[:6]}", say=lambda _: None)
    seconds = time.perf_counter() - started
    used = resource.getrusage(resource.RUSAGE_SELF)
    database_cpu = None
    if engine is not None:
        database_cpu = sum(value - backends.get(pid, 0.0)
                           for pid, value in postgres_cpu_seconds(engine, database).items())
        engine.dispose()
    store.close()
    counts = result.counts
    return {"records": counts.imported + counts.updated + counts.deleted + counts.skipped, "seconds": seconds,
            "api_calls": result.api_calls, "bulk": plan.use_bulk, "counts": counts,
            "cpu": used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime, "database_cpu": database_cpu,
            "peak_rss_mb": peak_rss_mb()}


@dataclass
class Figures:
    """One sync measured next to its database's limit."""

    records: int
    seconds: float
    api_calls: int | None
    peak_rss_mb: float
    sync_cpu: float
    emulator_cpu: float
    database_cpu: float | None
    limit_rows_per_second: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds

    @property
    def ratio(self) -> float:
        return self.rate / self.limit_rows_per_second

    def per_100k(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds * 100_000 / max(self.records, 1)

    def line(self) -> str:
        database = self.per_100k(self.database_cpu)
        calls = "" if self.api_calls is None else f"{self.api_calls} API calls; "
        return (f"{self.records:,} records in {self.seconds:.1f} s = {self.rate:,.0f} records/s, "
                f"{self.ratio:.2f} of the limit ({self.limit_rows_per_second:,.0f} rows/s); {calls}peak RSS "
                f"{self.peak_rss_mb:.0f} MB; CPU s per 100k records: sync {self.per_100k(self.sync_cpu):.2f}, "
                f"emulator {self.per_100k(self.emulator_cpu):.2f}, database "
                + ("in the sync process" if database is None else f"{database:.2f}"))


def spread(values: list[float], form: str) -> str:
    """Median (min-max)."""
    return f"{format(statistics.median(values), form)} ({format(min(values), form)}-{format(max(values), form)})"


def summary(runs: list[Figures]) -> str:
    """Median (min-max) of each figure over the runs."""
    database = [run.per_100k(run.database_cpu) for run in runs]
    calls = "" if runs[0].api_calls is None else f"{spread([r.api_calls for r in runs], '.0f')} API calls; "
    return (f"median of {len(runs)} runs (min-max): {spread([r.rate for r in runs], ',.0f')} records/s = "
            f"{spread([r.ratio for r in runs], '.2f')} of the limit "
            f"{spread([r.limit_rows_per_second for r in runs], ',.0f')} rows/s; {calls}peak RSS "
            f"{spread([r.peak_rss_mb for r in runs], '.0f')} MB; CPU s per 100k records: sync "
            f"{spread([r.per_100k(r.sync_cpu) for r in runs], '.2f')}, emulator "
            f"{spread([r.per_100k(r.emulator_cpu) for r in runs], '.2f')}, database "
            + ("in the sync process" if None in database else spread(database, ".2f")))


class Databases:
    """Fresh databases for one backend, dropped (PostgreSQL) when the benchmark ends."""

    def __init__(self, backend: str, work: Path) -> None:
        self.backend, self.work = backend, work
        self.created: list[str] = []
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT") if backend == "postgres" else None

    def fresh(self) -> str:
        name = f"sync_bench_{uuid.uuid4().hex[:8]}"
        if self.admin is None:
            return f"sqlite:///{self.work / (name + '.db')}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if self.admin is not None:
            with self.admin.connect() as connection:
                for name in self.created:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            self.admin.dispose()


def stored_columns() -> list[str]:
    from salesforce_sync.store.schema import audience_users

    return [column.name for column in audience_users.columns]


def postgres_limit(source_url: str, target_url: str) -> float:
    """Rows/s of COPY into a staging table + INSERT ... ON CONFLICT DO UPDATE, 50,000 rows per transaction, of
    the rows stored at source_url into the empty store at target_url (the COPY text built beforehand)."""
    from salesforce_sync.store import AudienceStore

    AudienceStore(target_url).create_schema()
    columns = stored_columns()
    payload = io.BytesIO()
    source = create_engine(source_url)
    with source.connect() as connection, connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY audience_users ({', '.join(columns)}) TO STDOUT", payload)
    source.dispose()
    lines = payload.getvalue().splitlines(keepends=True)
    del payload
    chunks = [b"".join(lines[start:start + CHUNK_ROWS]) for start in range(0, len(lines), CHUNK_ROWS)]
    del lines
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns if column not in KEY_COLUMNS)
    merge = (f"INSERT INTO audience_users ({', '.join(columns)}) SELECT {', '.join(columns)} FROM limit_staging "
             f"ON CONFLICT (project, external_id) DO UPDATE SET {updates}")
    target = create_engine(target_url)
    rows = 0
    with target.connect() as connection:
        raw = connection.connection.dbapi_connection
        started = time.perf_counter()
        for chunk in chunks:
            with raw.cursor() as cursor:
                cursor.execute("CREATE TEMPORARY TABLE limit_staging (LIKE audience_users) ON COMMIT DROP")
                cursor.copy_expert("COPY limit_staging FROM STDIN", io.BytesIO(chunk), size=1 << 20)
                cursor.execute(merge)
                rows += cursor.rowcount
            raw.commit()
        seconds = time.perf_counter() - started
    target.dispose()
    return rows / seconds


def sqlite_limit(source_url: str, target_url: str) -> float:
    """Rows/s of an executemany INSERT ... ON CONFLICT DO UPDATE, 50,000 rows per transaction, of the rows stored
    at source_url into the empty store at target_url (each chunk read beforehand)."""
    import sqlite3

    from salesforce_sync.store import AudienceStore

    AudienceStore(target_url).create_schema()
    columns = stored_columns()
    source = sqlite3.connect(source_url.removeprefix("sqlite:///"))
    stored = source.execute(f"SELECT {', '.join(columns)} FROM audience_users")
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in KEY_COLUMNS)
    upsert = (f"INSERT INTO audience_users ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
              f"ON CONFLICT (project, external_id) DO UPDATE SET {updates}")
    target = sqlite3.connect(target_url.removeprefix("sqlite:///"), isolation_level=None)
    rows, seconds = 0, 0.0
    while chunk := stored.fetchmany(CHUNK_ROWS):
        started = time.perf_counter()
        target.execute("BEGIN IMMEDIATE")
        target.executemany(upsert, chunk)
        target.execute("COMMIT")
        seconds += time.perf_counter() - started
        rows += len(chunk)
    source.close()
    target.close()
    return rows / seconds


LIMITS: dict[str, Callable[[str, str], float]] = {"postgres": postgres_limit, "sqlite": sqlite_limit}


def change_one_percent(state_file: Path, leads: int) -> None:
    from salesforce_sync.emulator.org import Org

    org = Org(state_file)
    with org.read() as conn:
        ids = [row[0] for row in conn.execute('SELECT "Id" FROM "Lead" WHERE "IsDeleted" = 0 AND rowid % 100 = 0')]
    results = org.apply_dml([("update", "Lead", {"Id": i, "Title": "Changed for the benchmark"}) for i in ids],
                            all_or_none=False)
    org.close()
    print(f"changed {sum(r['success'] for r in results):,} of {leads:,} Leads (1%)")


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=("postgres", "sqlite"))
    args = parser.parse_args()
    backends = args.backend or ["postgres", "sqlite"]
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    print(f"load: {os.getloadavg()[0]:.1f} (1-minute average) on {os.cpu_count()} cores")
    process, info = serve(work / "org.sqlite", args.leads)
    config, env = config_text(info), credentials_env(info)
    databases = {backend: Databases(backend, work) for backend in backends}
    last_store: dict[str, str] = {}
    figures: dict[str, list[Figures]] = {backend: [] for backend in backends}
    full_end = datetime.now(UTC) + timedelta(minutes=1)
    try:
        for run in range(1, args.runs + 1):
            for backend in backends:
                url = databases[backend].fresh()
                emulator_cpu = process_cpu_seconds(process.pid)
                done = in_fresh_process(sync_in_process, config, env, url, "2026-01-01T00:00:00+00:00",
                                        full_end.isoformat(), True)
                emulator_cpu = process_cpu_seconds(process.pid) - emulator_cpu
                limit = LIMITS[backend](url, databases[backend].fresh())
                measured = Figures(done["records"], done["seconds"], done["api_calls"], done["peak_rss_mb"],
                                   done["cpu"], emulator_cpu, done["database_cpu"], limit)
                figures[backend].append(measured)
                last_store[backend] = url
                print(f"{backend} run {run}, full sync via {'Bulk 2.0' if done['bulk'] else 'REST'}: {measured.line()}",
                      flush=True)
        for backend in backends:
            print(f"{backend} full sync, {summary(figures[backend])}")
        change_one_percent(work / "org.sqlite", args.leads)
        incremental_end = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
        for backend in backends:
            emulator_cpu = process_cpu_seconds(process.pid)
            done = in_fresh_process(sync_in_process, config, env, last_store[backend], full_end.isoformat(),
                                    incremental_end, False)
            emulator_cpu = process_cpu_seconds(process.pid) - emulator_cpu
            counts = done["counts"]
            print(f"{backend} incremental sync after 1% changed: {done['records']:,} records via "
                  f"{'Bulk 2.0' if done['bulk'] else 'REST'} in {done['seconds']:.1f} s; {done['api_calls']} API "
                  f"calls; updated {counts.updated:,}, unchanged {counts.skipped:,}; CPU s: sync {done['cpu']:.2f}, "
                  f"emulator {emulator_cpu:.2f}" + ("" if done["database_cpu"] is None
                                                    else f", database {done['database_cpu']:.2f}"))
    finally:
        process.terminate()
        process.wait()
        for each in databases.values():
            each.drop_all()
    print(f"load: {os.getloadavg()[0]:.1f} (1-minute average)")


if __name__ == "__main__":
    main()
