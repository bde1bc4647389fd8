"""`salesforce-sync sync`: run integrations' sync jobs in this process on a local Dagster instance,
over every window not yet synced (one run and one query per object), and print what was synced."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from dagster._cli.job import execute_launch_command
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.utils import make_new_run_id
from dagster._daemon.controller import get_daemon_statuses
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_shared.cli import WorkspaceOpts

from salesforce_sync.commands.common import first_line, open_store, root_cause, runnable_integrations
from salesforce_sync.commands.run_report import object_summaries, progress_bar, run_failures, show_progress
from salesforce_sync.config.models import IntegrationConfig, SyncConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, LEASE_HOLDER_TAG, LEASE_OWNER_TAG, pending_windows
from salesforce_sync.dagster_defs.definitions import build_definitions, sync_job_name
from salesforce_sync.home import sync_home
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.runs.lease import SyncLease, SyncLeaseBusy, acquire_lease, cli_holder

LOCAL_INSTANCE_YAML = """\
# Local Dagster instance of salesforce-sync (SQLite storage). `dagster dev` shows its runs when
# started with DAGSTER_HOME pointing at this folder. Its instance class writes a run's per-window events
# in batches (salesforce_sync/dagster_defs/instance.py).
instance_class:
  module: salesforce_sync.dagster_defs.instance
  class: SyncDagsterInstance
telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: salesforce_sync/integration
        limit: 1
        value:
          applyLimitPerUniqueValue: true
"""


DEFAULT_WORKSPACE = Path("workspace.yaml")
"""The workspace file `dagster-daemon run` reads in the folder it starts in."""
FINISHED_STATUSES = frozenset({dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE,
                               dg.DagsterRunStatus.CANCELED})
RUN_POLL_SECONDS = 1.0

# Dagster's console logger would print a failed step's whole error chain and traceback; the CLI prints the
# root cause itself (run_report.run_failures), and the run's event log keeps the rest.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class DagsterSetupError(Exception):
    """Dagster's instance (its dagster.yaml, its storage) or the workspace's code location could not be used;
    says which and why."""


def local_instance() -> dg.DagsterInstance:
    """DAGSTER_HOME's instance when set, else a persistent one under the sync home."""
    if os.environ.get("DAGSTER_HOME"):
        try:
            return dg.DagsterInstance.get()
        except Exception as error:  # its dagster.yaml, an unset variable in it, its storage: never our bug
            cause = root_cause(error)
            why = ("; ".join(" ".join(problem.message.split("Stack Trace:")[0].split()) for problem in cause.errors)
                   if isinstance(cause, dg.DagsterInvalidConfigError) else first_line(str(cause)))
            raise DagsterSetupError(f"the Dagster instance in DAGSTER_HOME={os.environ['DAGSTER_HOME']} cannot be "
                                       f"opened: {why}") from error
    home = sync_home() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    return dg.DagsterInstance.from_config(str(home))


def run_sync(config: SyncConfig, integration_ids: list[str], *, full: bool,
             workspace: Path = DEFAULT_WORKSPACE) -> int:
    """Sync the integrations (all when none are named); 1 when any sync failed or could not start.

    With a Dagster daemon running for the instance, each run goes through the instance's run queue (its
    concurrency limits, its run launcher) from the code location `workspace` names, and this command waits
    for it; otherwise the run executes in this process."""
    defs = build_definitions(config)
    instance = local_instance()
    chosen = list(runnable_integrations(config, integration_ids, "not synced"))
    queued = queue_daemon_running(instance)
    if queued and not workspace.is_file():
        print(f"a Dagster daemon serves this instance, but there is no workspace file {workspace} naming the code "
              "location, so the sync runs in this process (give --workspace to use the run queue)")
        queued = False
    failures = 0
    for integration in chosen:
        refusal = _history_refusal(integration, open_store())
        if refusal:
            print(refusal)
            continue
        try:
            lease = _take_lease(integration)
        except SyncLeaseBusy as busy:
            print(f"{integration.id}: not synced: {busy}")
            failures += 1
            continue
        with lease:
            job = defs.resolve_job_def(sync_job_name(integration.id))
            span = pending_windows(integration, job.partitions_def, open_store(), full=full)
            if span is None:
                print(f"{integration.id}: up to date, no complete window to sync yet")
                continue
            tags = {"dagster/asset_partition_range_start": span[0], "dagster/asset_partition_range_end": span[1],
                    INTEGRATION_TAG: integration.id, LEASE_OWNER_TAG: lease.holder.owner,
                    LEASE_HOLDER_TAG: lease.holder.label}
            run_id = make_new_run_id()
            started = datetime.now(UTC)
            with progress_bar(instance, integration, run_id, enabled=show_progress()):
                if queued:
                    succeeded = _submit_and_wait(instance, workspace, job.name, tags, run_id)
                else:
                    succeeded = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False,
                                                       run_config=QUIET, run_id=run_id).success
        print(f"{integration.id}: {'full re-sync' if full else 'sync'} of windows {span[0]} .. {span[1]} "
              f"({'succeeded' if succeeded else 'FAILED'}, run {run_id}{', through the run queue' if queued else ''})")
        _print_outcome(instance, integration, run_id, started)
        failures += not succeeded
    store = open_store()
    try:
        counts = store.user_counts()
        where = store.url.render_as_string(hide_password=True)
    finally:
        store.close()
    print(f"\naudience store {where} now holds:\n" + (counts.to_string(index=False) if len(counts) else "nobody yet"))
    return 1 if failures else 0


