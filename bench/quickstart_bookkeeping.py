"""Benchmark the quickstart's first sync (`salesforce-sync sync` on the demo config, in a fresh folder) and how
much of it Dagster spends recording materializations: one event per window of the range per object.

Prints the sync's wall time, and per object the materializations written and the seconds from its first to
its last materialization event (the bookkeeping; the store write itself happens before the first).

    .venv/bin/python bench/quickstart_bookkeeping.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="quickstart-") as folder:
        environment = {name: value for name, value in os.environ.items()
                       if name not in ("DAGSTER_HOME", "SALESFORCE_SYNC_CONFIG", "AUDIENCE_STORE_URL")}
        command = [str(Path(sys.executable).with_name("salesforce-sync")), "sync"]
        began = time.monotonic()
        subprocess.run(command, cwd=folder, env=environment, check=True, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - began
        instance = dg.DagsterInstance.from_config(str(Path(folder) / ".salesforce-sync" / "dagster_home"))
        (run,) = instance.get_runs(limit=1)
        stamps: dict[str, list[float]] = {}
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            stamps.setdefault(record.step_key or "?", []).append(record.timestamp)
        print(f"first sync: {wall:.1f} s wall")
        total = 0.0
        for step, times in sorted(stamps.items()):
            spent = max(times) - min(times)
            total += spent
            print(f"  {step}: {len(times)} materializations in {spent:.2f} s")
        print(f"Dagster materialization bookkeeping: {total:.2f} s")


if __name__ == "__main__":
    main()
