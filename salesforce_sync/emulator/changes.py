"""Change Data Capture in the emulated org: every committed write to a tracked object becomes a change event.

SQLite triggers on the tracked objects' tables append to `_change_events`, so every writer (REST, Collections,
Bulk, SOAP, test control, another process sharing the state file) emits events without knowing about them.
Triggers are installed after the generated load, so generated data emits nothing. The replay id is the row's
autoincrement id. A record write is an UPDATE that sets SystemModstamp: the copies the org keeps of a parent's
fields (CampaignMember's Lead/Contact fields) move without it, and formula fields are not stored, so neither
emits. A hard delete of a live row emits DELETE; purging an already soft-deleted row emits nothing.

Identical changes to several records of one transaction (within a second) are delivered as one event with several
recordIds, as Salesforce does. Past a number of changes in one transaction (OrgSettings.change_event_overflow_changes,
Salesforce's 100,000) the rest become one GAP_OVERFLOW event per object. Test control forces gap and overflow
events too.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from salesforce_sync.emulator.schema import FieldDef, ObjectDef, OrgSchema

TRACKED_OBJECTS = ("Lead", "Contact", "CampaignMember", "Account", "Opportunity")
# Stored, but not in change events: the record id travels in the header; the others are system or derived.
NOT_IN_EVENTS = frozenset({"Id", "IsDeleted", "SystemModstamp", "LastActivityDate", "LastViewedDate",
                           "LastReferencedDate"})
GAP_TYPES = ("GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE")
_JSON_SET_PAIRS = 60  # SQLite caps a function call at 127 arguments

# The org clock (clock.py keeps it in _meta) and the integration user, as SQL the triggers evaluate.
CLOCK_SQL = ("(SELECT CASE WHEN f.value != '' THEN CAST(f.value AS INTEGER) "
              "ELSE CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + CAST(o.value AS INTEGER) END "
              "FROM _meta f, _meta o WHERE f.key = 'clock_frozen_ms' AND o.key = 'clock_offset_ms')")
USER_SQL = ("(SELECT \"Id\" FROM \"User\" WHERE \"Username\" = "
             "(SELECT json_extract(value, '$.username') FROM _meta WHERE key = 'settings'))")
_OVERFLOW_LIMIT_SQL = ("(SELECT coalesce(json_extract(value, '$.change_event_overflow_changes'), 100000) "
                       "FROM _meta WHERE key = 'settings')")
INSERT_EVENT_SQL = ("INSERT INTO _change_events (entity, record_ids, change_type, changed, vals, commit_ms, "
               "transaction_key, sequence, origin, commit_user) ")
CUTS_KEY = "pubsub_stream_cuts"


# ---- what an event carries ------------------------------------------------------------------------

@dataclass(frozen=True)
class EventField:
    """A top-level field of an object's change event: one stored field, or a compound (Name, an address)
    whose parts are nested under names without the compound's prefix (BillingCity -> BillingAddress.City)."""

    name: str
    field: FieldDef | None = None
    parts: tuple[tuple[str, FieldDef], ...] = ()

    @property
    def columns(self) -> list[str]:
        return [f.name for _, f in self.parts] if self.parts else [self.field.name]


def _in_events(f: FieldDef) -> bool:
    return f.storage is not None and not f.calculated and not f.formula and f.name not in NOT_IN_EVENTS


def event_fields(obj: ObjectDef) -> list[EventField]:
    """The body fields of `obj`'s change events in schema order (a compound sits where its first part is)."""
    compounds: dict[str, list[FieldDef]] = {}
    for f in obj.fields:
        if f.compound_field_name and _in_events(f):
            compounds.setdefault(f.compound_field_name, []).append(f)
    out: list[EventField] = []
    placed: set[str] = set()
    for f in obj.fields:
        group = f.name if f.name in compounds else f.compound_field_name if f.compound_field_name in compounds else None
        if group is None:
            if _in_events(f):
                out.append(EventField(f.name, f))
        elif group not in placed:
            placed.add(group)
            prefix = group.removesuffix("Address") if group.endswith("Address") else ""
            out.append(EventField(group, parts=tuple((p.name.removeprefix(prefix), p) for p in compounds[group])))
    return out


