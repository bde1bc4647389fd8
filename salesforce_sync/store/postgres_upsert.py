"""PostgreSQL bulk upsert: COPY the chunk into a temporary table, then one set-based INSERT ... ON CONFLICT."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from salesforce_sync.store.chunks import CHUNK_COLUMNS, TEXT_CHUNK_COLUMNS
from salesforce_sync.store.models import UpsertCounts, WindowTally

_STAGING = "staging_audience_users"

_CREATE_STAGING = f"""
CREATE TEMPORARY TABLE {_STAGING} (
    external_id text COLLATE "C" NOT NULL,
    salesforce_id text NOT NULL,
    object_type text COLLATE "C" NOT NULL,
    email text,
    first_name text,
    last_name text,
    phone text,
    properties jsonb NOT NULL,
    unsubscribed boolean,
    deleted boolean NOT NULL,
    sf_modified_at timestamptz NOT NULL,
    content_hash bigint NOT NULL
) ON COMMIT DROP
"""
_COPY = f"COPY {_STAGING} FROM STDIN"

# RETURNING sees only the new row, so the upsert leaves its own marks to count by: xmax = 0 on a
# fresh insert, and deleted_at = this chunk's synced_at exactly when this statement marked the row
# deleted (deleted_at stays NULL while live and keeps its first value while deleted).
_UPSERT_SQL = """
WITH applied AS (
    INSERT INTO audience_users AS stored (
        project, external_id, integration_id, object_type, salesforce_id, email, first_name, last_name,
        phone, properties, unsubscribed, deleted, deleted_at, sf_modified_at, first_synced_at,
        last_synced_at, last_seen_scan, content_hash, removed_reason
    )
    SELECT :project, external_id, :integration_id, object_type, salesforce_id, email, first_name,
           last_name, phone, properties, unsubscribed, deleted, CASE WHEN deleted THEN :synced_at END,
           sf_modified_at, :synced_at, :synced_at, :scan_id, content_hash, CASE WHEN deleted THEN 'deleted' END
    FROM {staging}
    ON CONFLICT (project, external_id) DO UPDATE SET
        email = EXCLUDED.email,
        first_name = EXCLUDED.first_name,
        last_name = EXCLUDED.last_name,
        phone = EXCLUDED.phone,
        properties = EXCLUDED.properties,
        unsubscribed = EXCLUDED.unsubscribed,
        deleted = EXCLUDED.deleted,
        deleted_at = CASE WHEN EXCLUDED.deleted THEN coalesce(stored.deleted_at, EXCLUDED.deleted_at) END,
        sf_modified_at = EXCLUDED.sf_modified_at,
        last_synced_at = EXCLUDED.last_synced_at,
        last_seen_scan = coalesce(EXCLUDED.last_seen_scan, stored.last_seen_scan),
        content_hash = EXCLUDED.content_hash,
        removed_reason = EXCLUDED.removed_reason
    -- a newer version, or the same version with other content (a new mapping, a parent's changed
    -- value, or a row the store itself marked not live, whose hash it cleared)
    WHERE stored.sf_modified_at < EXCLUDED.sf_modified_at
       OR (stored.sf_modified_at = EXCLUDED.sf_modified_at
           AND stored.content_hash IS DISTINCT FROM EXCLUDED.content_hash)
    RETURNING xmax = 0 AS inserted, deleted_at IS NOT DISTINCT FROM :synced_at AS newly_deleted, sf_modified_at
)
SELECT {stamp}
    count(*) FILTER (WHERE inserted AND NOT newly_deleted) AS imported,
    count(*) FILTER (WHERE NOT inserted AND NOT newly_deleted) AS updated,
    count(*) FILTER (WHERE newly_deleted) AS deleted
FROM applied
{group}
"""
_UPSERT = text(_UPSERT_SQL.format(staging=_STAGING, stamp="", group=""))
#: The same, counted per distinct cursor value (for a ranged run's per-window numbers).
_UPSERT_BY_STAMP = text(_UPSERT_SQL.format(staging=_STAGING, stamp="sf_modified_at,",
                                             group="GROUP BY sf_modified_at"))

# "= ANY(ARRAY(...))" probes the primary key once per listed key; a join would let the planner pick a
# hash join that reads the whole table for every chunk.
_STAMP_SCAN = text(f"""
UPDATE audience_users SET last_seen_scan = :scan_id
WHERE project = :project
  AND external_id = ANY(ARRAY(SELECT external_id FROM {_STAGING}))
  AND last_seen_scan IS DISTINCT FROM :scan_id
""")

# Re-read values of live rows at the version they were re-read against (a formula refresh): the version
# stays, so a later window compares its content hash with the refreshed one.
_APPLY_REFRESHED = text(f"""
UPDATE audience_users AS stored
SET email = incoming.email, first_name = incoming.first_name, last_name = incoming.last_name,
    phone = incoming.phone, properties = incoming.properties, unsubscribed = incoming.unsubscribed,
    content_hash = incoming.content_hash, last_synced_at = :synced_at
FROM {_STAGING} AS incoming
WHERE stored.project = :project AND stored.external_id = incoming.external_id AND NOT stored.deleted
  AND stored.sf_modified_at = incoming.sf_modified_at AND stored.content_hash IS DISTINCT FROM incoming.content_hash
