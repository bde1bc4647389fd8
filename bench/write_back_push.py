"""Benchmark the write-back push: N prospects in a SQLite audience store pushed as Leads to an emulated org over
HTTPS (matched by email, upserted on Audience_Id__c), then the same source pushed again unchanged, then with 10%
of its rows changed. Prints rows/s, API calls (and how many wrote) and seconds per round.

    .venv/bin/python bench/write_back_push.py [--rows 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import create_engine

from salesforce_sync.config.loader import parse_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.lease import cli_holder
from salesforce_sync.runs.write_back import push_integration
from salesforce_sync.store import AudienceStore


def source_rows(count: int, changed_every: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "person_id": [f"p{n:07d}" for n in range(count)],
        "email": [f"person{n:07d}@bench.test" for n in range(count)],
        "last_name": [f"Bench {n}" for n in range(count)],
        "company": [f"Company {n % 500}" + (" v2" if changed_every and n % changed_every == 0 else "")
                    for n in range(count)],
    })


def push_round(store: AudienceStore, integration, label: str, rows: int) -> None:
    started = time.perf_counter()
    (result,) = push_integration(store, integration, holder=cli_holder(), run_id=label)
    seconds = time.perf_counter() - started
    sent = sum(result.counts.values())
    print(f"  {label:<22} {sent:>8,} rows sent of {rows:,} in {seconds:6.2f} s = {sent / seconds:>7,.0f} rows/s   "
          f"API calls {result.api_calls:>4} (writes {result.write_calls:>3})   {result.counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, EmulatedOrg(counts={"Lead": 0, "Contact": 0, "CampaignMember": 0},
                                                              tls_dir=folder) as org:
        info = org.connection_info()
        os.environ.update({"BENCH_SF_ID": info["client_id"], "BENCH_SF_SECRET": info["client_secret"],
                           "BENCH_SF_TOKEN": info["refresh_token"]})
        store_url = f"sqlite:///{Path(folder) / 'store.db'}"
        config = parse_config(yaml.safe_dump({"projects": ["bench"], "integrations": [{
            "id": "bench", "project": "bench", "environment": org.base_url, "ca_file": org.ca_file,
            "start": datetime.now(UTC).strftime("%Y-%m-%d"),
            "auth": {"method": "refresh_token", "client_id_env": "BENCH_SF_ID", "client_secret_env": "BENCH_SF_SECRET",
                     "refresh_token_env": "BENCH_SF_TOKEN"},
            "write_back": {"objects": {"Lead": {
                "table": "prospects", "key": "person_id", "email_column": "email",
                "external_id_field": "Audience_Id__c",
                "fields": [{"column": "last_name", "field": "LastName"}, {"column": "email", "field": "Email"},
                           {"column": "company", "field": "Company"}]}}}}]}), source_name="bench")
        integration = config.integration("bench")
        engine = create_engine(store_url)
        with AudienceStore(store_url) as store:
            store.create_schema()
            print(f"write-back push of {args.rows:,} Leads (SQLite store, emulated org over HTTPS)")
            source_rows(args.rows).to_sql("prospects", engine, index=False)
            push_round(store, integration, "first push (creates)", args.rows)
            push_round(store, integration, "unchanged source", args.rows)
            source_rows(args.rows, changed_every=10).to_sql("prospects", engine, index=False, if_exists="replace")
            push_round(store, integration, "10% changed", args.rows)
        engine.dispose()


if __name__ == "__main__":
    main()