def tracked_objects(schema: OrgSchema) -> list[ObjectDef]:
    return [obj for name in TRACKED_OBJECTS if (obj := schema.object(name)) is not None]


# ---- capture: the connection, the call's origin, the triggers -------------------------------------

_call = threading.local()


def current_origin() -> str:
    return getattr(_call, "origin", "")


@contextlib.contextmanager
def call_origin(path: str, version: str | None, call_options: str | None) -> Iterator[None]:
    """Stamp the changes an API call makes with its changeOrigin, `com/salesforce/api/<api>/<ver>;client=<c>`
    (the client from its Sforce-Call-Options header)."""
    api = "bulkapi" if "/jobs/ingest" in path else "soap" if path.lower().startswith("/services/soap") else "rest"
    version = version or (m.group(1) if (m := re.search(r"/(\d{2}\.\d)(?:/|$)", path)) else "")
    options = dict(part.strip().split("=", 1) for part in (call_options or "").split(",") if "=" in part)
    client = options.get("client", "")
    _call.origin = f"com/salesforce/api/{api}/{version}" + (f";client={client}" if client else "")
    try:
        yield
    finally:
        _call.origin = ""


@dataclass
class _Transaction:
    """Change-event state of one database transaction: its key, event sequence and change count."""

    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    sequence: int = 0
    changes: int = 0
    overflow_due: str | None = None  # an object whose first change past the limit needs its GAP_OVERFLOW event
    overflowed: set[str] = field(default_factory=set)


