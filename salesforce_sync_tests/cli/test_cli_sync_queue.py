"""Where `salesforce-sync sync` runs a sync: in its own process when no Dagster daemon serves the instance,
through the instance's run queue (and a run worker the daemon launches) when one does; in both the CLI holds
the integration's lease, which the run re-enters, and prints the same summary."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from salesforce_sync.cli import main
from salesforce_sync.commands.sync import LOCAL_INSTANCE_YAML, queue_daemon_running
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, LEASE_OWNER_TAG
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync_tests.cli.cli_support import config_text, emulator_integration, set_app_credentials
from salesforce_sync_tests.deployment.test_deployment import BIN, Processes, wait_for

WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: salesforce_sync.dagster_defs.definitions
      attribute: defs
      location_name: salesforce_sync
"""
SUMMARY_LINE = re.compile(r"^  Lead: \d+ imported, \d+ updated, \d+ deleted, \d+ unchanged; \d+ API calls, ",
                          re.MULTILINE)


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An instance of its own (SQLite, the run queue Dagster configures by default) and a workspace file."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
    (tmp_path / "workspace.yaml").write_text(WORKSPACE_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop()


def manual_integration(org: EmulatedOrg) -> str:
    """Synced only when asked (no schedule sensor), so the daemon launches nothing of its own."""
    start = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    return config_text(emulator_integration(org, start=start, extra="    frequency: manual\n"))


def the_run(instance: dg.DagsterInstance, output: str) -> dg.DagsterRun:
    run_id = re.search(r"run ([0-9a-f-]{36})", output)
    assert run_id, output
    run = instance.get_run_by_id(run_id.group(1))
    assert run is not None
    return run


def test_without_a_daemon_the_sync_runs_in_this_process(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, dagster_home: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(manual_integration(org))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    instance = dg.DagsterInstance.get()
    assert not queue_daemon_running(instance)

    assert main(["sync", "crm", "--full"]) == 0
    out = capsys.readouterr().out
    assert "through the run queue" not in out
    assert SUMMARY_LINE.search(out), out
    run = the_run(instance, out)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[INTEGRATION_TAG] == "crm"
    assert run.tags[LEASE_OWNER_TAG].startswith("cli:")
    assert not any(record.dagster_event and record.dagster_event.event_type == dg.DagsterEventType.RUN_ENQUEUED
                   for record in instance.all_logs(run.run_id))


@pytest.mark.slow
def test_with_a_daemon_the_sync_goes_through_the_run_queue_and_waits_for_the_run(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, dagster_home: Path,
        tmp_path: Path, processes: Processes, capsys: pytest.CaptureFixture[str]) -> None:
    use_config(manual_integration(org))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    instance = dg.DagsterInstance.get()
    processes.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(tmp_path / "workspace.yaml")],
                    dict(os.environ), tmp_path)
    wait_for("the daemon's heartbeat", lambda: queue_daemon_running(instance), processes, timeout=120)

    assert main(["sync", "crm", "--full"]) == 0, processes.tails()
    out = capsys.readouterr().out
    assert "through the run queue" in out
    assert SUMMARY_LINE.search(out), out
    run = the_run(instance, out)
    assert run.status == dg.DagsterRunStatus.SUCCESS
    assert run.tags[LEASE_OWNER_TAG].startswith("cli:")
    events = {record.dagster_event.event_type for record in instance.all_logs(run.run_id) if record.dagster_event}
    assert {dg.DagsterEventType.RUN_ENQUEUED, dg.DagsterEventType.RUN_STARTING} <= events  # queued, then launched
    step_starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
    step_pids = {record.dagster_event.pid for record in step_starts if record.dagster_event}
    assert step_pids and os.getpid() not in step_pids  # a run worker the daemon launched ran the steps

    broken = tmp_path / "broken_workspace.yaml"
    broken.write_text(WORKSPACE_YAML.replace("dagster_defs.definitions", "no_such_module"))
    assert main(["sync", "crm", "--full", "--workspace", str(broken)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"salesforce-sync sync: error: job sync_crm could not be submitted from the code location of "
                          f"workspace {broken}: "), err
    assert "no_such_module" in err

    assert main(["sync", "crm", "--full", "--workspace", str(tmp_path / "missing.yaml")]) == 0
    out = capsys.readouterr().out
    assert "there is no workspace file" in out and "through the run queue" not in out
    assert the_run(instance, out).status == dg.DagsterRunStatus.SUCCESS
