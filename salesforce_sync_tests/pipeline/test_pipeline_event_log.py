"""Dagster's bookkeeping on the CLI's local instance (SyncDagsterInstance: batched event writes, one SQLite
transaction per database file) against a stock Dagster instance: the same runs of the project's job over many
windows, one succeeding and one with a failing object, leave the same materializations, planned events,
partition statuses, asset records and check executions; and the batch path, not Dagster's per-event one, wrote
the batched instance's asset events (so a change of Dagster's internals fails here, loudly)."""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.event_log import EventLogStorage, SqliteEventLogStorage
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value
from dagster_postgres import PostgresEventLogStorage
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from salesforce_sync.commands.sync import QUIET, local_instance
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, asset_key
from salesforce_sync.dagster_defs.definitions import build_definitions, sync_job_name
from salesforce_sync.dagster_defs.instance import (
    BatchedPostgresEventLogStorage,
    BatchedSqliteEventLogStorage,
    SyncDagsterInstance,
)
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.conftest import POSTGRES_ADMIN_URL, postgres_required
from salesforce_sync_tests.pipeline.support import HOUR, OBJECTS, https_integration, hour_floor, load_config

ORG_SEED = 11
ORG_COUNTS = {"Lead": 400, "Contact": 200, "CampaignMember": 80}
WINDOWS = 72  # the generated org edits a few percent of its records in the last three days
KINDS = ("batched", "stock")
WINDOW_COUNTS = ("records_imported", "records_updated", "records_deleted", "records_skipped")
REPO = Path(__file__).resolve().parents[2]
PER_EVENT = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
             dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)


