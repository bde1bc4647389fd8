"""The change-event log as Pub/Sub reads it: events after a replay id (identical changes of one transaction merged),
retention, and test control that forces gap and overflow events and cuts the streams. changes.py writes the log."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from salesforce_sync.emulator.changes import (
    CLOCK_SQL,
    CUTS_KEY,
    GAP_TYPES,
    INSERT_EVENT_SQL,
    TRACKED_OBJECTS,
    USER_SQL,
)
from salesforce_sync.emulator.core import CONTROL_PREFIX, Request, Response, Router
from salesforce_sync.emulator.errors import SalesforceApiError
from salesforce_sync.emulator.org import Org

@dataclass(frozen=True)
class StoredChange:
    """One row of the event log; `values` are stored column values (CREATE/UNDELETE: all, UPDATE: the row after
    the change, of which `changed` names the columns that moved)."""

    replay_id: int
    entity: str
    record_ids: list[str]
    change_type: str
    changed: list[str]
    values: dict[str, Any]
    commit_ms: int
    transaction_key: str
    sequence: int
    origin: str
    commit_user: str


def _retention_cutoff(org: Org) -> int:
    return org.now_ms() - int(org.settings.change_event_retention_hours * 3600 * 1000)


def latest_replay_id(org: Org) -> int:
    """The newest replay id ever given (0 before the first event)."""
    with org.read() as conn:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = '_change_events'").fetchone()
    return row[0] if row else 0


def earliest_position(org: Org) -> int:
    """The position before the oldest retained event (where EARLIEST starts)."""
    cutoff = _retention_cutoff(org)
    with org.read() as conn:
        row = conn.execute("SELECT min(replay_id) FROM _change_events WHERE commit_ms >= ?", (cutoff,)).fetchone()
    return row[0] - 1 if row[0] is not None else latest_replay_id(org)


def replay_id_retained(org: Org, replay_id: int) -> bool:
    """A CUSTOM replay id is usable when its event is still retained (or it is the start of an empty log)."""
    if replay_id == 0 and latest_replay_id(org) == 0:
        return True
    with org.read() as conn:
        row = conn.execute("SELECT commit_ms FROM _change_events WHERE replay_id = ?", (replay_id,)).fetchone()
    return row is not None and row[0] >= _retention_cutoff(org)


def _merge_key(change: StoredChange) -> tuple[Any, ...] | None:
    """Changes that Salesforce sends as one event with several recordIds: the same UPDATE (same fields, same new
    values) or a DELETE, made to records of one object in one transaction within one second. LastModifiedDate is
    left out of the comparison: Salesforce stamps a transaction once, this org each record as it writes it."""
    if change.change_type == "UPDATE":
        values = tuple(change.values.get(c) for c in change.changed if c != "LastModifiedDate")
        return (change.transaction_key, change.entity, "UPDATE", change.commit_ms // 1000, tuple(change.changed),
                values)
    if change.change_type == "DELETE":
        return (change.transaction_key, change.entity, "DELETE", change.commit_ms // 1000)
    return None


def _stored_change(row: tuple[Any, ...]) -> StoredChange:
    return StoredChange(row[0], row[1], json.loads(row[2]), row[3], json.loads(row[4]), json.loads(row[5] or "{}"),
                        row[6], row[7], row[8], row[9], row[10] or "")


def read_changes(org: Org, after: int, limit: int, entity: str | None) -> tuple[list[StoredChange], int]:
    """Up to `limit` events after `after` (of one entity, or all), consecutive identical changes merged into one
    event (replay id: its last row's); and the position read up to, which moves past other entities' events so a
    per-object channel's latest replay id keeps up with the log."""
    events: list[StoredChange] = []
    keys: list[tuple[Any, ...] | None] = []
    with org.read() as conn:
        high = conn.execute("SELECT coalesce(max(replay_id), 0) FROM _change_events").fetchone()[0]
        where = "replay_id > ? AND replay_id <= ?" + (" AND entity = ?" if entity else "")
        cursor = after
        # One event more than asked for shows that the last one asked for is complete.
        while len(events) <= limit:
            args = (cursor, high, entity) if entity else (cursor, high)
            wanted = limit + 1 - len(events)  # rows that may still merge into the last event come in bigger steps
            rows = conn.execute(f"SELECT * FROM _change_events WHERE {where} ORDER BY replay_id LIMIT ?",
                                (*args, max(wanted, 500) if keys and keys[-1] else wanted)).fetchall()
            if not rows:
                break
            for row in rows:
                change = _stored_change(row)
                key = _merge_key(change)
                if key is not None and events and keys[-1] == key and events[-1].replay_id + 1 == change.replay_id:
                    events[-1] = replace(events[-1], replay_id=change.replay_id,
                                         record_ids=events[-1].record_ids + change.record_ids)
                else:
                    events.append(change)
                    keys.append(key)
            cursor = rows[-1][0]
    if len(events) > limit:
        del events[limit:]
        return events, events[-1].replay_id
    return events, max(high, after)


def purge_expired(org: Org) -> int:
    """Drop events older than the retention (Salesforce keeps them 72 hours)."""
    cutoff = _retention_cutoff(org)
    with org.write() as conn:
        return conn.execute("DELETE FROM _change_events WHERE commit_ms < ?", (cutoff,)).rowcount


# ---- forced events and stream cuts (test control) --------------------------------------------------

def _append_header_only(org: Org, entity: str, record_ids: list[str], change_type: str) -> int:
    with org.write() as conn:
        return conn.execute(
            INSERT_EVENT_SQL + f"VALUES (?, ?, ?, '[]', NULL, {CLOCK_SQL}, cdc_transaction_key(), cdc_sequence(), '', "
            f"{USER_SQL})", (entity, json.dumps(record_ids), change_type)).lastrowid


def _tracked(org: Org, entity: str) -> str:
    obj = org.schema.object(entity)
    if obj is None or obj.name not in TRACKED_OBJECTS:
        raise SalesforceApiError(400, "INVALID_TYPE", f"change events are not enabled for {entity!r}; "
                                                      f"tracked: {', '.join(TRACKED_OBJECTS)}")
    return obj.name


def force_gap(org: Org, entity: str, record_ids: list[str], change_type: str = "GAP_UPDATE") -> int:
    """A gap event (header and record ids, no values), as when Salesforce cannot build the real one."""
    if change_type not in GAP_TYPES:
        raise SalesforceApiError(400, "INVALID_CHANGE_TYPE", f"gap change type must be one of {GAP_TYPES}: {change_type}")
    if not record_ids:
        raise SalesforceApiError(400, "MISSING_ARGUMENT", "a gap event needs record ids")
    return _append_header_only(org, _tracked(org, entity), list(record_ids), change_type)


def force_overflow(org: Org, entity: str) -> int:
    """A GAP_OVERFLOW event (no record ids), as after a transaction of more than 100,000 changes."""
    return _append_header_only(org, _tracked(org, entity), [], "GAP_OVERFLOW")


def cut_streams(org: Org) -> int:
    """End every open Pub/Sub stream of this org (the servers watch this counter)."""
    with org.write() as conn:
        conn.execute(f"UPDATE _meta SET value = CAST(value AS INTEGER) + 1 WHERE key = '{CUTS_KEY}'")
    return stream_cuts(org)


def stream_cuts(org: Org) -> int:
    with org.read() as conn:
        row = conn.execute(f"SELECT value FROM _meta WHERE key = '{CUTS_KEY}'").fetchone()
    return int(row[0]) if row else 0


def register(router: Router) -> None:
    add = router.add
    add("POST", CONTROL_PREFIX + r"/change-events/gap", "control.changeGap", api=False)(_gap_route)
    add("POST", CONTROL_PREFIX + r"/change-events/overflow", "control.changeOverflow", api=False)(_overflow_route)
    add("POST", CONTROL_PREFIX + r"/pubsub/cut", "control.pubsubCut", api=False)(_cut_route)


def _gap_route(request: Request) -> Response:
    body = request.json() or {}
    replay_id = force_gap(request.org, body.get("object", ""), body.get("ids") or [],
                          body.get("change_type", "GAP_UPDATE"))
    return Response.json({"replay_id": replay_id}, 201)


def _overflow_route(request: Request) -> Response:
    return Response.json({"replay_id": force_overflow(request.org, (request.json() or {}).get("object", ""))}, 201)


def _cut_route(request: Request) -> Response:
    return Response.json({"cuts": cut_streams(request.org)})
