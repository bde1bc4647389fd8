"""Overlapping syncs of one integration launched by different routes (a CLI process, a Dagster job in this
process, a second CLI), on SQLite and PostgreSQL: the second waits for the first or fails with one line
naming it, and the store ends equal to the org field by field (before the lease, two overlapping full
syncs each swept away the records the other had stamped). A killed holder's lease is taken over."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from salesforce_sync.commands.sync import QUIET, local_instance, run_sync
from salesforce_sync.config.loader import load_config
from salesforce_sync.dagster_defs.definitions import build_definitions, sync_job_name
from salesforce_sync.dagster_defs.sensors import RANGE_END_TAG, RANGE_START_TAG
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    assert_same_rows,
    cli_setup,
    hour_floor,
    oracle_rows,
    stored_rows,
)

LEADS = 3000
CHUNK = 500
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
DEADLINE_SECONDS = 120


@dataclass
class Setup:
    org: EmulatedOrg
    store: AudienceStore
    config_file: Path
    environment: dict[str, str]

    def cli(self, home: str, *options: str) -> subprocess.Popen[str]:
        """`salesforce-sync sync crm` in a process of its own, with its own local Dagster instance."""
        return subprocess.Popen([sys.executable, "-m", "salesforce_sync.cli", "sync", "crm", *options],
                                env={**self.environment, "SALESFORCE_SYNC_HOME": str(self.config_file.parent / home)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_for_cli_lease(self, process: subprocess.Popen[str], *, stored: bool = False) -> str:
        """The holder label once the CLI process holds the lease (and, with `stored`, wrote a chunk)."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        while True:
            lease = self.store.leases.current("crm")
            users = self.store.user_counts("acme")
            if lease is not None and lease.holder.startswith("CLI") and (not stored or len(users)):
                assert str(process.pid) in lease.holder
                return lease.holder
            assert process.poll() is None, f"the CLI ended before it was seen holding it: {process.stdout.read()}"
            assert time.monotonic() < deadline, "the CLI never took the lease"
            time.sleep(0.02)

    def assert_store_exact(self) -> None:
        assert_same_rows(stored_rows(self.store, "acme", "crm", "Lead"),
                         oracle_rows(self.org.simple_salesforce(), "crm", "Lead", FAR_FUTURE, rules_soql=""))
        assert self.store.leases.current("crm") is None  # every holder let go


@pytest.fixture
def setup(emulated_org_factory: Callable[..., EmulatedOrg], store_url: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """A Lead-only integration whose reads are slow (every query page waits), so syncs overlap."""
    org = emulated_org_factory(seed=13, counts={"Lead": LEADS, "Contact": 0, "CampaignMember": 0})
    config_file, environment = cli_setup(org, store_url, tmp_path, hour_floor(datetime.now(UTC)) - HOUR,
                                         chunk_size=CHUNK)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "in_process"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    org.control.add_latency("/query", 300)
    with AudienceStore(store_url) as store:
        yield Setup(org, store, config_file, environment)


def with_lease_wait(config_file: Path, seconds: int) -> Path:
    """The same integration with another lease_wait_seconds, in a file next to it."""
    document = yaml.safe_load(config_file.read_text())
    document["integrations"][0]["lease_wait_seconds"] = seconds
    changed = config_file.with_name(f"integrations_wait_{seconds}.yaml")
    changed.write_text(yaml.safe_dump(document))
    return changed


def finished(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=DEADLINE_SECONDS)
    assert process.returncode == 0, output
    return output


def completions(store: AudienceStore) -> list[tuple[str | None, datetime]]:
    return sorted((entry.run_id, entry.at) for entry in store.sync_log("crm", SyncEvent.SYNC_COMPLETED))


@pytest.mark.slow
def test_a_dagster_run_started_while_a_cli_sync_runs_waits_for_it_and_the_store_stays_exact(setup: Setup) -> None:
    # Slow enough that, without the lease, the Dagster run's full scan re-stamps records before the CLI's
    # sweep, which then marks them deleted (seen before the lease existed).
    setup.org.control.add_latency("/query", 700)
    cli = setup.cli("cli_home")
    try:
        setup.wait_for_cli_lease(cli)
        defs = build_definitions(load_config(setup.config_file))
        job = defs.resolve_job_def(sync_job_name("crm"))
        partitions = job.partitions_def
        tags = {RANGE_START_TAG: partitions.get_first_partition_key(),
                RANGE_END_TAG: partitions.get_last_partition_key()}
        started = datetime.now(UTC)
        result = job.execute_in_process(instance=local_instance(), tags=tags, raise_on_error=False, run_config=QUIET)
        assert "full re-sync" not in finished(cli)  # a plain CLI sync (its first: every window)
    finally:
        cli.kill()
        cli.wait()

    assert result.success
    (cli_done, cli_at), = [(run, at) for run, at in completions(setup.store) if run != result.run_id]
    (dagster_at,) = [at for run, at in completions(setup.store) if run == result.run_id]
    assert started < cli_at < dagster_at  # started during the CLI's sync, wrote only after it
    setup.assert_store_exact()


@pytest.mark.slow
def test_two_cli_syncs_run_one_after_the_other_and_a_third_that_cannot_wait_fails_naming_the_holder(
        setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    first = setup.cli("first_home")
    second = None
    try:
        holder = setup.wait_for_cli_lease(first)
        second = setup.cli("second_home", "--full")  # a full re-sync sweeps what it does not list: the risky one
        impatient = load_config(with_lease_wait(setup.config_file, 1))
        assert run_sync(impatient, ["crm"], full=False) == 1
        finished(first)
        assert "full re-sync" in finished(second)
    finally:
        for process in (first, second):
            if process is not None:
                process.kill()
                process.wait()

    (line,) = [text for text in capsys.readouterr().out.splitlines() if "not synced" in text]
    assert line.startswith("crm: not synced: integration 'crm' is already being synced by ")
    assert holder in line and "gave up after waiting 1 s" in line
    runs = [run for run, _ in completions(setup.store)]
    assert len(runs) == 2 and len(set(runs)) == 2  # both CLIs synced, one after the other
    assert setup.store.sync_log("crm", SyncEvent.SYNC_COMPLETED)[0].details["skipped"] == LEADS
    setup.assert_store_exact()


@pytest.mark.slow
def test_a_killed_holder_s_lease_is_taken_over_and_the_next_sync_completes_the_store(setup: Setup) -> None:
    cli = setup.cli("killed_home")
    try:
        setup.wait_for_cli_lease(cli, stored=True)
        cli.send_signal(signal.SIGKILL)
    finally:
        cli.kill()
        cli.wait()
    assert setup.store.leases.current("crm") is not None  # nobody released it
    setup.org.control.clear_faults()

    began = time.monotonic()
    assert run_sync(load_config(with_lease_wait(setup.config_file, 30)), ["crm"], full=False) == 0
    assert time.monotonic() - began < 30  # taken over at once: its process is gone
    setup.assert_store_exact()
