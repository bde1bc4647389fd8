"""All SQL of the write-back: reading a source (a table or query of the store's database) in chunks, and the
links, snapshots, outcomes and create intents it keeps per source row (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, Table, delete, func, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite

from salesforce_sync.store.schema import (
    write_back_intents,
    write_back_links,
    write_back_outcomes,
    write_back_snapshots,
    write_back_starts,
)

KEYS_PER_STATEMENT = 5_000
"""Source keys bound in one IN list (within SQLite's variable limit)."""


@dataclass(frozen=True)
class RowOutcome:
    """What a push did with one source row (`outcome` one of schema.WRITE_BACK_OUTCOMES)."""

    source_key: str
    outcome: str
    row_hash: str
    salesforce_id: str | None = None
    status_code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] = ()
    retryable: bool = False
    found_before_sending: bool = False
    attempts: int = 0


@dataclass(frozen=True)
class StoredOutcome(RowOutcome):
    """A row's latest outcome as stored."""

    integration_id: str = ""
    object_type: str = ""
    run_id: str | None = None
    at: datetime | None = None


class WriteBackStore:
    """The write-back's tables in the audience store."""

    def __init__(self, engine: Engine, reading: Callable[[], Connection], *, is_sqlite: bool) -> None:
        self._engine = engine
        self._reading = reading
        self._is_sqlite = is_sqlite

    # ---- the source -----------------------------------------------------------------------------

    def source_exists(self, table: str) -> bool:
        with self._reading() as connection:
            return inspect(connection).has_table(table)

    def source_chunks(self, *, table: str | None, query: str | None, key: str,
                      chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
        """The source's rows in key order, `chunk_rows` at a time, streamed (never all in memory)."""
        quote = self._engine.dialect.identifier_preparer.quote
        source = quote(table) if table is not None else f"({query.strip().rstrip(';')}) AS write_back_source"
        statement = text(f"SELECT * FROM {source} ORDER BY {quote(key)}")
        with self._reading() as connection:
            result = connection.execution_options(stream_results=True, yield_per=chunk_rows).execute(statement)
            for rows in result.mappings().partitions(chunk_rows):
                yield [dict(row) for row in rows]

    def load_table_if_missing(self, table: str, rows: pd.DataFrame) -> bool:
        """Create `table` with `rows` unless it exists (the demo's source); True when created."""
        with self._engine.begin() as connection:
            if inspect(connection).has_table(table):
                return False
            rows.to_sql(table, connection, index=False)
        return True

    # ---- what to send ---------------------------------------------------------------------------

    def rows_to_push(self, integration_id: str, object_type: str, hashes: Mapping[str, str], *,
                     full: bool = False) -> list[str]:
        """Keys among `hashes` (key -> content hash) to send: content not yet accepted by Salesforce, except a
        row whose same content Salesforce refused for good (it waits for the row to change). `full`: all."""
        if full:
            return list(hashes)
        snapshots = self._by_key(write_back_snapshots, integration_id, object_type, hashes,
                                 write_back_snapshots.c.row_hash)
        outcomes = self._by_key(write_back_outcomes, integration_id, object_type, hashes,
                                write_back_outcomes.c.outcome, write_back_outcomes.c.row_hash,
                                write_back_outcomes.c.retryable)
        wanted = []
        for key, content in hashes.items():
            if snapshots.get(key, (None,))[0] == content:
                continue
            outcome = outcomes.get(key)
            if outcome is not None and outcome == ("rejected", content, False):
                continue
            wanted.append(key)
        return wanted

    def links(self, integration_id: str, object_type: str, keys: Iterable[str]) -> dict[str, str]:
        found = self._by_key(write_back_links, integration_id, object_type, keys, write_back_links.c.salesforce_id)
        return {key: row[0] for key, row in found.items()}

    def intents(self, integration_id: str, object_type: str, keys: Iterable[str]) -> set[str]:
        return set(self._by_key(write_back_intents, integration_id, object_type, keys, write_back_intents.c.run_id))

    def record_intents(self, integration_id: str, object_type: str, keys: Sequence[str], run_id: str | None) -> None:
        """Committed before the creates are sent: a push killed after sending them leaves these behind."""
        if not keys:
            return
        now = datetime.now(UTC)
        rows = [{"integration_id": integration_id, "object_type": object_type, "source_key": key,
                 "run_id": run_id, "at": now} for key in keys]
        with self._engine.begin() as connection:
            connection.execute(self._upsert(write_back_intents, ["run_id", "at"]), rows)

    def record_outcomes(self, integration_id: str, object_type: str, outcomes: Sequence[RowOutcome],
                        run_id: str | None) -> None:
        """One transaction: each row's outcome; for rows Salesforce accepted (or that needed nothing) the
        snapshot moves to their content and the link to their record (not for a row skipped for now, retryable:
        an activity whose person is not found yet); create intents are settled except for retryable rows (a
        create whose answer was lost may exist: the next push matches it through the intent before creating)."""
        if not outcomes:
            return
        now = datetime.now(UTC)
        base = {"integration_id": integration_id, "object_type": object_type}
        outcome_rows = [{**base, "source_key": o.source_key, "outcome": o.outcome, "row_hash": o.row_hash,
                         "salesforce_id": o.salesforce_id, "status_code": o.status_code, "message": o.message,
                         "fields": list(o.fields), "retryable": o.retryable,
                         "found_before_sending": o.found_before_sending, "attempts": o.attempts,
                         "run_id": run_id, "at": now} for o in outcomes]
        accepted = [o for o in outcomes if o.outcome != "rejected" and not o.retryable]
        snapshot_rows = [{**base, "source_key": o.source_key, "row_hash": o.row_hash, "pushed_at": now}
                         for o in accepted]
        link_rows = [{**base, "source_key": o.source_key, "salesforce_id": o.salesforce_id, "linked_at": now}
                     for o in accepted if o.salesforce_id]
        keys = [o.source_key for o in outcomes if not o.retryable]
        with self._engine.begin() as connection:
            connection.execute(self._upsert(write_back_outcomes, [c for c in outcome_rows[0] if c not in base
                                                                  and c != "source_key"]), outcome_rows)
            if snapshot_rows:
                connection.execute(self._upsert(write_back_snapshots, ["row_hash", "pushed_at"]), snapshot_rows)
            if link_rows:
                connection.execute(self._upsert(write_back_links, ["salesforce_id", "linked_at"]), link_rows)
            for batch in _batches(keys):
                connection.execute(delete(write_back_intents).where(
                    write_back_intents.c.integration_id == integration_id,
                    write_back_intents.c.object_type == object_type,
                    write_back_intents.c.source_key.in_(batch)))

    def record_links(self, integration_id: str, object_type: str, links: Mapping[str, str]) -> None:
        """Link source keys to records a push did not write itself (the Contact a Lead was converted into)."""
        if not links:
            return
        now = datetime.now(UTC)
        rows = [{"integration_id": integration_id, "object_type": object_type, "source_key": key,
                 "salesforce_id": salesforce_id, "linked_at": now} for key, salesforce_id in links.items()]
        with self._engine.begin() as connection:
            connection.execute(self._upsert(write_back_links, ["salesforce_id", "linked_at"]), rows)

    def started_at(self, integration_id: str, object_type: str, *, record: bool) -> datetime:
        """When the write-back of `object_type` was switched on: its first push (`record`: that is now, unless
        one was recorded before); without `record` and never pushed, now."""
        columns = write_back_starts.c
        query = select(columns.started_at).where(columns.integration_id == integration_id,
                                                 columns.object_type == object_type)
        if record:
            row = {"integration_id": integration_id, "object_type": object_type, "started_at": datetime.now(UTC)}
            statement = (sqlite.insert(write_back_starts) if self._is_sqlite else postgresql.insert(write_back_starts))
            with self._engine.begin() as connection:
                connection.execute(statement.on_conflict_do_nothing(), row)
        with self._reading() as connection:
            found = connection.execute(query).scalar()
        return found if found is not None else datetime.now(UTC)

    # ---- reports --------------------------------------------------------------------------------

    def outcomes(self, integration_id: str | None = None, object_type: str | None = None, *,
                 outcome: str | None = None, limit: int | None = None) -> list[StoredOutcome]:
        """Latest outcomes, by integration, object and key; optionally only one kind (`rejected`)."""
        columns = write_back_outcomes.c
        query = select(write_back_outcomes).order_by(columns.integration_id, columns.object_type, columns.source_key)
        if integration_id is not None:
            query = query.where(columns.integration_id == integration_id)
        if object_type is not None:
            query = query.where(columns.object_type == object_type)
        if outcome is not None:
            query = query.where(columns.outcome == outcome)
        if limit is not None:
            query = query.limit(limit)
        with self._reading() as connection:
            return [StoredOutcome(
                source_key=row.source_key, outcome=row.outcome, row_hash=row.row_hash,
                salesforce_id=row.salesforce_id, status_code=row.status_code, message=row.message,
                fields=tuple(row.fields or ()), retryable=row.retryable,
                found_before_sending=row.found_before_sending, attempts=row.attempts,
                integration_id=row.integration_id, object_type=row.object_type, run_id=row.run_id, at=row.at)
                for row in connection.execute(query)]

    def outcome_counts(self, integration_id: str, object_type: str) -> dict[str, int]:
        """How many source rows stand at each latest outcome."""
        columns = write_back_outcomes.c
        query = (select(columns.outcome, func.count()).where(columns.integration_id == integration_id,
                                                             columns.object_type == object_type)
                 .group_by(columns.outcome))
        with self._reading() as connection:
            return {outcome: count for outcome, count in connection.execute(query)}

    # ---- helpers --------------------------------------------------------------------------------

    def _by_key(self, table: Table, integration_id: str, object_type: str, keys: Iterable[str],
                *columns: Any) -> dict[str, tuple[Any, ...]]:
        found: dict[str, tuple[Any, ...]] = {}
        with self._reading() as connection:
            for batch in _batches(list(keys)):
                query = select(table.c.source_key, *columns).where(
                    table.c.integration_id == integration_id, table.c.object_type == object_type,
                    table.c.source_key.in_(batch))
                found.update({row[0]: tuple(row[1:]) for row in connection.execute(query)})
        return found

    def _upsert(self, table: Table, updated: Sequence[str]) -> Any:
        statement = (sqlite.insert(table) if self._is_sqlite else postgresql.insert(table))
        return statement.on_conflict_do_update(
            index_elements=["integration_id", "object_type", "source_key"],
            set_={name: statement.excluded[name] for name in updated})


def _batches(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), KEYS_PER_STATEMENT):
        yield keys[start:start + KEYS_PER_STATEMENT]

