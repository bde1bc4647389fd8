"""`salesforce-sync push` and `salesforce-sync rejected` as an operator runs them: a dry run that writes nothing,
the push's summary, the rejection report, one-line errors, and a push killed with SIGKILL mid-way then rerun
(no duplicate in Salesforce, nothing lost)."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from sqlalchemy import create_engine, make_url, text

from salesforce_sync.cli import main
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import cli_setup, hour_floor
from salesforce_sync_tests.write_back.conftest import lead_source, prospect

Source = Callable[[str, list[dict[str, Any]]], None]
KILL_DEADLINE_SECONDS = 120


def configure(org: EmulatedOrg, store_url: str, folder: Path, monkeypatch: pytest.MonkeyPatch,
              write_back: dict[str, Any]) -> dict[str, str]:
    """The config file of integration `crm` with `write_back`, and the environment the CLI runs with."""
    _, environment = cli_setup(org, store_url, folder, hour_floor(datetime.now(UTC)), write_back=write_back)
    environment["SALESFORCE_SYNC_HOME"] = str(folder / "home")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


def leads_at(sf: Salesforce, domain: str) -> list[dict[str, Any]]:
    return sf.query_all(f"SELECT Id, Email, Audience_Id__c FROM Lead WHERE Email LIKE '%@{domain}'")["records"]


def test_dry_run_push_and_rejected_report(org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str,
                                          source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    existing = sf.query("SELECT Id, Email FROM Lead WHERE Email != null AND IsConverted = false "
                        "ORDER BY CreatedDate LIMIT 1")["records"][0]
    source("prospects", [prospect("new", "new@cli.test"), prospect("old", existing["Email"], company="CLI Co"),
                         prospect("broken", "broken address")])
    configure(org, store_url, tmp_path, monkeypatch, {"objects": {"Lead": lead_source()}})

    assert main(["push", "crm", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing is written" in out
    lines = {line.split()[2]: line for line in out.splitlines() if line.startswith("Lead ")}
    assert lines["new"].split()[1] == "create" and "Email=new@cli.test" in lines["new"]
    assert lines["old"].split()[1:4] == ["update", "old", existing["Id"]] and "matched by email" in lines["old"]
    assert "Company=CLI Co" in lines["old"]
    assert not leads_at(sf, "cli.test") and sf.Lead.get(existing["Id"])["Company"] != "CLI Co"
    assert store.write_back.outcomes("crm") == []

    assert main(["push", "crm", "--object", "lead"]) == 0
    out = capsys.readouterr().out
    summary = next(line for line in out.splitlines() if line.startswith("Lead "))
    assert summary.split()[1:6] == ["1", "1", "0", "0", "1"]  # created, updated, unchanged, skipped, rejected
    assert "salesforce-sync rejected crm" in out

    assert main(["rejected", "crm"]) == 0
    report = capsys.readouterr().out.splitlines()
    assert report[0].split()[:6] == ["INTEGRATION", "OBJECT", "KEY", "SALESFORCE", "ID", "CODE"]
    assert report[1].split()[:5] == ["crm", "Lead", "broken", "-", "INVALID_EMAIL_ADDRESS"]
    assert "when changed" in report[1] and report[1].endswith("Email: invalid email address: broken address")
    assert main(["rejected", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["key"], row["status_code"], row["fields"], row["found_before_sending"]) == (
        "broken", "INVALID_EMAIL_ADDRESS", ["Email"], False)

    assert main(["push", "crm", "--object", "Opportunity"]) == 1
    assert capsys.readouterr().err.strip() == ("salesforce-sync push: error: --object 'Opportunity' is not one of "
                                               "Lead, Contact, Account, LeadConversion, CampaignMember, Activity, "
                                               "Task, Event")
    assert main(["push", "crm", "--object", "Account"]) == 1
    assert "write_back.objects has no Account (configured: Lead)" in capsys.readouterr().err


@contextlib.contextmanager
def store_writes_blocked(store_url: str) -> Iterator[None]:
    """Hold the store's write lock (SQLite) or the outcomes table's (PostgreSQL), so a push that has written to
    Salesforce waits before recording what it wrote: where a kill does the most harm."""
    url = make_url(store_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
        return
    engine = create_engine(store_url)
    with engine.connect() as connection, connection.begin() as transaction:
        connection.execute(text("LOCK TABLE write_back_outcomes IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            transaction.rollback()
    engine.dispose()


def wait_for(condition: Callable[[], bool], push: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + KILL_DEADLINE_SECONDS
    while not condition():
        assert push.poll() is None, f"the push ended before {what}"
        assert time.monotonic() < deadline, f"the push did not get to {what} in time"
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("external_id", [False, True], ids=["intents", "external-id"])
def test_a_push_killed_between_writing_and_recording_then_rerun_creates_no_duplicate_and_loses_nothing(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, store_url: str, source: Source, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, external_id: bool) -> None:
    chunk = 100
    rows = [prospect(f"k{n:04d}", f"person{n:04d}@kill.test") for n in range(5 * chunk)]
    keys = [row["person_id"] for row in rows]
    source("prospects", rows)
    settings = lead_source(match=["linked"], **({"external_id_field": "Audience_Id__c"} if external_id else {}))
    environment = configure(org, store_url, tmp_path, monkeypatch, {"chunk_size": chunk, "objects": {"Lead": settings}})
    # Each chunk's write waits before Salesforce processes it: room to strike. Without intents nothing in the store
    # shows the second chunk's write has begun, so the lock waits for the lease check before it (ms) to pass.
    latency_ms = 1500 if external_id else 400
    org.control.add_latency("composite/sobjects", latency_ms)

    push = subprocess.Popen([sys.executable, "-m", "salesforce_sync.cli", "push", "crm"], env=environment,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: sum(store.write_back.outcome_counts("crm", "Lead").values()) == chunk and
                 (external_id or bool(store.write_back.intents("crm", "Lead", keys))), push, "its second chunk")
        if external_id:
            time.sleep(latency_ms / 3000)
        with store_writes_blocked(store_url):
            wait_for(lambda: len(leads_at(sf, "kill.test")) == 2 * chunk, push, "writing its second chunk")
            push.send_signal(signal.SIGKILL)
            push.wait()
    finally:
        push.kill()
        push.wait()
    assert push.returncode == -signal.SIGKILL
    # Salesforce holds the second chunk's records, the store knows only the first chunk's.
    assert sum(store.write_back.outcome_counts("crm", "Lead").values()) == chunk
    assert len(store.write_back.intents("crm", "Lead", keys)) == (0 if external_id else chunk)

    org.control.clear_faults()
    assert main(["push", "crm"]) == 0
    leads = leads_at(sf, "kill.test")
    assert sorted(lead["Email"] for lead in leads) == sorted(row["email"] for row in rows)  # each exactly once
    links = store.write_back.links("crm", "Lead", keys)
    assert sorted(links.values()) == sorted(lead["Id"] for lead in leads)
    counts = store.write_back.outcome_counts("crm", "Lead")
    assert counts.get("rejected", 0) == 0 and sum(counts.values()) == len(rows)
    assert not store.write_back.intents("crm", "Lead", keys)
    if external_id:
        assert all(lead["Audience_Id__c"] == f"k{lead['Email'][6:10]}" for lead in leads)