@pytest.fixture
def postgres_databases() -> Iterator[dict[str, str]]:
    """Two empty PostgreSQL databases, for the batched and the stock instance's storage."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {kind: f"sfsync_eventlog_{uuid.uuid4().hex[:8]}_{kind}" for kind in KINDS}
    try:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        if postgres_required():
            pytest.fail(f"PostgreSQL is required here but not reachable at {POSTGRES_ADMIN_URL}: {error.orig}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error.orig}")
    try:
        yield {kind: admin.url.set(database=name).render_as_string(hide_password=False) for kind, name in names.items()}
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def instances(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, dg.DagsterInstance]]:
    """The batched instance and a stock one beside it. On SQLite: the instance `salesforce-sync sync` creates
    under the sync home, and one from a plain dagster.yaml. On PostgreSQL: deploy/production/dagster.yaml, and
    Dagster's `storage: postgres:`."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    monkeypatch.setenv("SALESFORCE_SYNC_HOME", str(tmp_path / "home"))
    homes = {kind: tmp_path / f"{kind}_home" for kind in KINDS}
    for home in homes.values():
        home.mkdir()
    if request.param == "sqlite":
        (homes["stock"] / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        found = {"batched": local_instance(), "stock": dg.DagsterInstance.from_config(str(homes["stock"]))}
    else:
        urls = request.getfixturevalue("postgres_databases")
        batched = make_url(urls["batched"])
        for variable, value in (("HOST", batched.host), ("PORT", batched.port or 5432), ("USERNAME", batched.username),
                                ("PASSWORD", batched.password or ""), ("DB", batched.database)):
            monkeypatch.setenv(f"DAGSTER_PG_{variable}", str(value))
        shutil.copy(REPO / "deploy/production/dagster.yaml", homes["batched"] / "dagster.yaml")
        (homes["stock"] / "dagster.yaml").write_text(yaml.safe_dump(
            {"storage": {"postgres": {"postgres_url": urls["stock"]}}, "telemetry": {"enabled": False}}))
        found = {kind: dg.DagsterInstance.from_config(str(home)) for kind, home in homes.items()}
    yield found
    for instance in found.values():
        instance.dispose()


@pytest.fixture
def per_event_writes(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """(storage class, event type) of every event Dagster's SQLite and PostgreSQL event logs store one at a time."""
    writes: Counter = Counter()
    for storage in (SqliteEventLogStorage, PostgresEventLogStorage):
        def counted(self: EventLogStorage, event: dg.EventLogEntry, store_event=storage.store_event) -> None:
            writes[type(self).__name__, event.dagster_event_type] += 1
            store_event(self, event)

        monkeypatch.setattr(storage, "store_event", counted)
    return writes


def run_everywhere(config: SyncConfig, instances: dict[str, dg.DagsterInstance], tmp_path: Path,
                   monkeypatch: pytest.MonkeyPatch) -> tuple[dg.PartitionsDefinition, list[str], dict[str, str]]:
    """One run of the integration's job over its last WINDOWS windows on each instance, each with its own store
    (as `salesforce-sync sync` starts it); the partitions, the range's keys and the run id per instance."""
    partitions = build_definitions(config).resolve_job_def(sync_job_name("crm")).partitions_def
    last = partitions.get_last_partition_key()
    keys = partitions.get_partition_keys()[-WINDOWS:]
    assert keys[-1] == last and len(keys) == WINDOWS
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": last,
            INTEGRATION_TAG: "crm"}
    run_ids = {}
    for kind, instance in instances.items():
        url = f"sqlite:///{tmp_path / f'{kind}-store.db'}"
        with AudienceStore(url) as store:
            store.create_schema()
        monkeypatch.setenv("AUDIENCE_STORE_URL", url)
        job = build_definitions(config).resolve_job_def(sync_job_name("crm"))
        run_ids[kind] = job.execute_in_process(instance=instance, tags=tags, raise_on_error=False,
                                               run_config=QUIET).run_id
    return partitions, keys, run_ids


def bookkeeping(instance: dg.DagsterInstance, key: dg.AssetKey, partitions: dg.PartitionsDefinition,
                run_id: str) -> dict:
    """What the UI and Dagster's partition logic read of one asset after a run, with the run's id in place of
    its value (each instance ran its own) and timings left out."""
    records = instance.fetch_materializations(key, limit=1000).records
    by_partition = {record.partition_key: {name: record.asset_materialization.metadata[name].value
                                           for name in WINDOW_COUNTS} for record in records}
    planned = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                                                               asset_key=key))
    latest = instance.get_latest_materialization_event(key)
    (asset,) = instance.get_asset_records([key])
    last = asset.asset_entry.last_materialization_record
    status = get_and_update_asset_status_cache_value(instance, key, partitions)
    assert status is not None
    return {
        "materialized": set(instance.get_materialized_partitions(key)),
        "by_partition": by_partition,
        "planned": sorted(event.partition_key for event in planned),
        "planned_runs": {event.run_id == run_id for event in planned},
        "latest": latest and (latest.dagster_event.partition, latest.run_id == run_id),
        # The asset's row points at its newest materialization, by the id the event log gave it.
        "asset_row": (asset.asset_entry.last_run_id == run_id, last and (
            last.partition_key, last.run_id == run_id, last.storage_id == records[0].storage_id,
            last.event_log_entry.timestamp == latest.timestamp)),
        "status_materialized": set(status.deserialize_materialized_partition_subsets(partitions).get_partition_keys()),
        "status_failed": set(status.deserialize_failed_partition_subsets(partitions).get_partition_keys()),
        "status_in_progress": set(status.deserialize_in_progress_partition_subsets(partitions).get_partition_keys()),
    }


def check_executions(instance: dg.DagsterInstance, config: SyncConfig, run_id: str) -> dict:
    """Every asset check's executions of the run: (partition, status) of each, by check."""
    graph = build_definitions(config).resolve_asset_graph()
    return {check_key.to_user_string(): sorted(
                (execution.partition or "", execution.status.value)
                for execution in instance.event_log_storage.get_asset_check_execution_history(check_key, limit=10_000)
                if execution.run_id == run_id)
            for check_key in graph.asset_check_keys}


