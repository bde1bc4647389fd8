"""`salesforce-sync listen`: the standing change-capture listener of integrations whose change_capture.mode is
`listener`, in this process until `stop` is set (Ctrl-C, SIGTERM). Each micro-sync prints one line and is
reported to the local Dagster instance (the one `sync` uses) as a runless observation of each object asset it
stored, with its counts and lag, so the asset pages show the listener's progress."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import grpc

from salesforce_sync.commands.common import find_integration, first_line, open_store
from salesforce_sync.commands.sync import local_instance
from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import IntegrationConfig, SyncConfig
from salesforce_sync.config.status import missing_settings
from salesforce_sync.dagster_defs.change_capture import micro_sync_observations
from salesforce_sync.runs.change_capture import listen
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.micro_sync import MicroSyncResult
from salesforce_sync.salesforce.pubsub import PubSubError

LISTENER_SOURCE = "salesforce-sync listen"
"""The `reported_by` metadata of the listener's observations (a micro_sync run's have none)."""


def listening(config: SyncConfig, integration_ids: list[str]) -> list[IntegrationConfig]:
    """The integrations to listen for: those named (each must be set up for a standing listener), else every
    active one with change capture in listener mode. Raises ConfigError naming what is wrong."""
    if not integration_ids:
        chosen = [i for i in config.integrations if i.change_capture.enabled and i.change_capture.mode == "listener"
                  and i.active and not missing_settings(i)]
        if not chosen:
            raise ConfigError("no active, complete integration has change_capture enabled with mode: listener")
        return chosen
    chosen = [find_integration(config, integration_id) for integration_id in integration_ids]
    for integration in chosen:
        why = _not_listening(integration)
        if why:
            raise ConfigError(f"integration {integration.id!r}: no standing listener: {why}")
    return chosen


def _not_listening(integration: IntegrationConfig) -> str | None:
    settings = integration.change_capture
    if not settings.enabled:
        return "change_capture is not enabled"
    if settings.mode != "listener":
        return (f"change_capture.mode is {settings.mode} (its change_capture_{integration.id} sensor listens under "
                f"Dagster's daemon; set mode: listener to use this command)")
    if not integration.active:
        return "it is inactive (active: false)"
    missing = missing_settings(integration)
    return f"incomplete settings: {'; '.join(missing)}" if missing else None


def run_listen(config: SyncConfig, integration_ids: list[str], *, stop: threading.Event,
               retryable: tuple[type[Exception], ...], describe: Callable[[Exception], str]) -> int:
    """Listen for each integration in a thread of its own until `stop` is set; 1 when a listener had to give up
    (its configuration). A `retryable` error is printed (as `describe` words it) and its listener starts again
    after drain_seconds, from the replay id the last applied batch stored."""
    chosen = listening(config, integration_ids)
    instance = local_instance()
    reporting = threading.Lock()  # one writer at a time to the instance's event log
    failed: list[str] = []

    def report(integration: IntegrationConfig, result: MicroSyncResult) -> None:
        print(progress_line(integration, result), flush=True)
        try:
            with reporting:
                for observation in micro_sync_observations(integration, result, reported_by=LISTENER_SOURCE):
                    instance.report_runless_asset_event(observation)
        except Exception as error:  # noqa: BLE001 - the instance's storage: the records are stored, only the report is lost
            _error(integration, f"the Dagster instance did not take the micro-sync's report: {first_line(str(error))}")

    def run(integration: IntegrationConfig) -> None:
        while not stop.is_set():
            try:
                with open_store() as store, connect(integration) as client:
                    listen(store, client, integration, stop=stop, on_applied=lambda result: report(integration, result))
            except ConfigError as error:
                _error(integration, first_line(str(error)))
                failed.append(integration.id)
                return
            except (*retryable, PubSubError, grpc.RpcError) as error:
                wait = integration.change_capture.drain_seconds
                _error(integration, f"{describe(error)}; listening again in {wait:g} s")
                stop.wait(wait)
            except BaseException:  # a bug: its traceback shows, and the command fails
                failed.append(integration.id)
                raise
        _stopped(integration)

    threads = [threading.Thread(target=run, args=(integration,), name=f"listen-{integration.id}", daemon=True)
               for integration in chosen]
    for integration, thread in zip(chosen, threads, strict=True):
        print(f"{integration.id}: listening to {integration.change_capture.topic} (Ctrl-C or SIGTERM stops)",
              flush=True)
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)  # short joins: the main thread keeps taking signals
    return 1 if failed else 0


def progress_line(integration: IntegrationConfig, result: MicroSyncResult) -> str:
    counts = result.counts
    lag = f", lag median {result.lag.median_seconds:.2f} s, max {result.lag.max_seconds:.2f} s" if result.lag else ""
    resynced = f", re-synced by window: {', '.join(result.resynced)}" if result.resynced else ""
    return (f"{integration.id}: micro-sync of {result.events} change events: {counts.changed} records applied "
            f"({counts.imported} imported, {counts.updated} updated, {counts.deleted} deleted){lag}{resynced}")


def _stopped(integration: IntegrationConfig) -> None:
    store = open_store()
    try:
        state = store.change_capture_state(integration.id)
    finally:
        store.close()
    where = state.replay_id.hex() if state and state.replay_id else "none yet"
    print(f"{integration.id}: stopped; stored replay id {where}", flush=True)


def _error(integration: IntegrationConfig, message: str) -> None:
    print(f"salesforce-sync listen: error: integration '{integration.id}': {message}", file=sys.stderr, flush=True)

