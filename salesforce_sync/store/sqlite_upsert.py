"""SQLite bulk upsert: executemany into a temporary table, count, then one INSERT ... SELECT ... ON CONFLICT.

The store opens SQLite write transactions with BEGIN IMMEDIATE, so nothing else writes between the
counting query and the upsert: the counts are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from salesforce_sync.store.chunks import CHUNK_COLUMNS
from salesforce_sync.store.models import UpsertCounts, WindowTally
from salesforce_sync.store.schema import SQLITE_TIMESTAMP_FORMAT

_STAGING = "temp.staging_audience_users"

_CREATE_STAGING = f"""
CREATE TABLE IF NOT EXISTS {_STAGING} (
    external_id TEXT NOT NULL,
    salesforce_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    email TEXT,
    first_name TEXT,
    last_name TEXT,
    phone TEXT,
    properties TEXT NOT NULL,
    unsubscribed INTEGER,
    deleted INTEGER NOT NULL,
    sf_modified_at TEXT NOT NULL,
    content_hash INTEGER NOT NULL
)
"""
_CLEAR_STAGING = f"DELETE FROM {_STAGING}"
_FILL_STAGING = f"INSERT INTO {_STAGING} VALUES ({', '.join('?' for _ in (*CHUNK_COLUMNS, 'content_hash'))})"
#: When an incoming version replaces the stored row: a newer version, or the same version with other
#: content (a new mapping, a parent's changed value, or a row the store itself marked not live).
_APPLIES = """(stored.sf_modified_at < incoming.sf_modified_at
     OR (stored.sf_modified_at = incoming.sf_modified_at AND stored.content_hash IS NOT incoming.content_hash))"""



def _count_sql(by_stamp: bool) -> str:
    """Imported, updated and deleted among the staged rows; by_stamp: per distinct cursor value."""
    stamp, group = ("incoming.sf_modified_at, ", "GROUP BY incoming.sf_modified_at") if by_stamp else ("", "")
    return f"""
SELECT {stamp}
    coalesce(sum(stored.external_id IS NULL AND NOT incoming.deleted), 0),
    coalesce(sum({_APPLIES}
                 AND NOT (incoming.deleted AND NOT stored.deleted)), 0),
    coalesce(sum(incoming.deleted
                 AND (stored.external_id IS NULL OR ({_APPLIES} AND NOT stored.deleted))), 0)
FROM {_STAGING} AS incoming
LEFT JOIN audience_users AS stored ON stored.project = ? AND stored.external_id = incoming.external_id
{group}
"""


_COUNT = _count_sql(by_stamp=False)
_COUNT_BY_STAMP = _count_sql(by_stamp=True)

# "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join syntax.
_UPSERT = f"""
INSERT INTO audience_users (
    project, external_id, integration_id, object_type, salesforce_id, email, first_name, last_name,
    phone, properties, unsubscribed, deleted, deleted_at, sf_modified_at, first_synced_at,
    last_synced_at, last_seen_scan, content_hash, removed_reason
)
SELECT ?1, external_id, ?2, object_type, salesforce_id, email, first_name, last_name, phone,
       properties, unsubscribed, deleted, CASE WHEN deleted THEN ?3 END, sf_modified_at, ?3, ?3, ?4,
       content_hash, CASE WHEN deleted THEN 'deleted' END
FROM {_STAGING} WHERE true
ON CONFLICT (project, external_id) DO UPDATE SET
    email = excluded.email,
    first_name = excluded.first_name,
    last_name = excluded.last_name,
    phone = excluded.phone,
    properties = excluded.properties,
    unsubscribed = excluded.unsubscribed,
    deleted = excluded.deleted,
    deleted_at = CASE WHEN excluded.deleted THEN coalesce(audience_users.deleted_at, excluded.deleted_at) END,
    sf_modified_at = excluded.sf_modified_at,
    last_synced_at = excluded.last_synced_at,
    last_seen_scan = coalesce(excluded.last_seen_scan, audience_users.last_seen_scan),
    content_hash = excluded.content_hash,
    removed_reason = excluded.removed_reason
WHERE {_APPLIES.replace("stored.", "audience_users.").replace("incoming.", "excluded.")}
"""

_SCANNED_KEYS = "temp.scanned_keys"

# Re-read values of live rows at the version they were re-read against (a formula refresh): the version
# stays, so a later window compares its content hash with the refreshed one.
_APPLY_REFRESHED = f"""
UPDATE audience_users
SET email = incoming.email, first_name = incoming.first_name, last_name = incoming.last_name,
    phone = incoming.phone, properties = incoming.properties, unsubscribed = incoming.unsubscribed,
    content_hash = incoming.content_hash, last_synced_at = ?2
FROM {_STAGING} AS incoming
WHERE audience_users.project = ?1 AND audience_users.external_id = incoming.external_id
  AND NOT audience_users.deleted AND audience_users.sf_modified_at = incoming.sf_modified_at
  AND audience_users.content_hash IS NOT incoming.content_hash
"""


def _stamp_scan_sql(keys_table: str) -> str:
    return f"""