@pytest.fixture
def config(org: EmulatedOrg) -> SyncConfig:
    start = hour_floor(datetime.now(UTC)) - 2 * WINDOWS * HOUR
    return load_config(https_integration(org, "crm", "acme", start, bulk_threshold=100))


@pytest.mark.slow
def test_a_run_over_many_windows_books_what_stock_dagster_books_through_the_batch_path(
        config: SyncConfig, instances: dict[str, dg.DagsterInstance], per_event_writes: Counter, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    batched, stock = (type(instances[kind].event_log_storage) for kind in KINDS)
    assert type(instances["batched"]) is SyncDagsterInstance and type(instances["stock"]) is dg.DagsterInstance
    assert (batched, stock) in {(BatchedSqliteEventLogStorage, SqliteEventLogStorage),
                                (BatchedPostgresEventLogStorage, PostgresEventLogStorage)}

    partitions, keys, run_ids = run_everywhere(config, instances, tmp_path, monkeypatch)

    for kind in KINDS:
        assert instances[kind].get_run_by_id(run_ids[kind]).status == dg.DagsterRunStatus.SUCCESS, kind
    for object_type in OBJECTS:
        key = asset_key("crm", object_type)
        seen = {kind: bookkeeping(instances[kind], key, partitions, run_ids[kind]) for kind in KINDS}
        assert seen["batched"] == seen["stock"], object_type
        books = seen["batched"]
        assert books["materialized"] == books["status_materialized"] == set(keys) == set(books["by_partition"])
        assert books["planned"] == sorted(keys) and books["planned_runs"] == {True}
        assert books["latest"] == (keys[-1], True) and books["asset_row"] == (True, (keys[-1], True, True, True))
        assert not books["status_failed"] and not books["status_in_progress"]
        # True numbers per window: they differ across windows and add up to what the run imported.
        imported = [books["by_partition"][key]["records_imported"] for key in keys]
        run_total = instances["batched"].get_latest_materialization_event(key).asset_materialization.metadata
        assert len(set(imported)) > 2 and sum(imported) == run_total["run_records_imported"].value > 0
    assert check_executions(instances["batched"], config, run_ids["batched"]) == check_executions(
        instances["stock"], config, run_ids["stock"])

    # Dagster handed the batched instance its planned events and per-window materializations in batches.
    for event_type in PER_EVENT:
        assert per_event_writes[stock.__name__, event_type] > 0, event_type
        assert per_event_writes[batched.__name__, event_type] == 0, event_type


@pytest.mark.slow
def test_a_ranged_run_with_a_failing_object_marks_its_windows_failed_as_stock_dagster_does(
        org: EmulatedOrg, config: SyncConfig, instances: dict[str, dg.DagsterInstance], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    org.control.inject_error(r"/sobjects/CampaignMember/describe$", 400, "INVALID_TYPE", "no such object",
                             count=len(KINDS))

    partitions, keys, run_ids = run_everywhere(config, instances, tmp_path, monkeypatch)

    for kind in KINDS:
        assert instances[kind].get_run_by_id(run_ids[kind]).status == dg.DagsterRunStatus.FAILURE, kind
    for object_type in OBJECTS:
        key = asset_key("crm", object_type)
        seen = {kind: bookkeeping(instances[kind], key, partitions, run_ids[kind]) for kind in KINDS}
        assert seen["batched"] == seen["stock"], object_type
        books = seen["batched"]
        assert books["planned"] == sorted(keys)
        if object_type == "CampaignMember":
            assert books["status_failed"] == set(keys) and not books["materialized"] and books["latest"] is None
        else:
            assert books["materialized"] == set(keys) and not books["status_failed"]
    assert check_executions(instances["batched"], config, run_ids["batched"]) == check_executions(
        instances["stock"], config, run_ids["stock"])
