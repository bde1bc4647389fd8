"""Benchmark near-real-time sync: change-to-store lag of a burst of changes through change capture.

Serves an org of `--leads` Leads in a process of its own (as a real org is elsewhere), syncs them into a store (SQLite in a temporary folder, or
`--store-url`) by one full window, then runs the change-capture listener (runs.change_capture.listen: Pub/Sub
over TLS, micro-syncs reading by Id through the window's mapping and upsert) while one Bulk API 2.0 job updates
`--changes` of them. Prints:

* lag: median and p99 of each change's event commit time -> its micro-sync stored it;
* steady rate: events applied per second from the first commit to the last store, and per second of
  micro-sync work alone; the micro-syncs, API calls and batch sizes.

    .venv/bin/python bench/change_capture_lag.py [--changes 10000] [--store-url postgresql+psycopg2://...]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from typing import Any

from simple_salesforce import Salesforce

from salesforce_sync.config.loader import parse_config
from salesforce_sync.emulator.control import EmulatorControl, client_session
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.change_capture import listen
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.health import preflight
from salesforce_sync.runs.micro_sync import MicroSyncResult
from salesforce_sync.runs.window import SyncWindow, apply_window, plan_window
from salesforce_sync.store import AudienceStore

AUTH_ENV = {"client_id": "BENCH_SF_CLIENT_ID", "client_secret": "BENCH_SF_CLIENT_SECRET",
            "refresh_token": "BENCH_SF_REFRESH_TOKEN"}


def config_text(org: RemoteOrg, start: datetime) -> str:
    return f"""
projects: [bench]
integrations:
  - id: bench
    project: bench
    environment: {org.base_url}
    ca_file: {org.ca_file}
    auth: {{method: refresh_token, client_id_env: {AUTH_ENV['client_id']}, client_secret_env: {AUTH_ENV['client_secret']},
           refresh_token_env: {AUTH_ENV['refresh_token']}}}
    start: {start.isoformat()}
    change_capture: {{enabled: true, pubsub_url: "{org.pubsub_url}", debounce_seconds: 0.5, max_batch: 2000}}
    objects:
      Lead:
        sync_rules: {{match: all, rules: [{{field: Email, operator: is_set}}]}}
        field_mappings:
          - {{field: Company, property: company, type: string}}
          - {{field: Lead_Score__c, property: lead_score, type: number}}
"""


def serve(leads: int, folder: str, ready: Connection, stop: EventType) -> None:
    """The org, served until `stop` (in its own process)."""
    with EmulatedOrg(counts={"Lead": leads, "Contact": 10, "CampaignMember": 5}, tls_dir=folder,
                     settings={"pubsub_keepalive_seconds": 0.5}) as org:
        ready.send({**org.connection_info(), "base_url": org.base_url})
        stop.wait()


class RemoteOrg:
    """What the benchmark needs of an org served by another process."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.base_url, self.ca_file, self.pubsub_url = info["base_url"], info["ca_file"], info["pubsub_url"]

    def connection_info(self) -> dict[str, Any]:
        return self.info

    @property
    def control(self) -> EmulatorControl:
        return EmulatorControl(self.base_url, self.ca_file)

    def simple_salesforce(self) -> Salesforce:
        session = client_session(self.ca_file)
        token = session.post(f"{self.base_url}/services/oauth2/token", data={
            "grant_type": "refresh_token", "client_id": self.info["client_id"],
            "client_secret": self.info["client_secret"], "refresh_token": self.info["refresh_token"]}, timeout=60)
        return Salesforce(instance_url=self.base_url, session_id=token.json()["access_token"], session=session)


@contextlib.contextmanager
def served_org(leads: int, folder: str) -> Iterator[RemoteOrg]:
    ready, child_end = multiprocessing.Pipe()
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=serve, args=(leads, folder, child_end, stop), daemon=True)
    process.start()
    try:
        yield RemoteOrg(ready.recv())
    finally:
        stop.set()
        process.join(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=10_000, help="Leads updated in the burst")
    parser.add_argument("--leads", type=int, default=12_000, help="Leads in the org")
    parser.add_argument("--store-url", help="the audience store (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, served_org(args.leads, folder) as org:
        info = org.connection_info()
        os.environ.update({variable: info[key] for key, variable in AUTH_ENV.items()})
        start = org.control.now().replace(minute=0, second=0, microsecond=0)
        integration = parse_config(config_text(org, start), source_name="bench").integrations[0]
        store = AudienceStore(args.store_url or f"sqlite:///{folder}/store.db")
        store.create_schema()
        began = time.monotonic()
        with connect(integration) as client:
            sync = plan_window(client, integration, "Lead", SyncWindow(start, start + timedelta(hours=1), first=True,
                                                                       full=True), preflight(client, integration, "Lead"))
            apply_window(store, sync, run_id="bench")
        print(f"initial window: {args.leads:,} Leads stored in {time.monotonic() - began:.1f} s")

        results: list[MicroSyncResult] = []
        stop = threading.Event()
        applied = threading.Event()

        def on_applied(result: MicroSyncResult) -> None:
            results.append(result)
            if sum(len(r.commits_ms) for r in results) >= args.changes:
                applied.set()

        def run() -> None:
            with AudienceStore(store.url.render_as_string(hide_password=False)) as own, connect(integration) as sf:
                listen(own, sf, integration, stop=stop, on_applied=on_applied)

        listener = threading.Thread(target=run, daemon=True)
        listener.start()
        while (state := store.change_capture_state("bench")) is None or state.replay_id is None:
            time.sleep(0.05)
        sf = org.simple_salesforce()
        # Converted Leads are read-only: only the others change.
        soql = f"SELECT Id FROM Lead WHERE Email != null AND IsConverted = false LIMIT {args.changes}"
        ids = [r["Id"] for r in sf.query_all(soql)["records"]]
        burst = time.monotonic()
        sf.bulk2.Lead.update(records=[{"Id": i, "Company": f"Burst {n}"} for n, i in enumerate(ids)], wait=0.1)
        written = time.monotonic()
        finished = applied.wait(timeout=600)
        stop.set()
        listener.join(timeout=60)
        store.close()
    commits = [c for r in results for c in r.commits_ms]
    lags = [(r.stored_ms - c) / 1000 for r in results for c in r.commits_ms]
    overall = sorted(lags)
    p99 = overall[min(len(overall) - 1, round(0.99 * (len(overall) - 1)))]
    first_commit, last_stored = min(commits) / 1000, max(r.stored_ms for r in results) / 1000
    work = sum(r.duration_seconds for r in results)
    print(f"burst: {len(ids):,} Lead updates in one Bulk 2.0 job, committed in {written - burst:.2f} s")
    print(f"lag (commit -> stored) over {len(lags):,} events: median {statistics.median(lags):.2f} s, "
          f"p99 {p99:.2f} s, max {overall[-1]:.2f} s")
    print(f"steady rate: {len(commits) / (last_stored - first_commit):,.0f} events/s from first commit to last store; "
          f"{len(commits) / work:,.0f} events/s of micro-sync work ({work:.2f} s)")
    print(f"micro-syncs: {len(results)}, events per micro-sync: {[len(r.commits_ms) for r in results]}, "
          f"API calls: {sum(r.api_calls for r in results)}, records updated: "
          f"{sum(r.counts.updated for r in results):,}")
    return 0 if finished and len(commits) == len(ids) else 1


if __name__ == "__main__":
    raise SystemExit(main())
