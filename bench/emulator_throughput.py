"""Benchmark the Salesforce emulator as it is deployed: `salesforce-sync emulator serve` in its own process.

Measures how long a 1,000,000-Lead org takes to load (generate + insert + index, from process start to the
connection line), then how many records/s it serves over HTTPS to a client in this process:

* REST: queryAll + nextRecordsUrl paging, every page's JSON parsed, as a REST sync client must;
* Bulk API 2.0: a queryAll job whose CSV results are downloaded in 50,000-row chunks;
* filtered scans a write-back sends: case-insensitive `=` and LIKE (ASCII and accented), `IN` lists of 500
  emails and of 500 Ids, a semi-join and a GROUP BY, each the best of three REST calls.

Targets: load well under a minute, more than 20,000 records/s each way. Prints the figures and the server's
peak RSS.

    .venv/bin/python bench/emulator_throughput.py [--leads 1000000] [--chunk 50000]
    .venv/bin/python bench/emulator_throughput.py --profile rest|bulk [--leads 200000]

`--profile` instead serves an org in this process and runs that read through the emulator's dispatch under
cProfile (no sockets), printing where the emulator's own time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from salesforce_sync.salesforce.http import make_session

FIELDS = ("Id, FirstName, LastName, Email, Company, Title, Phone, City, Country, LeadSource, Status, "
          "HasOptedOutOfEmail, IsDeleted, OwnerId, CreatedDate, LastModifiedDate, SystemModstamp")
SOQL = f"SELECT {FIELDS} FROM Lead"
API = "/services/data/v59.0"

# (method, path with query, JSON body) -> (status, headers, body); both the HTTP client and in-process dispatch
Call = Callable[[str, str, Any], tuple[int, Any, bytes]]


def read_rest(call: Call) -> int:
    """Page through queryAll with nextRecordsUrl, parsing every page; returns the rows read."""
    _, _, body = call("GET", f"{API}/queryAll?q={quote(SOQL)}", None)
    page = json.loads(body)
    rows = len(page["records"])
    while not page["done"]:
        page = json.loads(call("GET", page["nextRecordsUrl"], None)[2])
        rows += len(page["records"])
    if rows != page["totalSize"]:
        raise RuntimeError(f"REST paging returned {rows:,} rows but totalSize is {page['totalSize']:,}")
    return rows


def read_bulk(call: Call, chunk: int) -> int:
    """Run a Bulk 2.0 queryAll job and download every result chunk; returns the rows read."""
    jobs = f"{API}/jobs/query"
    job = json.loads(call("POST", jobs, {"operation": "queryAll", "query": SOQL})[2])
    status = json.loads(call("GET", f"{jobs}/{job['id']}", None)[2])
    if status["state"] != "JobComplete":
        raise RuntimeError(f"Bulk job {job['id']} is {status['state']}, not JobComplete")
    rows, locator = 0, ""
    while locator != "null":
        path = f"{jobs}/{job['id']}/results?maxRecords={chunk}" + (f"&locator={locator}" if locator else "")
        code, headers, body = call("GET", path, None)
        if code != 200:
            raise RuntimeError(f"Bulk results failed: {code} {body[:200]!r}")
        rows += int(headers["Sforce-NumberOfRecords"])
        locator = headers["Sforce-Locator"]
    if rows != status["numberRecordsProcessed"]:
        raise RuntimeError(f"Bulk results held {rows:,} rows; the job processed {status['numberRecordsProcessed']:,}")
    call("DELETE", f"{jobs}/{job['id']}", None)
    return rows


def filtered_queries(call: Call) -> list[tuple[str, str]]:
    """(label, SOQL) of the filtered reads a write-back sends, with values taken from the org itself."""
    page = json.loads(call("GET", f"{API}/query?q={quote('SELECT Id, Email FROM Lead WHERE Email != null LIMIT 500')}",
                           None)[2])
    emails = ", ".join("'" + r["Email"].upper() + "'" for r in page["records"])
    ids = ", ".join("'" + r["Id"][:15] + "'" for r in page["records"])
    return [
        ("= ASCII text", "SELECT COUNT() FROM Lead WHERE LastName = 'SMITH'"),
        ("= accented text", "SELECT COUNT() FROM Lead WHERE FirstName = 'MATHÉO'"),
        ("LIKE ASCII", "SELECT COUNT() FROM Lead WHERE Email LIKE '%EXAMPLE%'"),
        ("LIKE accented", "SELECT COUNT() FROM Lead WHERE FirstName LIKE 'CHLO%'"),
        ("IN 500 emails", f"SELECT Id FROM Lead WHERE Email IN ({emails})"),
        ("IN 500 Ids (15-char)", f"SELECT Id FROM Lead WHERE Id IN ({ids})"),
        ("semi-join CampaignMember", "SELECT COUNT() FROM Lead WHERE Id IN (SELECT LeadId FROM CampaignMember)"),
        ("GROUP BY LeadSource", "SELECT LeadSource, COUNT(Id) FROM Lead GROUP BY LeadSource"),
    ]


def report_filters(call: Call, leads: int) -> None:
    """Milliseconds per filtered query (best of three) and the Leads scanned per second."""
    for label, soql in filtered_queries(call):
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            status, _, body = call("GET", f"{API}/query?q={quote(soql)}", None)
            timings.append(time.perf_counter() - started)
        if status != 200:
            print(f"  {label:<30} refused: {body[:160]!r}", flush=True)
            continue
        best = min(timings)
        print(f"  {label:<30} {best * 1000:8.1f} ms = {leads / best:>12,.0f} Leads scanned/s"
              f"   ({json.loads(body)['totalSize']:,} matched)", flush=True)


def report(label: str, read: Callable[[], int], server_pid: int | None = None) -> None:
    """Print rows/s of wall time and, for a server process, rows per second of its CPU time (which other
    load on the machine does not distort)."""
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    client_before = time.process_time()
    started = time.perf_counter()
    rows = read()
    seconds = time.perf_counter() - started
    line = f"  {label:<30} {rows:>10,} rows in {seconds:6.1f} s = {rows / seconds:>9,.0f} records/s"
    if server_pid:
        cpu = cpu_seconds(server_pid) - cpu_before
        line += (f"   server CPU {cpu:5.1f} s = {rows / cpu:>7,.0f} records per CPU-second"
                 f"   (client CPU {time.process_time() - client_before:5.1f} s)")
    print(line, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_and_measure(leads: int, chunk: int) -> None:
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tls_dir:
        command = [sys.executable, "-m", "salesforce_sync.cli", "emulator", "serve", "--port", "0",
                   "--leads", str(leads), "--contacts", "0", "--campaign-members", str(leads // 10),
                   "--tls-dir", tls_dir]
        started = time.perf_counter()
        server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            info = json.loads(server.stdout.readline())
            print(f"  {'load (start, generate, index)':<30} {leads:>10,} Leads in "
                  f"{time.perf_counter() - started:6.1f} s   server CPU {cpu_seconds(server.pid):5.1f} s", flush=True)
            session = make_session(info["ca_file"])
            token = session.post(f"{info['login_url']}/services/oauth2/token", data={
                "grant_type": "refresh_token", "client_id": info["client_id"],
                "client_secret": info["client_secret"], "refresh_token": info["refresh_token"]}, timeout=60)
            token.raise_for_status()
            session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

            def call(method: str, path: str, body: Any) -> tuple[int, Any, bytes]:
                response = session.request(method, info["instance_url"] + path, json=body, timeout=600)
                return response.status_code, response.headers, response.content

            report("REST queryAll paging", lambda: read_rest(call), server.pid)
            report(f"Bulk 2.0, {chunk:,}-row chunks", lambda: read_bulk(call, chunk), server.pid)
            report_filters(call, leads)
            print(f"  server peak RSS {peak_rss_mb(server.pid):,.0f} MB")
        finally:
            server.terminate()
            server.wait(timeout=30)


def profile_in_process(kind: str, leads: int, chunk: int) -> None:
    from salesforce_sync.emulator import EmulatedOrg

    with EmulatedOrg(counts={"Lead": leads, "Contact": 0, "CampaignMember": 0}) as org:
        headers = {"Authorization": f"Bearer {org.access_token()}"}

        def call(method: str, path: str, body: Any) -> tuple[int, Any, bytes]:
            payload = json.dumps(body).encode() if body is not None else b""
            response, _ = org.server.dispatch(method, path, headers, payload)
            return response.status, response.headers, response.body

        profiler = cProfile.Profile()
        profiler.enable()
        report(f"{kind} (in process, profiled)", (lambda: read_rest(call)) if kind == "rest"
               else (lambda: read_bulk(call, chunk)))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000, help="Bulk 2.0 maxRecords per result chunk")
    parser.add_argument("--profile", choices=["rest", "bulk"], help="profile one read in process instead")
    arguments = parser.parse_args()
    print(f"emulator throughput: {arguments.leads:,} Leads, {len(FIELDS.split(','))} fields per record", flush=True)
    if arguments.profile:
        profile_in_process(arguments.profile, arguments.leads, arguments.chunk)
    else:
        serve_and_measure(arguments.leads, arguments.chunk)


if __name__ == "__main__":
    main()