""")

# Probes the primary key once per listed key, whatever the table's statistics (see _STAMP_SCAN).
_LIVE_ROWS = text(f"""
SELECT {", ".join(CHUNK_COLUMNS)} FROM audience_users
WHERE project = :project AND external_id = ANY(ARRAY(SELECT external_id FROM {_STAGING})) AND NOT deleted
""")

_COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
_COPY_NULL = "\\N"


def upsert_chunk(
    connection: Connection,
    project: str,
    integration_id: str,
    rows: pd.DataFrame,
    synced_at: datetime,
    scan_id: str | None,
    tally: WindowTally | None = None,
) -> UpsertCounts:
    """Apply a prepared chunk inside the caller's transaction and count what happened (also into `tally` by
    window, when given)."""
    connection.exec_driver_sql(_CREATE_STAGING)
    _copy(connection, _COPY, _copy_columns(rows))
    parameters = {"project": project, "integration_id": integration_id, "synced_at": synced_at, "scan_id": scan_id}
    if tally is None:
        imported, updated, deleted = connection.execute(_UPSERT, parameters).one()
    else:
        by_stamp = [tuple(row) for row in connection.execute(_UPSERT_BY_STAMP, parameters)]
        tally.add(rows["sf_modified_at"], by_stamp)
        imported, updated, deleted = (sum(row[column] for row in by_stamp) for column in (1, 2, 3))
    if scan_id is not None:
        connection.execute(_STAMP_SCAN, {"project": project, "scan_id": scan_id})
    return UpsertCounts(
        imported=imported, updated=updated, deleted=deleted, skipped=len(rows) - imported - updated - deleted
    )


def apply_refreshed(connection: Connection, project: str, rows: pd.DataFrame, synced_at: datetime) -> int:
    """Write a prepared chunk's content into the live stored rows at the same version whose content differs
    (see AudienceStore.apply_refreshed); returns how many."""
    connection.exec_driver_sql(_CREATE_STAGING)
    _copy(connection, _COPY, _copy_columns(rows))
    return connection.execute(_APPLY_REFRESHED, {"project": project, "synced_at": synced_at}).rowcount


def live_rows(connection: Connection, project: str, external_ids: pd.Series) -> list[tuple[object, ...]]:
    """The live stored rows with these keys, in CHUNK_COLUMNS order (see AudienceStore.live_rows)."""
    _load_keys(connection, external_ids)
    return [tuple(row) for row in connection.execute(_LIVE_ROWS, {"project": project})]


def stamp_scan(connection: Connection, project: str, external_ids: pd.Series, scan_id: str) -> int:
    """Mark stored records with these keys as listed by scan scan_id; returns how many were stamped."""
    _load_keys(connection, external_ids)
    return connection.execute(_STAMP_SCAN, {"project": project, "scan_id": scan_id}).rowcount


_MARK_REMOVED = text(f"""
UPDATE audience_users
SET deleted = true, removed_reason = :reason, deleted_at = :marked_at, last_synced_at = :marked_at,
    content_hash = NULL
WHERE project = :project AND external_id = ANY(ARRAY(SELECT external_id FROM {_STAGING})) AND NOT deleted
""")


def mark_removed(connection: Connection, project: str, external_ids: pd.Series, marked_at: datetime,
                 reason: str) -> int:
    """Mark the live stored records with these keys not live for `reason` (see AudienceStore.mark_out_of_scope)."""
    _load_keys(connection, external_ids)
    return connection.execute(_MARK_REMOVED, {"project": project, "marked_at": marked_at, "reason": reason}).rowcount


def _load_keys(connection: Connection, external_ids: pd.Series) -> None:
    connection.exec_driver_sql(
        f'CREATE TEMPORARY TABLE {_STAGING} (external_id text COLLATE "C" NOT NULL) ON COMMIT DROP'
    )
    _copy(connection, f"COPY {_STAGING} (external_id) FROM STDIN", [_copy_texts(external_ids.tolist())])


def _copy_columns(rows: pd.DataFrame) -> list[list[str]]:
    """The staging table's columns as COPY text fields, converted a whole column at a time."""
    unsubscribed = rows["unsubscribed"]
    flags = np.where(unsubscribed.fillna(False).to_numpy(dtype=bool), "t", "f")
    return [
        *(_copy_texts(rows[column].tolist()) for column in TEXT_CHUNK_COLUMNS),
        np.where(unsubscribed.isna().to_numpy(), _COPY_NULL, flags).tolist(),
        np.where(rows["deleted"].to_numpy(), "t", "f").tolist(),
        np.datetime_as_string(
            rows["sf_modified_at"].dt.tz_localize(None).to_numpy(), unit="us", timezone="UTC"
        ).tolist(),
        rows["content_hash"].astype(str).tolist(),
    ]


def _copy_texts(values: list[str | None]) -> list[str]:
    """Escape text for COPY's text format a whole column at a time: the column joined on NUL (which no stored
    text holds), escaped by a few str.replace passes over that one string, split again; nulls become \\N."""
    joined = "\x00".join(value or "" for value in values)
    if not any(special in joined for special in "\\\t\n\r"):
        return [_COPY_NULL if value is None else value for value in values]
    for special, escaped in _COPY_ESCAPES:
        joined = joined.replace(special, escaped)
    texts = np.array(joined.split("\x00"), dtype=object)
    texts[np.fromiter((value is None for value in values), dtype=bool, count=len(values))] = _COPY_NULL
    return texts.tolist()


def _copy(connection: Connection, copy_sql: str, columns: Sequence[list[str]]) -> None:
    """Send row-major COPY text built column-wise: one tab-joined line per row."""
    payload = ("\n".join(map("\t".join, zip(*columns))) + "\n").encode()  # the text freed once encoded
    with connection.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(copy_sql, io.BytesIO(payload), size=1 << 20)
