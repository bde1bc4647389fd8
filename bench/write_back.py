"""Benchmark the write surface of write-back (`salesforce.writes.RecordWriter`) against the emulator as it is
deployed (`salesforce-sync emulator serve` in its own process), through sObject Collections and through Bulk 2.0
ingest.

Each path changes N rows: it updates a field on N/2 existing Leads and inserts N/2 new ones. Prints records/s,
the API calls each step used (counted by the writer and checked against the org's count), API calls per 1,000
records, and the bench process's peak memory.

    .venv/bin/python bench/write_back.py [--records 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from salesforce_sync.config.secrets import Credentials
from salesforce_sync.emulator.control import EmulatorControl
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.writes import RecordWriter

PATHS = {"Collections": 10**12, "Bulk 2.0": 1}  # bulk_threshold forcing each path


def step(writer: RecordWriter, control: EmulatorControl, label: str, operation: str,
         records: list[dict[str, Any]]) -> list[str]:
    calls_before, org_before = writer.api_calls, control.api_calls()["used"]
    started = time.perf_counter()
    results = writer.write("Lead", operation, records)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    calls, org_calls = writer.api_calls - calls_before, control.api_calls()["used"] - org_before
    failed = [r for r in results if r.error is not None]
    if failed or calls != org_calls:
        raise RuntimeError(f"{label}: {len(failed):,} failed (first: {failed[0].error if failed else None}); "
                           f"writer counted {calls} calls, the org {org_calls}")
    print(f"  {label:<34} {len(records):>8,} records in {seconds:6.1f} s = {len(records) / seconds:>7,.0f} records/s   "
          f"{calls:>4} API calls = {calls * 1000 / len(records):5.2f} per 1,000 records", flush=True)
    return [r.salesforce_id for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    half = parser.parse_args().records // 2
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tls_dir:
        command = [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0",
                   "--leads", "100", "--contacts", "0", "--campaign-members", "0", "--tls-dir", tls_dir]
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            info = json.loads(server.stdout.readline())
            control = EmulatorControl(info["instance_url"], info["ca_file"])
            credentials = Credentials(method="refresh_token", client_id=info["client_id"],
                                      client_secret=info["client_secret"], refresh_token=info["refresh_token"])
            client = SalesforceClient(credentials, info["login_url"], integration="bench", ca_file=info["ca_file"])
            seed = RecordWriter(client, bulk_threshold=1)
            existing = step(seed, control, "seed: insert Leads to update", "insert", [
                {"LastName": f"Existing {i}", "Company": f"Company {i % 977}", "Email": f"existing.{i}@bench.test"}
                for i in range(2 * half)])
            print(f"Write-back through RecordWriter: {half:,} Lead updates + {half:,} inserts per path")
            for number, (path, threshold) in enumerate(PATHS.items()):
                writer = RecordWriter(client, bulk_threshold=threshold, client_name="bench-writeback")
                mine = existing[number * half:(number + 1) * half]
                step(writer, control, f"{path}: update Title", "update",
                     [{"Id": record_id, "Title": f"Buyer {path}"} for record_id in mine])
                step(writer, control, f"{path}: insert", "insert", [
                    {"LastName": f"New {path} {i}", "Company": "New Co", "Email": f"new.{number}.{i}@bench.test",
                     "Title": "Buyer", "City": None} for i in range(half)])
                print(f"  {path:<34} total {writer.api_calls} API calls = "
                      f"{writer.api_calls * 1000 / (2 * half):.2f} per 1,000 records", flush=True)
            print(f"  peak memory of the bench process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
