"""The audience store: synced people, the sync log, the org registry and integration state, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from operator import index
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    String,
    Table,
    case,
    create_engine,
    event,
    false,
    func,
    inspect,
    literal,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL

from salesforce_sync.store import postgres_upsert, sqlite_upsert
from salesforce_sync.store.chunks import CHUNK_COLUMNS, PreparedChunk, external_ids, prepare_chunk
from salesforce_sync.store.errors import OrgAlreadyRegisteredError, StoreInputError
from salesforce_sync.store.lease import SyncLeases
from salesforce_sync.store.models import (
    ChangeCaptureState,
    IntegrationState,
    IntegrationStatus,
    ObjectSettings,
    OrgRegistration,
    SyncEvent,
    SyncLogEntry,
    UpsertCounts,
    WindowTally,
)
from salesforce_sync.store.org_ids import canonical_org_id
from salesforce_sync.store.people import PeopleStore
from salesforce_sync.store.schema import (
    INTEGRATION_LEVEL,
    UtcDateTime,
    audience_users,
    change_capture_state,
    integration_state,
    metadata,
    object_settings,
    salesforce_orgs,
    sync_log,
)
from salesforce_sync.store.urls import normalize_store_url
from salesforce_sync.store.write_back import WriteBackStore

_Choice = TypeVar("_Choice", SyncEvent, IntegrationStatus)

_SQLITE_BUSY_TIMEOUT_SECONDS = 60
_READ_ONLY = "audience_store_read_only"
"""Execution option marking read-only connections (see _sqlite_engine)."""
_KEYS_PER_QUERY = 500
"""Keys per `IN` list when reading rows by key (well under SQLite's bound-parameter limit)."""
_SCHEMA_LOCK_KEY = 0x5A1E5F0
"""PostgreSQL advisory lock taken while creating tables, so concurrent create_schema calls do not race."""

USER_COLUMNS = (
    "project",
    "external_id",
    "integration_id",
    "object_type",
    "salesforce_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "properties",
    "unsubscribed",
    "deleted",
    "deleted_at",
    "sf_modified_at",
    "first_synced_at",
    "last_synced_at",
    "removed_reason",
)


class AudienceStore:
    """All reads and writes of the audience store go through here; no other module holds SQL."""

    def __init__(self, url: str) -> None:
        self.url = normalize_store_url(url)
        self._is_sqlite = self.url.get_backend_name() == "sqlite"
        self._engine = _sqlite_engine(self.url) if self._is_sqlite else _postgres_engine(self.url)

    def __repr__(self) -> str:
        return f"AudienceStore({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections."""
        self._engine.dispose()

    @property
    def leases(self) -> SyncLeases:
        """The sync leases kept in this store (one sync of an integration at a time)."""
        return SyncLeases(self._engine, self._reading, is_sqlite=self._is_sqlite)

    @property
    def people(self) -> PeopleStore:
        """People (records of one person grouped by sync.identity) and the lookups write-back uses."""
        return PeopleStore(self._engine, self._reading)

    @property
    def write_back(self) -> WriteBackStore:
        """The write-back's sources, links, snapshots, outcomes and create intents."""
        return WriteBackStore(self._engine, self._reading, is_sqlite=self._is_sqlite)

    def create_schema(self) -> None:
        """Create any missing tables and indexes; safe to call on every start, from several processes."""
        with self._engine.begin() as connection:
            if not self._is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            metadata.create_all(connection, checkfirst=True)
            _add_missing_columns(connection)

    # ---- audience users -------------------------------------------------------------------------

    def upsert_users(
        self, project: str, integration_id: str, chunk: pd.DataFrame | PreparedChunk, *, scan_id: str | None = None
    ) -> UpsertCounts:
        """Insert new people and apply strictly newer versions of known ones, in one transaction (a
        PreparedChunk, see store_ready_chunk, as it is).

        A rerun of the same chunk changes nothing. With scan_id (a full re-sync), every key in the
        chunk is also stamped as listed by that scan, for mark_missing_deleted.
        """
        _require_name("project", project)
        _require_name("integration_id", integration_id)
        return self._write(project, integration_id, _prepared(integration_id, chunk), scan_id)

    def upsert_stream(
        self, project: str, integration_id: str, chunks: Iterable[pd.DataFrame | PreparedChunk], *,
        scan_id: str | None = None, tally: WindowTally | None = None,
    ) -> UpsertCounts:
        """upsert_users for every chunk of a stream, each chunk its own transaction, returning the totals
        (and adding them to `tally` by each record's window, when given). A PreparedChunk (a chunk validated
        where it was built, see store_ready_chunk) is written as it is.

        While a writer thread writes one chunk the next is fetched and prepared, so a sync's Python work
        and database work overlap (PostgreSQL works in its server; SQLite's sqlite3 releases the GIL while
        it executes); at most two chunks are held at a time. Stops at the first failure: earlier chunks stay
        committed, and rerunning the stream is safe.
        """
        _require_name("project", project)
        _require_name("integration_id", integration_id)
        totals = UpsertCounts()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audience-store-writer") as writer:
            pending: Future[UpsertCounts] | None = None
            try:
                for chunk in chunks:
                    prepared = _prepared(integration_id, chunk)
                    if pending is not None:
                        totals += pending.result()
                    pending = writer.submit(self._write, project, integration_id, prepared, scan_id, tally)
            except BaseException:
                if pending is not None:
                    pending.result()  # an earlier chunk's failure is reported first
                raise
            if pending is not None:
                totals += pending.result()
        return totals

    def _write(self, project: str, integration_id: str, prepared: PreparedChunk, scan_id: str | None,
               tally: WindowTally | None = None) -> UpsertCounts:
        if prepared.rows.empty:
            return UpsertCounts(duplicates=prepared.duplicates_dropped)
        backend = sqlite_upsert if self._is_sqlite else postgres_upsert
        with self._engine.begin() as connection:
            counts = backend.upsert_chunk(
                connection, project, integration_id, prepared.rows, datetime.now(UTC), scan_id, tally
            )
        return counts + UpsertCounts(duplicates=prepared.duplicates_dropped)

    def mark_seen(
        self, project: str, integration_id: str, object_type: str, salesforce_ids: Iterable[str], scan_id: str
    ) -> int:
        """Record that a full Id listing (scan scan_id) still contains these records; returns rows stamped.

        Call once per page of Ids, then mark_missing_deleted: memory stays bounded by the page.
        """
        _require_name("scan_id", scan_id)
        keys = _listed_keys(project, integration_id, object_type, salesforce_ids)
        if keys.empty:
            return 0
        backend = sqlite_upsert if self._is_sqlite else postgres_upsert
        with self._engine.begin() as connection:
            return backend.stamp_scan(connection, project, keys, scan_id)

    def mark_out_of_scope(
        self, project: str, integration_id: str, object_type: str, salesforce_ids: Iterable[str]
    ) -> int:
        """Mark the live stored records with these Ids out of scope (they no longer match the sync rules);
        returns how many. They are kept, not live, with removed_reason 'out_of_scope', and their content
        hash is cleared, so the next listing of the record under the rules brings it back."""
        return self._mark_removed(project, integration_id, object_type, salesforce_ids, "out_of_scope")

    def mark_hard_deleted(
        self, project: str, integration_id: str, object_type: str, salesforce_ids: Iterable[str]
    ) -> int:
        """Mark the live stored records with these Ids hard-deleted (the org no longer has them, not even in its
        recycle bin); returns how many. Like mark_out_of_scope, a later listing of the record revives it."""
        return self._mark_removed(project, integration_id, object_type, salesforce_ids, "hard_deleted")

    def _mark_removed(self, project: str, integration_id: str, object_type: str, salesforce_ids: Iterable[str],
                      reason: str) -> int:
        keys = _listed_keys(project, integration_id, object_type, salesforce_ids)
        if keys.empty:
            return 0
        backend = sqlite_upsert if self._is_sqlite else postgres_upsert
        with self._engine.begin() as connection:
            return backend.mark_removed(connection, project, keys, datetime.now(UTC), reason)

    def mark_missing_deleted(
        self, project: str, integration_id: str, object_type: str, *, scan_id: str, scan_started_at: datetime
    ) -> int:
        """Mark deleted every live record of this object that scan scan_id did not list; returns how many.

        Catches hard deletes (emptied recycle bin, CampaignMember) that incremental syncs never see.
        Records modified since scan_started_at are left alone: the listing may predate them. Marked rows
        get removed_reason 'hard_deleted' and lose their content hash, so a record listed again revives.
        """
        _require_name("scan_id", scan_id)
        _require_aware("scan_started_at", scan_started_at)
        users = audience_users.c
        now = datetime.now(UTC)
        statement = (
            update(audience_users)
            .where(
                *_users_of(project, integration_id, object_type),
                users.deleted == false(),
                or_(users.last_seen_scan.is_(None), users.last_seen_scan != scan_id),
                users.sf_modified_at < scan_started_at,
            )
            .values(deleted=True, deleted_at=now, last_synced_at=now, removed_reason="hard_deleted", content_hash=None)
        )
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount

    def live_rows(self, project: str, integration_id: str, object_type: str,
                  salesforce_ids: Iterable[str]) -> pd.DataFrame:
        """The live stored rows of these records as a store chunk (CHUNK_COLUMNS, properties as dicts, stamps
        UTC), to compare a re-read of some of their values with. PostgreSQL probes the keys from a staging
        table in one query; SQLite reads a few hundred keys per query without taking the write lock."""
        keys = _listed_keys(project, integration_id, object_type, salesforce_ids)
        rows: list[tuple[Any, ...]] = []
        if not self._is_sqlite and not keys.empty:
            with self._engine.begin() as connection:
                rows = postgres_upsert.live_rows(connection, project, keys)
        elif not keys.empty:
            users = audience_users.c
            # The stamps as SQLite keeps them (UTC text), parsed a column at a time below.
            columns = [type_coerce(users[name], String()) if name == "sf_modified_at" else users[name]
                       for name in CHUNK_COLUMNS]
            with self._reading() as connection:
                for start in range(0, len(keys), _KEYS_PER_QUERY):
                    batch = keys.iloc[start:start + _KEYS_PER_QUERY].tolist()
                    query = select(*columns).where(
                        users.project == project, users.external_id.in_(batch), users.deleted == false())
                    rows += map(tuple, connection.execute(query))
        frame = pd.DataFrame(rows, columns=list(CHUNK_COLUMNS))
        frame["unsubscribed"] = frame["unsubscribed"].astype("boolean")
        frame["deleted"] = frame["deleted"].astype(bool)
        frame["sf_modified_at"] = pd.to_datetime(frame["sf_modified_at"], utc=True, format="ISO8601").dt.as_unit("us")
        return frame

    def apply_refreshed(self, project: str, integration_id: str, chunk: pd.DataFrame) -> int:
        """Write re-read values into live stored rows without moving their version; returns the rows written.

        Each row of `chunk` (a store chunk carrying the stored `sf_modified_at`) replaces its stored contact
        columns, opt-out and properties, with their content hash, when the stored row is still live at that
        version and its content differs (a row a sync has since rewritten is left to it). One transaction."""
        _require_name("project", project)
        _require_name("integration_id", integration_id)
        prepared = prepare_chunk(integration_id, chunk)
        if prepared.rows.empty:
            return 0
        backend = sqlite_upsert if self._is_sqlite else postgres_upsert
        with self._engine.begin() as connection:
            return backend.apply_refreshed(connection, project, prepared.rows, datetime.now(UTC))

    def users(
        self,
        project: str,
        integration_id: str | None = None,
        object_type: str | None = None,
        *,
        include_deleted: bool = True,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Stored people as a DataFrame (USER_COLUMNS), ordered by external_id; for inspection, not bulk export."""
        users = audience_users.c
        if object_type is not None and integration_id is None:
            raise StoreInputError(f"users(): object_type {object_type!r} needs an integration_id too")
        query = select(*(users[name] for name in USER_COLUMNS)).where(*_users_of(project, integration_id, object_type))
        if not include_deleted:
            query = query.where(users.deleted == false())
        query = query.order_by(users.external_id).limit(limit)
        with self._reading() as connection:
            frame = pd.DataFrame(connection.execute(query).all(), columns=list(USER_COLUMNS))
        for column in ("deleted_at", "sf_modified_at", "first_synced_at", "last_synced_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        frame["deleted"] = frame["deleted"].astype(bool)
        frame["unsubscribed"] = frame["unsubscribed"].astype("boolean")
        return frame

    def user_counts(self, project: str | None = None) -> pd.DataFrame:
        """People per project, integration and object: columns users, live, deleted."""
        users = audience_users.c
        deleted_count = func.sum(case((users.deleted == true(), 1), else_=0))
        query = (
            select(
                users.project,
                users.integration_id,
                users.object_type,
                func.count().label("users"),
                deleted_count.label("deleted"),
            )
            .group_by(users.project, users.integration_id, users.object_type)
            .order_by(users.project, users.integration_id, users.object_type)
        )
        if project is not None:
            query = query.where(users.project == project)
        with self._reading() as connection:
            frame = pd.DataFrame(
                connection.execute(query).all(),
                columns=["project", "integration_id", "object_type", "users", "deleted"],
            )
        frame[["users", "deleted"]] = frame[["users", "deleted"]].astype("int64")
        frame.insert(4, "live", frame["users"] - frame["deleted"])
        return frame

    # ---- sync log -------------------------------------------------------------------------------

    def log_event(
        self,
        project: str,
        integration_id: str,
        event: SyncEvent | str,
        *,
        object_type: str | None = None,
        count: int | None = None,
        duration_seconds: float | None = None,
        window_start: datetime | None = None,
        window_end: datetime | None = None,
        run_id: str | None = None,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> int:
        """Append one sync log entry (message kept verbatim) and return its id."""
        _require_name("project", project)
        _require_name("integration_id", integration_id)
        checked_event = _parse_enum(SyncEvent, event, f"integration {integration_id!r}: sync log event")
        if count is not None:
            count = _non_negative_count(integration_id, count)
        for name, value in (("window_start", window_start), ("window_end", window_end), ("at", at)):
            if value is not None:
                _require_aware(name, value)
        row = {
            "at": at or datetime.now(UTC),
            "project": project,
            "integration_id": integration_id,
            "object_type": object_type,
            "event": checked_event.value,
            "count": count,
            "duration_seconds": duration_seconds,
            "window_start": window_start,
            "window_end": window_end,
            "run_id": run_id,
            "message": message,
            "details": details,
        }
        with self._engine.begin() as connection:
            return connection.execute(sync_log.insert().values(row).returning(sync_log.c.id)).scalar_one()

    def sync_log(
        self,
        integration_id: str | None = None,
        event: SyncEvent | str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        *,
        project: str | None = None,
    ) -> list[SyncLogEntry]:
        """Log entries, newest first, optionally for one integration, project or event, from since on."""
        log = sync_log.c
        query = select(sync_log).order_by(log.at.desc(), log.id.desc()).limit(limit)
        if integration_id is not None:
            query = query.where(log.integration_id == integration_id)
        if project is not None:
            query = query.where(log.project == project)
        if event is not None:
            query = query.where(log.event == _parse_enum(SyncEvent, event, "sync log event filter").value)
        if since is not None:
            _require_aware("since", since)
            query = query.where(log.at >= since)
        with self._reading() as connection:
            return [_log_entry(row) for row in connection.execute(query)]

    # ---- org registry ---------------------------------------------------------------------------

    def register_org(self, org_id: str, project: str, integration_id: str) -> OrgRegistration:
        """Connect a Salesforce org to a project; reconnecting to the same project just refreshes it.

        Raises OrgAlreadyRegisteredError when another project owns the org.
        """
        _require_name("project", project)
        _require_name("integration_id", integration_id)
        org_id = canonical_org_id(org_id)
        orgs = salesforce_orgs.c
        statement = self._insert(salesforce_orgs).values(
            org_id=org_id, project=project, integration_id=integration_id, connected_at=datetime.now(UTC)
        )
        statement = statement.on_conflict_do_update(
            index_elements=[orgs.org_id],
            set_={"integration_id": statement.excluded.integration_id, "connected_at": statement.excluded.connected_at},
            where=orgs.project == statement.excluded.project,
        )
        with self._engine.begin() as connection:
            connection.execute(statement)
            owner = _org_registration(connection.execute(select(salesforce_orgs).where(orgs.org_id == org_id)).one())
        if owner.project != project:
            raise OrgAlreadyRegisteredError(org_id, project, owner.project, owner.integration_id)
        return owner

    def unregister_org(self, org_id: str) -> bool:
        """Disconnect an org so another project may claim it; returns whether it was registered."""
        statement = salesforce_orgs.delete().where(salesforce_orgs.c.org_id == canonical_org_id(org_id))
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount > 0

    def org(self, org_id: str) -> OrgRegistration | None:
        """Who owns this org (15- or 18-character id), if anyone."""
        query = select(salesforce_orgs).where(salesforce_orgs.c.org_id == canonical_org_id(org_id))
        with self._reading() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _org_registration(row)

    def orgs(self, project: str | None = None, integration_id: str | None = None) -> list[OrgRegistration]:
        """Registered orgs, optionally of one project or integration, ordered by org id."""
        orgs = salesforce_orgs.c
        query = select(salesforce_orgs).order_by(orgs.org_id)
        if project is not None:
            query = query.where(orgs.project == project)
        if integration_id is not None:
            query = query.where(orgs.integration_id == integration_id)
        with self._reading() as connection:
            return [_org_registration(row) for row in connection.execute(query)]

    # ---- integration state ----------------------------------------------------------------------

    def get_state(self, integration_id: str, object_type: str | None = None) -> IntegrationState | None:
        """State of an integration (object_type None) or of one of its objects, if ever recorded."""
        query = select(integration_state).where(*_state_key(integration_id, object_type))
        with self._reading() as connection:
            row = connection.execute(query).one_or_none()
        return None if row is None else _integration_state(row)

    def states(self, integration_id: str | None = None) -> list[IntegrationState]:
        """All recorded states, optionally of one integration; integration-wide rows first."""
        state = integration_state.c
        query = select(integration_state).order_by(state.integration_id, state.object_type)
        if integration_id is not None:
            query = query.where(state.integration_id == integration_id)
        with self._reading() as connection:
            return [_integration_state(row) for row in connection.execute(query)]

    def set_state(self, state: IntegrationState) -> None:
        """Store a state exactly as given, replacing any earlier one for the same key."""
        _require_name("integration_id", state.integration_id)
        values = {
            "status": _parse_enum(
                IntegrationStatus, state.status, f"integration {state.integration_id!r}: status"
            ).value,
            "last_success_at": state.last_success_at,
            "last_success_window_end": state.last_success_window_end,
            "last_error": state.last_error,
            "last_error_at": state.last_error_at,
            "records_imported": state.records_imported,
            "records_updated": state.records_updated,
            "records_deleted": state.records_deleted,
        }
        key = {"integration_id": state.integration_id, "object_type": state.object_type or INTEGRATION_LEVEL}
        self._upsert_state(key, values, values)

    def record_success(
        self,
        integration_id: str,
        object_type: str | None,
        *,
        window_end: datetime | None,
        counts: UpsertCounts,
        at: datetime | None = None,
    ) -> None:
        """Mark a successful sync: status Active, totals incremented, watermark moved forward only."""
        _require_name("integration_id", integration_id)
        if window_end is not None:
            _require_aware("window_end", window_end)
        at = at or datetime.now(UTC)
        state = integration_state.c
        key = {"integration_id": integration_id, "object_type": object_type or INTEGRATION_LEVEL}
        first = {
            "status": IntegrationStatus.ACTIVE.value,
            "last_success_at": at,
            "last_success_window_end": window_end,
            "records_imported": counts.imported,
            "records_updated": counts.updated,
            "records_deleted": counts.deleted,
        }
        later: dict[str, Any] = {
            "status": IntegrationStatus.ACTIVE.value,
            "last_success_at": at,
            "records_imported": state.records_imported + counts.imported,
            "records_updated": state.records_updated + counts.updated,
            "records_deleted": state.records_deleted + counts.deleted,
        }
        if window_end is not None:
            stored_end = state.last_success_window_end
            new_end = literal(window_end, UtcDateTime())
            later["last_success_window_end"] = case(
                (or_(stored_end.is_(None), stored_end < new_end), new_end), else_=stored_end
            )
        self._upsert_state(key, first, later)

    def record_failure(
        self, integration_id: str, object_type: str | None, *, error: str, at: datetime | None = None
    ) -> None:
        """Mark a failed sync: status Error with the error text kept verbatim."""
        _require_name("integration_id", integration_id)
        key = {"integration_id": integration_id, "object_type": object_type or INTEGRATION_LEVEL}
        values = {
            "status": IntegrationStatus.ERROR.value,
            "last_error": error,
            "last_error_at": at or datetime.now(UTC),
        }
        self._upsert_state(key, values, values)

    def set_status(self, integration_id: str, object_type: str | None, status: IntegrationStatus | str) -> None:
        """Change only the status (e.g. Inactive when paused, Incomplete while a first sync runs)."""
        _require_name("integration_id", integration_id)
        checked = _parse_enum(IntegrationStatus, status, f"integration {integration_id!r}: status").value
        key = {"integration_id": integration_id, "object_type": object_type or INTEGRATION_LEVEL}
        self._upsert_state(key, {"status": checked}, {"status": checked})

    # ---- change capture ----------------------------------------------------------------------------

    def change_capture_state(self, integration_id: str) -> ChangeCaptureState | None:
        """Where the integration's change-event subscription resumes, and how it keeps up; None before it ran."""
        query = select(change_capture_state).where(change_capture_state.c.integration_id == integration_id)
        with self._reading() as connection:
            row = connection.execute(query).one_or_none()
        if row is None:
            return None
        return ChangeCaptureState(row.integration_id, row.topic, None if row.replay_id is None else
                                  bytes.fromhex(row.replay_id), row.last_commit_at, row.applied_at, row.heard_at,
                                  row.pending_since, row.last_lag_seconds, row.events_applied)

    def advance_replay_id(self, integration_id: str, topic: str, *, after: bytes | None, until: bytes | None,
                          last_commit_at: datetime | None = None, lag_seconds: float | None = None,
                          events: int = 0) -> bool:
        """Store `until` as where the subscription resumes, once the events up to it are applied, if the stored
        position is still `after` (the one they were read from; `until` None: from now on); False when another applier moved it first (it
        stays where that one put it). Clears `pending_since`, counts `events`, keeps the newest commit time."""
        _require_name("integration_id", integration_id)
        if last_commit_at is not None:
            _require_aware("last_commit_at", last_commit_at)
        state = change_capture_state.c
        now = datetime.now(UTC)
        values: dict[str, Any] = {"topic": topic, "replay_id": None if until is None else until.hex(), "applied_at": now, "heard_at": now,
                                  "pending_since": None, "last_lag_seconds": lag_seconds}
        with self._engine.begin() as connection:
            if after is None:
                inserted = connection.execute(
                    self._insert(change_capture_state)
                    .values(integration_id=integration_id, last_commit_at=last_commit_at, events_applied=events,
                            **values)
                    .on_conflict_do_nothing(index_elements=["integration_id"])).rowcount
                if inserted:
                    return True
            stored = state.replay_id.is_(None) if after is None else state.replay_id == after.hex()
            newest = literal(last_commit_at, UtcDateTime())
            if last_commit_at is not None:
                values["last_commit_at"] = case(
                    (or_(state.last_commit_at.is_(None), state.last_commit_at < newest), newest),
                    else_=state.last_commit_at)
            statement = (update(change_capture_state).where(state.integration_id == integration_id, stored)
                         .values(events_applied=state.events_applied + events, **values))
            return connection.execute(statement).rowcount == 1

    def record_change_capture_heard(self, integration_id: str, topic: str, *,
                                    pending_since: datetime | None = None) -> None:
        """The subscription answered now; `pending_since` is the commit time of the oldest event it read that
        waits to be applied (kept if an older one already waits)."""
        _require_name("integration_id", integration_id)
        state = change_capture_state.c
        now = datetime.now(UTC)
        later: dict[str, Any] = {"heard_at": now, "topic": topic}
        if pending_since is not None:
            _require_aware("pending_since", pending_since)
            waiting = literal(pending_since, UtcDateTime())
            later["pending_since"] = case((state.pending_since.is_(None), waiting), else_=state.pending_since)
        statement = (self._insert(change_capture_state)
                     .values(integration_id=integration_id, topic=topic, heard_at=now, pending_since=pending_since,
                             events_applied=0)
                     .on_conflict_do_update(index_elements=["integration_id"], set_=later))
        with self._engine.begin() as connection:
            connection.execute(statement)

    # ---- object settings -------------------------------------------------------------------------

    def object_settings(self, integration_id: str, object_type: str) -> ObjectSettings | None:
        """The settings fingerprint the object's stored rows reflect and its last Id reconciliation, if any."""
        settings = object_settings.c
        query = select(object_settings).where(settings.integration_id == integration_id,
                                              settings.object_type == object_type)
        with self._reading() as connection:
            row = connection.execute(query).one_or_none()
        if row is None:
            return None
        known = None if row.known_fields is None else tuple(row.known_fields)
        return ObjectSettings(row.integration_id, row.object_type, row.fingerprint, row.fingerprint_at,
                              row.reconciled_at, known, tuple(row.auto_mappings or ()), row.formula_refreshed_at)

    def record_object_settings(self, integration_id: str, object_type: str, *, fingerprint: str | None = None,
                               reconciled_at: datetime | None = None, known_fields: Sequence[str] | None = None,
                               auto_mappings: Sequence[dict[str, str]] | None = None,
                               formula_refreshed_at: datetime | None = None) -> None:
        """Remember the settings a complete read of the object used, and/or when its Ids were reconciled, the
        org's field names then (the schema_drift baseline), the mappings schema_drift added and when its
        formula values were last re-read."""
        _require_name("integration_id", integration_id)
        _require_name("object_type", object_type)
        values: dict[str, Any] = {}
        if fingerprint is not None:
            values.update(fingerprint=fingerprint, fingerprint_at=datetime.now(UTC))
        if known_fields is not None:
            values["known_fields"] = list(known_fields)
        if auto_mappings is not None:
            values["auto_mappings"] = [dict(mapping) for mapping in auto_mappings]
        if reconciled_at is not None:
            _require_aware("reconciled_at", reconciled_at)
            values["reconciled_at"] = reconciled_at
        if formula_refreshed_at is not None:
            _require_aware("formula_refreshed_at", formula_refreshed_at)
            values["formula_refreshed_at"] = formula_refreshed_at
        if not values:
            return
        statement = (
            self._insert(object_settings)
            .values(integration_id=integration_id, object_type=object_type, **values)
            .on_conflict_do_update(index_elements=["integration_id", "object_type"], set_=values)
        )
        with self._engine.begin() as connection:
            connection.execute(statement)

    def _reading(self) -> Connection:
        """A connection for reads: on SQLite its transactions start deferred, so they never wait for a writer."""
        return self._engine.connect().execution_options(**{_READ_ONLY: True})

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """The dialect's INSERT, which knows ON CONFLICT."""
        return sqlite.insert(table) if self._is_sqlite else postgresql.insert(table)

    def _upsert_state(self, key: dict[str, str], insert_values: dict[str, Any], update_values: dict[str, Any]) -> None:
        """Insert a state row, or apply update_values (which may refer to stored columns) to the existing one."""
        statement = (
            self._insert(integration_state)
            .values(**key, **insert_values)
            .on_conflict_do_update(index_elements=list(key), set_=update_values)
        )
        with self._engine.begin() as connection:
            connection.execute(statement)


def _sqlite_engine(url: URL) -> Engine:
    """SQLite with WAL (readers and the writer never block each other), a busy timeout, and write
    transactions opened with BEGIN IMMEDIATE.

    BEGIN IMMEDIATE takes the write lock up front, so a transaction that reads then writes cannot fail
    half-way with "database is locked" when several Dagster runs write at once: it waits its turn instead.
    Read-only connections (_READ_ONLY) begin deferred and never wait.
    """
    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" hook below own transactions
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # with WAL: a killed process never loses committed chunks
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


_POSTGRES_SESSION_OPTIONS = "-c timezone=UTC -c jit=off -c temp_buffers=64MB"
"""UTC timestamps; no JIT (compiling each chunk's upsert costs more than it saves); room to keep a
50,000-row staging table in memory."""


def _postgres_engine(url: URL) -> Engine:
    return create_engine(
        url, pool_pre_ping=True, connect_args={"options": _POSTGRES_SESSION_OPTIONS, "client_encoding": "utf8"}
    )


def _non_negative_count(integration_id: str, count: object) -> int:
    try:
        checked = index(count)  # accepts numpy integers from pandas, refuses floats and text
    except TypeError:
        checked = -1
    if checked < 0 or isinstance(count, bool):
        raise StoreInputError(
            f"integration {integration_id!r}: sync log count must be a non-negative integer, got {count!r}"
        )
    return checked


def _listed_keys(project: str, integration_id: str, object_type: str, salesforce_ids: Iterable[str]) -> pd.Series:
    """Audience keys of a listing's Salesforce Ids, checked."""
    _require_name("project", project)
    _require_name("integration_id", integration_id)
    _require_name("object_type", object_type)
    ids = pd.Series(list(salesforce_ids), dtype=object)
    if ids.empty:
        return ids
    if pd.api.types.infer_dtype(ids, skipna=False) != "string" or (ids == "").any():
        raise StoreInputError(
            f"integration {integration_id!r}, object {object_type!r}: salesforce_ids must be non-empty strings"
        )
    return external_ids(integration_id, pd.Series(object_type, index=ids.index), ids)


def _add_missing_columns(connection: Connection) -> None:
    """Bring a store created by an earlier version up to date: add the audience_users and object_settings
    columns it lacks (nullable, so existing rows simply have no content hash or schema baseline yet: rows are
    rewritten when next read, the baseline is recorded by the next check or complete read), and let the sync
    log accept the current events."""
    for table in (audience_users, object_settings):
        present = {column["name"] for column in inspect(connection).get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
    if connection.dialect.name == "postgresql":
        allowed = connection.exec_driver_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck_sync_log_event'").scalar() or ""
        if any(f"'{event.value}'" not in allowed for event in SyncEvent):
            check = next(c for c in sync_log.constraints if c.name == "ck_sync_log_event")
            connection.exec_driver_sql("ALTER TABLE sync_log DROP CONSTRAINT IF EXISTS ck_sync_log_event")
            connection.exec_driver_sql(f"ALTER TABLE sync_log ADD CONSTRAINT ck_sync_log_event CHECK ({check.sqltext})")
        return
    # SQLite cannot alter a CHECK constraint: copy the log into a freshly created table instead.
    allowed = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'sync_log'").scalar() or ""
    if any(f"'{event.value}'" not in allowed for event in SyncEvent):
        connection.exec_driver_sql("ALTER TABLE sync_log RENAME TO sync_log_before_upgrade")
        for index in sync_log.indexes:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
        sync_log.create(connection)
        connection.exec_driver_sql("INSERT INTO sync_log SELECT * FROM sync_log_before_upgrade")
        connection.exec_driver_sql("DROP TABLE sync_log_before_upgrade")


def _prepared(integration_id: str, chunk: pd.DataFrame | PreparedChunk) -> PreparedChunk:
    return chunk if isinstance(chunk, PreparedChunk) else prepare_chunk(integration_id, chunk)


def _require_name(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise StoreInputError(f"{field} must be a non-empty string, got {value!r}")


def _require_aware(field: str, value: object) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise StoreInputError(f"{field} must be a timezone-aware datetime, got {value!r}")


def _parse_enum(kind: type[_Choice], value: object, what: str) -> _Choice:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise StoreInputError(f"{what} {value!r} is not one of: {allowed}") from None


def _users_of(project: str, integration_id: str | None, object_type: str | None) -> list[ColumnElement[bool]]:
    """Conditions for a project's users, optionally of one integration and object.

    The key prefix range lets the database walk the primary key instead of scanning the table; the
    equality tests keep it exact when one integration id is a prefix of another ("a" and "a_b").
    """
    users = audience_users.c
    conditions = [users.project == project]
    if integration_id is None:
        return conditions
    prefix = f"sf_{integration_id}_" if object_type is None else f"sf_{integration_id}_{object_type}_"
    conditions += [users.external_id >= prefix, users.external_id < prefix[:-1] + chr(ord("_") + 1)]
    conditions.append(users.integration_id == integration_id)
    if object_type is not None:
        conditions.append(users.object_type == object_type)
    return conditions


def _state_key(integration_id: str, object_type: str | None) -> tuple[Any, ...]:
    state = integration_state.c
    return (state.integration_id == integration_id, state.object_type == (object_type or INTEGRATION_LEVEL))


def _log_entry(row: Row[Any]) -> SyncLogEntry:
    return SyncLogEntry(
        id=row.id,
        at=row.at,
        project=row.project,
        integration_id=row.integration_id,
        object_type=row.object_type,
        event=SyncEvent(row.event),
        count=row._mapping["count"],  # row.count is the tuple method
        duration_seconds=row.duration_seconds,
        window_start=row.window_start,
        window_end=row.window_end,
        run_id=row.run_id,
        message=row.message,
        details=row.details,
    )


def _org_registration(row: Row[Any]) -> OrgRegistration:
    return OrgRegistration(
        org_id=row.org_id, project=row.project, integration_id=row.integration_id, connected_at=row.connected_at
    )


def _integration_state(row: Row[Any]) -> IntegrationState:
    return IntegrationState(
        integration_id=row.integration_id,
        object_type=row.object_type or None,
        status=IntegrationStatus(row.status),
        last_success_at=row.last_success_at,
        last_success_window_end=row.last_success_window_end,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        records_imported=row.records_imported,
        records_updated=row.records_updated,
        records_deleted=row.records_deleted,
    )
