"""Benchmark Bulk API 2.0 ingest into the emulator as it is deployed (`salesforce-sync emulator serve` in its own
process), through simple-salesforce's bulk2 as a write-back tool would call it.

Upserts N Leads by their external id twice: the first round creates every record, the second matches and
updates every one. Prints records/s of wall time and of the server's CPU time, the API calls each round used and
the DailyBulkApiBatches (10,000-record batches) it counted.

    .venv/bin/python bench/bulk_ingest.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from simple_salesforce import Salesforce

from salesforce_sync.emulator.control import EmulatorControl


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upsert_round(sf: Salesforce, control: EmulatorControl, server_pid: int, label: str, records: list[dict]) -> None:
    control.reset_api_calls()
    batches_before = sf.limits()["DailyBulkApiBatches"]["Remaining"]
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    results = sf.bulk2.Lead.upsert(records=records, external_id_field="External_Key__c", wait=0.2)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(server_pid) - cpu_before
    usage = control.api_calls()
    calls = usage["used"] - usage["by_endpoint"].get("limits", 0)
    processed = sum(r["numberRecordsProcessed"] for r in results)
    failed = sum(r["numberRecordsFailed"] for r in results)
    if processed != len(records) or failed:
        raise RuntimeError(f"{label}: {processed:,} processed, {failed:,} failed of {len(records):,}")
    batches = batches_before - sf.limits()["DailyBulkApiBatches"]["Remaining"]
    print(f"  {label:<26} {processed:>8,} records in {seconds:6.1f} s = {processed / seconds:>7,.0f} records/s   "
          f"server CPU {cpu:5.1f} s = {processed / cpu:>7,.0f} records per CPU-second   "
          f"{calls} API calls, {batches} bulk batches", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    records_wanted = parser.parse_args().records
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tls_dir:
        command = [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0",
                   "--leads", "1000", "--contacts", "0", "--campaign-members", "0", "--tls-dir", tls_dir]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            info = json.loads(server.stdout.readline())
            session = requests.Session()
            session.trust_env = False
            session.verify = info["ca_file"]
            token = session.post(f"{info['login_url']}/services/oauth2/token", data={
                "grant_type": "refresh_token", "client_id": info["client_id"],
                "client_secret": info["client_secret"], "refresh_token": info["refresh_token"]}, timeout=60)
            token.raise_for_status()
            sf = Salesforce(instance_url=info["instance_url"], session_id=token.json()["access_token"], session=session)
            control = EmulatorControl(info["instance_url"], info["ca_file"])
            records = [{"External_Key__c": f"BENCH-{i}", "LastName": f"Bench {i}", "Company": f"Company {i % 977}",
                        "Email": f"bench.{i}@ingest.example", "Title": "Buyer"} for i in range(records_wanted)]
            print(f"Bulk 2.0 ingest through simple-salesforce, {records_wanted:,} Lead upserts by External_Key__c")
            upsert_round(sf, control, server.pid, "upsert (all created)", records)
            for record in records:
                record["Title"] = "Head of buying"
            upsert_round(sf, control, server.pid, "upsert (all matched)", records)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
