"""Benchmark the quickstart's first sync (`salesforce-sync sync` on the demo config, in a fresh folder) and how
much of it Dagster spends on bookkeeping: at run creation one planned event per window of the range per object,
and in each object's step one materialization per window.

Prints the sync's wall time; the seconds from the first planned event to the next event stored after the last
one (run creation); per object the materializations written and the seconds from its first materialization to
the next event after its last (the store write itself happens before the first); and their total. Events are
stamped when Dagster creates them, so the span up to the following event also counts a batch written at its end.

    .venv/bin/python bench/quickstart_bookkeeping.py [DAGSTER_HOME]

With DAGSTER_HOME (e.g. a folder holding deploy/production/dagster.yaml, the DAGSTER_PG_* variables set), the
sync records its run on that instance instead of the one it creates under the sync home.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

PLANNED = {dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}
MATERIALIZATION = {dg.DagsterEventType.ASSET_MATERIALIZATION}


def spans(records: list[dg.EventLogEntry], types: set[dg.DagsterEventType], group) -> dict[str, tuple[int, float]]:
    """Per group of events of `types`: how many, and the seconds from the first to the next event of another type
    after the last."""
    found: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        if record.dagster_event_type in types:
            found.setdefault(group(record), []).append(index)
    result = {}
    for name, indexes in sorted(found.items()):
        after = next((record for record in records[indexes[-1]:] if record.dagster_event_type not in types),
                     records[-1])
        result[name] = (len(indexes), after.timestamp - records[indexes[0]].timestamp)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="quickstart-") as folder:
        environment = {name: value for name, value in os.environ.items()
                       if name not in ("DAGSTER_HOME", "SALESFORCE_SYNC_CONFIG", "AUDIENCE_STORE_URL")}
        home = sys.argv[1] if len(sys.argv) > 1 else str(Path(folder) / ".salesforce-sync" / "dagster_home")
        if len(sys.argv) > 1:
            environment["DAGSTER_HOME"] = home
        command = [str(Path(sys.executable).with_name("salesforce-sync")), "sync"]
        began = time.monotonic()
        subprocess.run(command, cwd=folder, env=environment, check=True, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - began
        instance = dg.DagsterInstance.from_config(home)
        (run,) = instance.get_runs(limit=1)
        records = list(instance.all_logs(run.run_id))
        print(f"first sync: {wall:.1f} s wall ({type(instance.event_log_storage).__name__}, "
              f"DAGSTER_EVENT_BATCH_SIZE={instance._get_event_batch_size()})")
        ((planned, creation),) = spans(records, PLANNED, lambda record: "run").values()
        print(f"  run creation: {planned} planned events (assets and checks) in {creation:.2f} s")
        total = creation
        for step, (count, spent) in spans(records, MATERIALIZATION, lambda record: record.step_key or "?").items():
            total += spent
            print(f"  {step}: {count} materializations in {spent:.2f} s")
        print(f"Dagster bookkeeping (planned events and materializations): {total:.2f} s")


if __name__ == "__main__":
    main()