class ChangeCaptureConnection(sqlite3.Connection):
    """The org's SQLite connection: each BEGIN starts a new change-event transaction, whichever code opens it; the
    triggers reach its state (transactionKey, sequenceNumber, the overflow count) and the call's origin through
    SQL functions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transaction: _Transaction | None = None
        self.create_function("cdc_transaction_key", 0, lambda: self._current().key)
        self.create_function("cdc_sequence", 0, self._next_sequence)
        self.create_function("cdc_admit", 3, self._admit)
        self.create_function("cdc_overflow", 1, self._overflow)
        self.create_function("cdc_origin", 0, current_origin)

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if sql.startswith("BEGIN"):
            self._transaction = None
        return super().execute(sql, parameters)

    def _current(self) -> _Transaction:
        if self._transaction is None:
            self._transaction = _Transaction()
        return self._transaction

    def _next_sequence(self) -> int:
        transaction = self._current()
        transaction.sequence += 1
        return transaction.sequence

    def _admit(self, entity: str, changes: int, limit: int) -> int:
        """Count a record's changes (1, or an update's changed fields); past `limit` in one transaction the rest
        become one GAP_OVERFLOW event per object, as Salesforce does after 100,000 changes."""
        transaction = self._current()
        transaction.changes += changes
        if transaction.changes <= limit:
            return 1
        if entity not in transaction.overflowed:
            transaction.overflowed.add(entity)
            transaction.overflow_due = entity
        return 0

    def _overflow(self, entity: str) -> int:
        transaction = self._current()
        due, transaction.overflow_due = transaction.overflow_due, None
        return int(due == entity)


def _json_object_sql(columns: list[str], row: str) -> str:
    expr = "'{}'"
    for start in range(0, len(columns), _JSON_SET_PAIRS):
        pairs = ", ".join(f"'$.{c}', {row}.\"{c}\"" for c in columns[start:start + _JSON_SET_PAIRS])
        expr = f"json_set({expr}, {pairs})"
    return expr


def _trigger_sql(obj: ObjectDef) -> list[str]:
    columns = [c for ef in event_fields(obj) for c in ef.columns]
    name, table = obj.name, f'"{obj.name}"'
    tail = f"{CLOCK_SQL}, cdc_transaction_key(), cdc_sequence(), cdc_origin(), {USER_SQL}"
    overflow = f"{INSERT_EVENT_SQL} SELECT '{name}', '[]', 'GAP_OVERFLOW', '[]', NULL, {tail} WHERE cdc_overflow('{name}');"
    differs = [f'OLD."{c}" IS NOT NEW."{c}"' for c in columns]
    changed = ("'[' || substr(" + " || ".join(f"CASE WHEN OLD.\"{c}\" IS NOT NEW.\"{c}\" THEN ',\"{c}\"' ELSE '' END"
                                                for c in columns) + ", 2) || ']'")
    deleted = obj.field("IsDeleted") is not None
    kind = ("CASE WHEN OLD.\"IsDeleted\" = 0 AND NEW.\"IsDeleted\" = 1 THEN 'DELETE' "
            "WHEN OLD.\"IsDeleted\" = 1 AND NEW.\"IsDeleted\" = 0 THEN 'UNDELETE' ELSE 'UPDATE' END"
            if deleted else "'UPDATE'")
    when_changed = " OR ".join((['OLD."IsDeleted" IS NOT NEW."IsDeleted"'] if deleted else []) + differs)
    counted = " + ".join(f"({d})" for d in differs)  # an update counts each changed field towards the overflow
    return [
        f'CREATE TRIGGER "_cdc_{name}_insert" AFTER INSERT ON {table} BEGIN {INSERT_EVENT_SQL}'
        f"SELECT '{name}', json_array(NEW.\"Id\"), 'CREATE', '[]', {_json_object_sql(columns, 'NEW')}, {tail} "
        f"WHERE cdc_admit('{name}', 1, {_OVERFLOW_LIMIT_SQL}); {overflow} END",
        # Only writes set SystemModstamp; the org's copies of a parent's fields do not.
        f'CREATE TRIGGER "_cdc_{name}_update" AFTER UPDATE OF "SystemModstamp" ON {table} WHEN {when_changed} '
        f"BEGIN {INSERT_EVENT_SQL} SELECT '{name}', json_array(NEW.\"Id\"), kind, "
        f"CASE kind WHEN 'UPDATE' THEN {changed} ELSE '[]' END, "
        f"CASE kind WHEN 'DELETE' THEN NULL ELSE {_json_object_sql(columns, 'NEW')} END, {tail} "
        f"FROM (SELECT {kind} AS kind) WHERE cdc_admit('{name}', CASE kind WHEN 'UPDATE' THEN {counted} ELSE 1 END, "
        f"{_OVERFLOW_LIMIT_SQL}); {overflow} END",
        f'CREATE TRIGGER "_cdc_{name}_delete" AFTER DELETE ON {table} '
        + ('WHEN OLD."IsDeleted" = 0 ' if deleted else "")
        + f"BEGIN {INSERT_EVENT_SQL} SELECT '{name}', json_array(OLD.\"Id\"), 'DELETE', '[]', NULL, {tail} "
        f"WHERE cdc_admit('{name}', 1, {_OVERFLOW_LIMIT_SQL}); {overflow} END",
    ]


def drop_change_triggers(conn: sqlite3.Connection) -> None:
    """Before a schema change: SQLite will not drop a column a trigger names."""
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '\\_cdc\\_%' "
                                "ESCAPE '\\'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')


def install_change_capture(conn: sqlite3.Connection, schema: OrgSchema) -> None:
    """Create the event log (once) and (re)create the triggers for the current schema."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _change_events (replay_id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "entity TEXT NOT NULL, record_ids TEXT NOT NULL, change_type TEXT NOT NULL, changed TEXT NOT NULL, "
        "vals TEXT, commit_ms INTEGER NOT NULL, transaction_key TEXT NOT NULL, sequence INTEGER NOT NULL, "
        "origin TEXT NOT NULL, commit_user TEXT)")
    conn.execute("CREATE INDEX IF NOT EXISTS _change_events_commit ON _change_events (commit_ms)")
    conn.execute(f"INSERT OR IGNORE INTO _meta VALUES ('{CUTS_KEY}', '0')")
    drop_change_triggers(conn)
    for obj in tracked_objects(schema):
        for sql in _trigger_sql(obj):
            conn.execute(sql)
