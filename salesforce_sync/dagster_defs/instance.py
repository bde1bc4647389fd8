"""The Dagster instance the project's dagster.yaml files name (`instance_class`): Dagster's own, except that it
writes a run's planned events and a step's per-window materializations in batches, and storages that write
such a batch at once: on SQLite (the instance's default storage) in one transaction per database file, on
PostgreSQL (`storage: custom:` BatchedPostgresStorage) in one insert. A first sync over hundreds of windows then
spends about a second in Dagster's bookkeeping instead of a minute (bench/quickstart_bookkeeping.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    AssetCheckEvaluationPlanned,
)
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, AssetKeyTable, SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage, PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

EVENT_BATCH_SIZE = 1000
"""Events Dagster collects before one write (it batches only a run's planned events and a step's per-partition
materializations, and writes what it holds when the run is created or the step's output is handled).
DAGSTER_EVENT_BATCH_SIZE overrides it; 0 writes every event on its own, as stock Dagster does."""
PLANNED = frozenset({dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                     dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED})


class SyncDagsterInstance(dg.DagsterInstance):
    """Named in dagster.yaml as `instance_class`, so every process that opens the instance from it (the CLI,
    `dagster dev`'s webserver and daemon, each run's worker, which get the instance's reference) batches."""

    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        """Dagster's defaults, with the SQLite storage swapped for the batching one (same files, same layout)."""
        defaults = dict(InstanceRef.config_defaults(base_dir))
        for key, storage in (("storage", BatchedSqliteStorage), ("event_log_storage", BatchedSqliteEventLogStorage)):
            stock = defaults[key]
            assert stock is not None
            defaults[key] = ConfigurableClassData(__name__, storage.__name__, stock.config_yaml)
        return defaults

    def _get_event_batch_size(self) -> int:
        return int(os.environ.get("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE))


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log, writing a batch in one transaction on the run's database and one
    on the index database, with the same rows storing each event in turn would leave."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: Mapping[str, Any]) -> BatchedSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        if len({event.run_id for event in events}) != 1:  # Dagster batches within one run; anything else as stock
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        indexed = [(event, row) for event, row in zip(events, rows, strict=True) if event.is_dagster_event and (
            event.dagster_event_type in ASSET_EVENTS or event.dagster_event_type in ASSET_CHECK_EVENTS
            or event.dagster_event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS)]
        mirrored: list[tuple[dg.EventLogEntry, int]] = []
        checks: list[tuple[dg.EventLogEntry, int]] = []
        with self.index_transaction() as conn:
            inserted = conn.execute(SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                [row for _, row in indexed]) if indexed else []
            for (event, row), (event_id,) in zip(indexed, list(inserted), strict=True):
                if event_id is None:
                    raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
                if event.dagster_event_type in ASSET_EVENTS:
                    mirrored.append((event, event_id))
                elif event.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                    store_check_planned(self, conn, event, event_id, row["event"])
                elif event.dagster_event_type in ASSET_CHECK_EVENTS:
                    checks.append((event, event_id))
            self._store_asset_event_tags(conn, [event for event, _ in mirrored], [event_id for _, event_id in mirrored])
            self._store_asset_rows(conn, mirrored)
        for event, event_id in checks:
            self.store_asset_check_event(event, event_id)

    def _store_asset_rows(self, conn: Connection, mirrored: list[tuple[dg.EventLogEntry, int]]) -> None:
        """One upsert per asset key, the row storing its events one at a time leaves: each event type sets the
        same columns every time, so the last event of each type, in order, sets them all."""
        has_index_cols = self._has_asset_key_index_cols_on_connection(conn)
        last_of_type = {(event.dagster_event.asset_key, event.dagster_event_type): index
                        for index, (event, _) in enumerate(mirrored)
                        if event.dagster_event and event.dagster_event.asset_key}
        by_key: dict[str, dict[str, Any]] = {}
        for (asset_key, _), index in sorted(last_of_type.items(), key=lambda item: item[1]):
            values = self._get_asset_entry_values(*mirrored[index], has_index_cols)
            if values:
                by_key.setdefault(asset_key.to_string(), {}).update(values)
        for asset_key, values in by_key.items():
            conn.execute(sqlite_insert(AssetKeyTable).values(asset_key=asset_key, **values)
                         .on_conflict_do_update(index_elements=[AssetKeyTable.c.asset_key], set_=values))


def store_check_planned(storage: SqlEventLogStorage, conn: Connection, event: dg.EventLogEntry, event_id: int,
                        serialized: str) -> None:
    """The planned rows of an asset check, one per partition of the run, as Dagster's storage writes them, the
    event serialized once rather than once per partition."""
    planned = event.get_dagster_event().event_specific_data
    assert isinstance(planned, AssetCheckEvaluationPlanned)
    keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
    conn.execute(AssetCheckExecutionsTable.insert(), [
        {"asset_key": planned.asset_key.to_string(), "check_name": planned.check_name, "partition": key,
         "run_id": event.run_id, "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
         "evaluation_event": serialized, "evaluation_event_timestamp": storage._event_insert_timestamp(event),
         "evaluation_event_storage_id": event_id} for key in keys])


class BatchedPostgresEventLogStorage(PostgresEventLogStorage):
    """Dagster's PostgreSQL event log, which writes a batch of materializations in one insert itself, also
    writing a run's planned events (of assets and checks) in one insert and one index transaction."""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: Mapping[str, Any]) -> BatchedPostgresEventLogStorage:
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))

    def store_event_batch(self, events: Sequence[dg.EventLogEntry]) -> None:
        if not events or any(event.dagster_event_type not in PLANNED for event in events):
            super().store_event_batch(events)
            return
        rows = [self._event_to_row(event) for event in events]
        with self._connect() as conn:
            event_ids = [row.id for row in conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows)]
        with self.index_transaction() as conn:
            last_of_key = {}
            for event, row, event_id in zip(events, rows, event_ids, strict=True):
                if event.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                    store_check_planned(self, conn, event, event_id, row["event"])
                elif event.dagster_event and event.dagster_event.asset_key:
                    last_of_key[event.dagster_event.asset_key] = (event, event_id)
            # A planned event sets its asset's last run and timestamp, so the last one of each asset sets them all.
            for event, event_id in last_of_key.values():
                self._store_asset_event(conn, event, event_id)


class BatchedPostgresStorage(DagsterPostgresStorage):
    """Dagster's PostgreSQL storage (`storage: postgres:`'s class) with the batching event log; dagster.yaml names
    it as `storage: custom:` with the same `postgres_db` settings."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider: Any = None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._event_log_storage = BatchedPostgresEventLogStorage(postgres_url, should_autocreate_tables,
                                                                 token_provider=token_provider)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: Mapping[str, Any]) -> BatchedPostgresStorage:
        return cls(inst_data=inst_data, postgres_url=pg_url_from_config(config_value),
                   should_autocreate_tables=config_value.get("should_autocreate_tables", True),
                   token_provider=get_token_provider_from_config(config_value))


class BatchedSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (runs, schedules, event log under one folder) with the batching event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage = BatchedSqliteEventLogStorage(
            os.path.dirname(self._event_log_storage.path_for_shard("index")))

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None,  # type: ignore[override]
                          config_value: Mapping[str, Any]) -> BatchedSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
