"""What `sync` shows of a run, wherever it executes (in this process or through the instance's run queue):
a progress bar over the integration's objects while it runs, read from the run's event log, then a line
per object from the store's sync log and the root cause of every failed step."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.dagster_defs.assets import asset_key
from salesforce_sync.dagster_defs.errors import user_error_text
from salesforce_sync.store import AudienceStore, SyncEvent

POLL_SECONDS = 0.5
SYNC_LOG_SCANNED = 1000  # entries since the run started, plenty for one run of one integration


@dataclass(frozen=True)
class ObjectSummary:
    """One object's share of a run: what changed, what was read unchanged, the API calls and the time."""

    object_type: str
    imported: int
    updated: int
    deleted: int
    unchanged: int
    api_calls: int | None
    seconds: float

    @property
    def records_per_second(self) -> float:
        records = self.imported + self.updated + self.deleted + self.unchanged
        return records / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        calls = "?" if self.api_calls is None else str(self.api_calls)
        return (f"  {self.object_type}: {self.imported} imported, {self.updated} updated, {self.deleted} deleted, "
                f"{self.unchanged} unchanged; {calls} API calls, {self.seconds:.2f} s, "
                f"{self.records_per_second:,.0f} records/s")


def object_summaries(store: AudienceStore, instance: dg.DagsterInstance, integration: IntegrationConfig,
                     run_id: str, since: datetime) -> list[ObjectSummary]:
    """Each object the run completed, in config order, from the sync log entries the run wrote."""
    entries = [entry for entry in store.sync_log(integration.id, since=since, limit=SYNC_LOG_SCANNED)
               if entry.run_id == run_id]
    summaries = []
    for object_type in integration.object_types:
        mine = [entry for entry in entries if entry.object_type == object_type]
        completed = [entry for entry in mine if entry.event == SyncEvent.SYNC_COMPLETED]
        if not completed:
            continue

        def total(event: SyncEvent, entries: list = mine) -> int:
            return sum(entry.count or 0 for entry in entries if entry.event == event)

        summaries.append(ObjectSummary(
            object_type=object_type,
            imported=total(SyncEvent.RECORDS_IMPORTED),
            updated=total(SyncEvent.RECORDS_UPDATED),
            deleted=total(SyncEvent.RECORDS_DELETED),
            unchanged=sum(int((entry.details or {}).get("skipped", 0)) for entry in completed),
            api_calls=_api_calls(instance, run_id, asset_key(integration.id, object_type)),
            seconds=sum(entry.duration_seconds or 0.0 for entry in completed),
        ))
    return summaries


def _api_calls(instance: dg.DagsterInstance, run_id: str, key: dg.AssetKey) -> int | None:
    """The API calls the run's materializations of `key` report (the largest, should a range repeat them)."""
    calls = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is not None and materialization.asset_key == key and "api_calls" in materialization.metadata:
            calls.append(int(materialization.metadata["api_calls"].value))
    return max(calls, default=None)


def run_failures(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(`step KEY`, root cause) of each failed step, Dagster's wrapper errors unwrapped; when no step failed but
    the run did (it could not start: the code location did not load, the run worker died), (`run`, why)."""
    failures = []
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        if event is not None and event.step_failure_data is not None and event.step_failure_data.error is not None:
            failures.append((f"step {event.step_key}", user_error_text(event.step_failure_data.error)))
    if failures:
        return failures
    return [("run", record.dagster_event.message or "failed")
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE) if record.dagster_event]


@contextmanager
def progress_bar(instance: dg.DagsterInstance, integration: IntegrationConfig, run_id: str, *,
                 enabled: bool) -> Iterator[None]:
    """While the block runs, a bar of the integration's objects done, advanced from the run's event log by a
    polling thread (in-process runs call the IO manager, not us). Nothing at all when `enabled` is false."""
    if not enabled:
        yield
        return
    steps = {"__".join(asset_key(integration.id, object_type).path): object_type
             for object_type in integration.object_types}
    stop = threading.Event()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("objects"), TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(f"{integration.id}: starting", total=len(steps))

        def follow() -> None:
            while not stop.wait(POLL_SECONDS):
                done, running = _objects_done(instance, run_id, steps)
                now = ", ".join(running) if running else "waiting"
                bar.update(task, completed=len(done), description=f"{integration.id}: {now}")

        watcher = threading.Thread(target=follow, name=f"progress-{run_id}", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()


def _objects_done(instance: dg.DagsterInstance, run_id: str, steps: dict[str, str]) -> tuple[set[str], list[str]]:
    """Objects whose step succeeded or failed so far, and the objects whose steps are running."""
    done: set[str] = set()
    started: list[str] = []
    records = instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS,
                                                  dg.DagsterEventType.STEP_FAILURE})
    for record in records:
        event = record.dagster_event
        object_type = steps.get(event.step_key or "") if event is not None else None
        if object_type is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started.append(object_type)
        else:
            done.add(object_type)
    return done, [object_type for object_type in dict.fromkeys(started) if object_type not in done]


def show_progress() -> bool:
    """A bar only for a person at a terminal: not in tests, CI or a pipe."""
    return sys.stdout.isatty()