def queue_daemon_running(instance: dg.DagsterInstance) -> bool:
    """Whether the instance queues runs and a daemon dequeues them: its queued-run coordinator has sent a
    heartbeat lately (the check the Dagster UI's daemon page makes)."""
    if not isinstance(instance.run_coordinator, QueuedRunCoordinator):
        return False
    daemon_type = QueuedRunCoordinatorDaemon.daemon_type()
    return bool(get_daemon_statuses(instance, [daemon_type], ignore_errors=True)[daemon_type].healthy)


def _submit_and_wait(instance: dg.DagsterInstance, workspace: Path, job_name: str, tags: dict[str, str],
                     run_id: str) -> bool:
    """Create the run from the workspace's code location, submit it to the run queue and wait until it ends."""
    try:
        execute_launch_command(instance=instance, workspace_opts=WorkspaceOpts(workspace=[str(workspace)]),
                               job_name=job_name, tags=json.dumps(tags), run_id=run_id)
    except Exception as error:  # the workspace file, its code location or the job in it: setup, not our bug
        raise DagsterSetupError(f"job {job_name} could not be submitted from the code location of workspace "
                                f"{workspace}: {first_line(str(root_cause(error)))}") from error
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.status in FINISHED_STATUSES:
            return run.status == dg.DagsterRunStatus.SUCCESS
        time.sleep(RUN_POLL_SECONDS)


def _print_outcome(instance: dg.DagsterInstance, integration: IntegrationConfig, run_id: str,
                   started: datetime) -> None:
    """A line per object synced, the objects the API budget deferred (a later run syncs them) and, on stderr,
    the root cause of each failed step."""
    store = open_store()
    try:
        for summary in object_summaries(store, instance, integration, run_id, started):
            print(summary.line())
        deferred = [entry for entry in store.sync_log(integration.id, SyncEvent.SYNC_DEFERRED, since=started)
                    if entry.run_id == run_id]
    finally:
        store.close()
    for entry in deferred:
        print(f"  {entry.object_type}: {entry.message}")
    for where, cause in run_failures(instance, run_id):
        print(f"salesforce-sync sync: error: integration '{integration.id}', {where}: {cause}", file=sys.stderr)


def _take_lease(integration: IntegrationConfig) -> SyncLease:
    """This command's hold on the integration for the whole run it starts (its steps re-enter it)."""
    store = open_store()
    try:
        return acquire_lease(store, integration.id, cli_holder(), wait=integration.lease_wait)
    finally:
        store.close()


def _history_refusal(integration: IntegrationConfig, store: AudienceStore) -> str | None:
    """Why a historical_only integration whose initial import is done does not sync again (closes `store`)."""
    try:
        if integration.history != "historical_only":
            return None
        ends = {state.object_type: state.last_success_window_end for state in store.states(integration.id)}
    finally:
        store.close()
    done = [ends.get(object_type) for object_type in integration.object_types]
    if not done or any(end is None for end in done):
        return None
    return (f"{integration.id}: not synced: history is historical_only and its initial import finished "
            f"(through {min(done).isoformat()}); nothing syncs after it (set history: historical_and_forward to "
            f"keep it in step)")