UPDATE audience_users SET last_seen_scan = ?2
WHERE project = ?1
  AND external_id IN (SELECT external_id FROM {keys_table})
  AND (last_seen_scan IS NULL OR last_seen_scan <> ?2)
"""


def upsert_chunk(
    connection: Connection,
    project: str,
    integration_id: str,
    rows: pd.DataFrame,
    synced_at: datetime,
    scan_id: str | None,
    tally: WindowTally | None = None,
) -> UpsertCounts:
    """Apply a prepared chunk inside the caller's (BEGIN IMMEDIATE) transaction and count what happened
    (also into `tally` by window, when given)."""
    _stage(connection, _parameter_rows(rows))
    if tally is None:
        imported, updated, deleted = connection.exec_driver_sql(_COUNT, (project,)).one()
    else:
        by_stamp = [tuple(row) for row in connection.exec_driver_sql(_COUNT_BY_STAMP, (project,))]
        tally.add(rows["sf_modified_at"], by_stamp)
        imported, updated, deleted = (sum(row[column] for row in by_stamp) for column in (1, 2, 3))
    connection.exec_driver_sql(_UPSERT, (project, integration_id, synced_at.strftime(SQLITE_TIMESTAMP_FORMAT), scan_id))
    if scan_id is not None:
        connection.exec_driver_sql(_stamp_scan_sql(_STAGING), (project, scan_id))
    return UpsertCounts(
        imported=imported, updated=updated, deleted=deleted, skipped=len(rows) - imported - updated - deleted
    )


def apply_refreshed(connection: Connection, project: str, rows: pd.DataFrame, synced_at: datetime) -> int:
    """Write a prepared chunk's content into the live stored rows at the same version whose content differs
    (see AudienceStore.apply_refreshed); returns how many."""
    _stage(connection, _parameter_rows(rows))
    return connection.exec_driver_sql(_APPLY_REFRESHED, (project, synced_at.strftime(SQLITE_TIMESTAMP_FORMAT))).rowcount


def stamp_scan(connection: Connection, project: str, external_ids: pd.Series, scan_id: str) -> int:
    """Mark stored records with these keys as listed by scan scan_id; returns how many were stamped."""
    _load_keys(connection, external_ids)
    return connection.exec_driver_sql(_stamp_scan_sql(_SCANNED_KEYS), (project, scan_id)).rowcount


def mark_removed(connection: Connection, project: str, external_ids: pd.Series, marked_at: datetime,
                 reason: str) -> int:
    """Mark the live stored records with these keys not live for `reason` (see AudienceStore.mark_out_of_scope)."""
    _load_keys(connection, external_ids)
    return connection.exec_driver_sql(
        _MARK_REMOVED, (project, marked_at.strftime(SQLITE_TIMESTAMP_FORMAT), reason)).rowcount


_MARK_REMOVED = f"""
UPDATE audience_users
SET deleted = 1, removed_reason = ?3, deleted_at = ?2, last_synced_at = ?2, content_hash = NULL
WHERE project = ?1 AND external_id IN (SELECT external_id FROM {_SCANNED_KEYS}) AND NOT deleted
"""


def _load_keys(connection: Connection, external_ids: pd.Series) -> None:
    connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {_SCANNED_KEYS} (external_id TEXT NOT NULL)")
    connection.exec_driver_sql(f"DELETE FROM {_SCANNED_KEYS}")
    connection.exec_driver_sql(f"INSERT INTO {_SCANNED_KEYS} VALUES (?)", [(key,) for key in external_ids.tolist()])


def _stage(connection: Connection, parameter_rows: Iterator[tuple[object, ...]]) -> None:
    connection.exec_driver_sql(_CREATE_STAGING)
    connection.exec_driver_sql(_CLEAR_STAGING)
    cursor = connection.connection.dbapi_connection.cursor()  # SQLAlchemy wants a list; sqlite3 takes an iterator
    try:
        cursor.executemany(_FILL_STAGING, parameter_rows)
    finally:
        cursor.close()


def _parameter_rows(rows: pd.DataFrame) -> Iterator[tuple[object, ...]]:
    """Column-wise conversion to the plain Python values sqlite3 binds, zipped lazily into row tuples
    (a list of 50,000 tuples would only add allocation and garbage-collector work)."""
    unsubscribed = rows["unsubscribed"].astype("Int8").astype(object)
    stamps = np.datetime_as_string(rows["sf_modified_at"].dt.tz_localize(None).to_numpy(), unit="us")
    columns = [
        rows["external_id"].tolist(),
        rows["salesforce_id"].tolist(),
        rows["object_type"].tolist(),
        rows["email"].tolist(),
        rows["first_name"].tolist(),
        rows["last_name"].tolist(),
        rows["phone"].tolist(),
        rows["properties"].tolist(),
        unsubscribed.where(unsubscribed.notna(), None).tolist(),
        rows["deleted"].astype(np.int8).tolist(),
        np.strings.replace(stamps, "T", " ").tolist(),
        rows["content_hash"].tolist(),
    ]
    return zip(*columns)
