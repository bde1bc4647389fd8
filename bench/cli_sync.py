"""The user-facing sync benchmark: `salesforce-sync sync --full` as a user runs it (a fresh process: imports,
Dagster run and bookkeeping, everything), a full sync of N Leads (default 1,000,000) into PostgreSQL and into
SQLite, each next to its database's limit on the same rows measured in the same run (see sync_throughput.py).
Also the fixed cost of a CLI sync: the same command on an integration whose sync rules select no record.

    .venv/bin/python bench/cli_sync.py [--leads N] [--runs 3] [--backend postgres --backend sqlite]

Peak RSS and the database's CPU are sampled from /proc while the command runs (every 0.2 s); the command's
own CPU seconds come from its exit status (os.wait4).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from sync_throughput import (
    LIMITS,
    NO_RECORD_RULE,
    Databases,
    Figures,
    config_text,
    credentials_env,
    postgres_cpu_seconds,
    process_cpu_seconds,
    serve,
    spread,
    summary,
)

SAMPLE_SECONDS = 0.2
START = date.today().isoformat()
"""The integration starts today, so `sync --full` covers today's hourly windows (the first reads all history)."""


class Sampler(threading.Thread):
    """Samples a command's peak RSS (VmHWM) and the CPU seconds of the PostgreSQL backends serving `database`."""

    def __init__(self, pid: int, url: str) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.engine = create_engine(url.rsplit("/", 1)[0] + "/postgres") if url.startswith("postgresql") else None
        self.database = url.rsplit("/", 1)[1]
        self.peak_rss_mb = 0.0
        self.backends: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_rss_mb = max(self.peak_rss_mb, int(line.split()[1]) / 1024)
            except OSError:
                return
            if self.engine is not None:
                self.backends.update(postgres_cpu_seconds(self.engine, self.database))

    def stop(self) -> float | None:
        """Stop sampling; the database's CPU seconds (None for SQLite, which works inside the command)."""
        self.done.set()
        self.join()
        if self.engine is None:
            return None
        self.engine.dispose()
        return sum(self.backends.values())


def run_cli(config: str, env: dict[str, str], url: str, work: Path) -> dict[str, Any]:
    """`salesforce-sync sync --full` in a fresh folder (its own sync home and Dagster instance) against url."""
    home = Path(tempfile.mkdtemp(prefix="cli-sync-", dir=work))
    (home / "integrations.yaml").write_text(config)
    environment = {name: value for name, value in os.environ.items() if name != "DAGSTER_HOME"}
    environment.update(env, SALESFORCE_SYNC_CONFIG=str(home / "integrations.yaml"), AUDIENCE_STORE_URL=url,
                       SALESFORCE_SYNC_HOME=str(home / ".salesforce-sync"))
    errors = (home / "stderr.txt").open("w+")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "salesforce_sync.cli", "sync", "--full"], cwd=home,
                               env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
    sampler = Sampler(process.pid, url)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    database_cpu = sampler.stop()
    if process.returncode != 0:
        errors.seek(0)
        raise SystemExit(f"salesforce-sync sync --full failed ({process.returncode}): {errors.read()}")
    errors.close()
    engine = create_engine(url)
    with engine.connect() as connection:
        records = connection.execute(text("SELECT count(*) FROM audience_users")).scalar_one()
    engine.dispose()
    return {"records": records, "seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": sampler.peak_rss_mb, "database_cpu": database_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=("postgres", "sqlite"))
    args = parser.parse_args()
    backends = args.backend or ["postgres", "sqlite"]
    work = Path(tempfile.mkdtemp(prefix="cli-bench-"))
    print(f"load: {os.getloadavg()[0]:.1f} (1-minute average) on {os.cpu_count()} cores")
    process, info = serve(work / "org.sqlite", args.leads)
    env = credentials_env(info)
    databases = {backend: Databases(backend, work) for backend in backends}
    figures: dict[str, list[Figures]] = {backend: [] for backend in backends}
    fixed: list[float] = []
    try:
        for run in range(1, args.runs + 1):
            nothing = run_cli(config_text(info, NO_RECORD_RULE, START), env, databases[backends[-1]].fresh(), work)
            fixed.append(nothing["seconds"])
            print(f"run {run}, fixed cost: `salesforce-sync sync --full` selecting no record took "
                  f"{nothing['seconds']:.1f} s ({nothing['cpu']:.1f} CPU s)", flush=True)
            for backend in backends:
                url = databases[backend].fresh()
                emulator_cpu = process_cpu_seconds(process.pid)
                done = run_cli(config_text(info, start=START), env, url, work)
                emulator_cpu = process_cpu_seconds(process.pid) - emulator_cpu
                limit = LIMITS[backend](url, databases[backend].fresh())
                measured = Figures(done["records"], done["seconds"], None, done["peak_rss_mb"], done["cpu"],
                                   emulator_cpu, done["database_cpu"], limit)
                figures[backend].append(measured)
                print(f"{backend} run {run}, `salesforce-sync sync --full`: {measured.line()}", flush=True)
        print(f"fixed cost of a CLI sync, median of {len(fixed)} runs (min-max): {spread(fixed, '.1f')} s")
        for backend in backends:
            print(f"{backend} `salesforce-sync sync --full`, {summary(figures[backend])}")
    finally:
        process.terminate()
        process.wait()
        for each in databases.values():
            each.drop_all()
    print(f"load: {os.getloadavg()[0]:.1f} (1-minute average)")


if __name__ == "__main__":
    main()
