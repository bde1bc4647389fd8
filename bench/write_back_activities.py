"""Benchmark the activities write-back: N activities (calls, emails, touchpoints as Tasks; meetings and visits as
Events) of 500 people in a SQLite audience store, pushed to an emulated org over HTTPS and upserted on
Activity_Key__c. The people are Contacts written back first; their activities find them by person key (the
Contact write-back's links), or by email (a SOQL query per batch). Then the unchanged source is pushed again, then
with 10% of the activities' statuses changed. Prints activities written per second and API calls per 1,000
activities written, per round.

    .venv/bin/python bench/write_back_activities.py [--activities 5000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import create_engine

from salesforce_sync.config.loader import parse_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.lease import cli_holder
from salesforce_sync.runs.write_back import push_integration
from salesforce_sync.store import AudienceStore

PEOPLE = 500
START = datetime.now(UTC).replace(microsecond=0)
TYPES = ("call", "email", "touchpoint", "meeting", "visit")


def people() -> pd.DataFrame:
    return pd.DataFrame({"person_id": [f"c{n:05d}" for n in range(PEOPLE)],
                         "email": [f"contact{n:05d}@bench.test" for n in range(PEOPLE)],
                         "last_name": [f"Bench {n}" for n in range(PEOPLE)]})


def activities(count: int, changed_every: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "activity_id": [f"a{n:07d}" for n in range(count)],
        "person_id": [f"c{n % PEOPLE:05d}" for n in range(count)],
        "email": [f"contact{n % PEOPLE:05d}@bench.test" for n in range(count)],
        "type": [TYPES[n % len(TYPES)] for n in range(count)],
        "subject": [f"Activity {n}" for n in range(count)],
        "occurred_at": [(START + timedelta(minutes=n)).isoformat() for n in range(count)],
        "status": ["open" if changed_every and n % changed_every == 0 else "done" for n in range(count)],
        "minutes": [15 + n % 60 for n in range(count)],
    })


def push_round(store: AudienceStore, integration, label: str) -> None:
    started = time.perf_counter()
    results = push_integration(store, integration, holder=cli_holder(), run_id=label, objects=["Activity"])
    seconds = time.perf_counter() - started
    (result,) = results
    sent = result.counts["created"] + result.counts["updated"]
    print(f"  {label:<32} {sent:>7,} written in {seconds:6.2f} s = {sent / seconds:>6,.0f} activities/s   "
          f"API calls {result.api_calls:>4} (writes {result.write_calls:>3}) = "
          f"{1000 * result.api_calls / max(sent, 1):6.1f} per 1,000 written   {result.counts}")


def integration_config(org: EmulatedOrg, person_key: bool):
    activities_settings = {"table": "activities", "key": "activity_id", "email_column": "email",
                           "status_column": "status", "duration_column": "minutes", "since": "2020-01-01"}
    if person_key:
        activities_settings["person_key_column"] = "person_id"
    config = parse_config(yaml.safe_dump({"projects": ["bench"], "integrations": [{
        "id": "bench", "project": "bench", "environment": org.base_url, "ca_file": org.ca_file,
        "start": datetime.now(UTC).strftime("%Y-%m-%d"),
        "auth": {"method": "refresh_token", "client_id_env": "BENCH_SF_ID", "client_secret_env": "BENCH_SF_SECRET",
                 "refresh_token_env": "BENCH_SF_TOKEN"},
        "write_back": {"objects": {"Contact": {
            "table": "bench_people", "key": "person_id", "email_column": "email", "external_id_field": "Audience_Id__c",
            "fields": [{"column": "last_name", "field": "LastName"}, {"column": "email", "field": "Email"}]}},
            "activities": activities_settings}}]}), source_name="bench")
    return config.integration("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=5_000)
    args = parser.parse_args()
    count = args.activities
    for person_key in (True, False):
        with tempfile.TemporaryDirectory() as folder, EmulatedOrg(
                counts={"Lead": 0, "Contact": 0, "CampaignMember": 0}, tls_dir=folder) as org:
            info = org.connection_info()
            os.environ.update({"BENCH_SF_ID": info["client_id"], "BENCH_SF_SECRET": info["client_secret"],
                               "BENCH_SF_TOKEN": info["refresh_token"]})
            store_url = f"sqlite:///{Path(folder) / 'store.db'}"
            integration = integration_config(org, person_key)
            engine = create_engine(store_url)
            with AudienceStore(store_url) as store:
                store.create_schema()
                people().to_sql("bench_people", engine, index=False)
                push_integration(store, integration, holder=cli_holder(), run_id="people", objects=["Contact"])
                print(f"write-back of {count:,} activities of {PEOPLE} Contacts found by "
                      f"{'person key (links)' if person_key else 'email (SOQL)'} (SQLite store, emulated org over "
                      "HTTPS)")
                activities(count).to_sql("activities", engine, index=False)
                push_round(store, integration, "first push (creates)")
                push_round(store, integration, "unchanged source")
                activities(count, changed_every=10).to_sql("activities", engine, index=False, if_exists="replace")
                push_round(store, integration, "10% changed (status)")
            engine.dispose()


if __name__ == "__main__":
    main()
