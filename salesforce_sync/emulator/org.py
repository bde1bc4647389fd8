"""One emulated org, kept in SQLite: its lifecycle, connection, settings and schema changes.

In memory by default; given a file path, several processes (Dagster runs, a CLI server) share one org.
The rest of its state is split by responsibility into mixins: the clock (clock.py), tokens (tokens.py),
API usage (usage.py), injected faults (faults.py), records (records.py) and lead conversion (conversion.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from salesforce_sync.emulator.changes import ChangeCaptureConnection, drop_change_triggers, install_change_capture
from salesforce_sync.emulator.clock import OrgClock
from salesforce_sync.emulator.conversion import LeadConversion
from salesforce_sync.emulator.errors import SalesforceApiError, invalid_type
from salesforce_sync.emulator.faults import FaultStore
from salesforce_sync.emulator.ids import make_id
from salesforce_sync.emulator.records import RecordStore
from salesforce_sync.emulator.schema import FieldDef, ObjectDef, OrgSchema, label_for
from salesforce_sync.emulator.soql import register_functions
from salesforce_sync.emulator.tokens import TokenStore
from salesforce_sync.emulator.usage import ApiUsage
from salesforce_sync.emulator.write_rules import STANDARD_DUPLICATE_RULES, rules_for

NAN_NULL = float("nan")  # SQLite stores a bound NaN as NULL


@dataclass(frozen=True)
class OrgSettings:
    """Identity and credentials of an emulated org; deterministic from the seed so a demo needs no secrets."""

    seed: int = 7
    org_id: str = ""
    organization_name: str = "Emulated Org"
    username: str = "integration@emulated.example.com"
    password: str = "emulated-password"
    security_token: str = "EMULATEDTOKEN"
    client_id: str = ""
    client_secret: str = ""
    refresh_token: str = ""
    redirect_uris: tuple[str, ...] = ()
    access_token_seconds: int = 7200
    rotate_refresh_tokens: bool = False
    daily_api_max: int = 15000
    jwt_public_key_pem: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    # Active duplicate rules, object -> "Block" or "Alert" (an object left out has none): org configuration.
    duplicate_rules: dict[str, str] = field(default_factory=lambda: dict(STANDARD_DUPLICATE_RULES))
    change_event_retention_hours: float = 72.0  # older replay ids give replayid.corrupted
    change_event_overflow_changes: int = 100_000  # changes of one transaction past this become GAP_OVERFLOW events
    pubsub_keepalive_seconds: float = 270.0  # an idle Pub/Sub stream gets an empty FetchResponse this often

    @classmethod
    def for_seed(cls, seed: int, **overrides: Any) -> OrgSettings:
        digest = hashlib.sha256(f"salesforce-sync-emulator-{seed}".encode()).hexdigest()
        base = cls(
            seed=seed,
            org_id=make_id("00D", 1000 + seed, pod="5g"),
            client_id="3MVG9Emulated" + digest[:40],
            client_secret=digest[40:64].upper(),
            refresh_token="5Aep861" + digest[:48],
        )
        return replace(base, **overrides)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> OrgSettings:
        data = json.loads(text)
        data["redirect_uris"] = tuple(data.get("redirect_uris", ()))
        return cls(**data)


class Org(OrgClock, TokenStore, ApiUsage, FaultStore, RecordStore, LeadConversion):
    """One emulated org. Thread-safe: one SQLite connection guarded by a lock (file mode adds WAL for
    other processes)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30,
                                     factory=ChangeCaptureConnection)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        if path:
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
        register_functions(self._conn)  # compiled SOQL matches non-ASCII text through them
        self._lock = threading.RLock()
        self._schema_version = -1
        self._schema = OrgSchema()
        self._settings = OrgSettings()
        self._settings_json = ""
        self._record_writes = 0

    # ---- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def open_or_create(cls, path: str | Path | None, settings: OrgSettings, counts: dict[str, int]) -> Org:
        """Open the org stored at `path`, or create and populate it (an in-memory org is always new).

        Creation is one transaction, so another process opening the same file sees no org or a whole one.
        """
        org = cls(path)
        with org.write() as conn:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='_meta'").fetchone()
            if not exists:
                org._initialize(conn, replace(settings, counts=dict(counts)))
                org._load_generated(conn, counts)
                for obj in org._schema.objects.values():
                    org._create_indexes(conn, obj)  # after the load: building an index once is cheaper
            install_change_capture(conn, org._schema)  # after the load too: generated data emits no events
        return org

    def _initialize(self, conn: sqlite3.Connection, settings: OrgSettings) -> None:
        conn.execute("CREATE TABLE _meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE _tokens (token TEXT PRIMARY KEY, kind TEXT NOT NULL, parent TEXT, "
            "expires_ms INTEGER, revoked INTEGER NOT NULL DEFAULT 0, data TEXT)")
        conn.execute(
            "CREATE TABLE _api_calls (day TEXT NOT NULL, endpoint TEXT NOT NULL, count INTEGER NOT NULL, "
            "PRIMARY KEY (day, endpoint))")
        conn.execute(
            "CREATE TABLE _faults (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, path_pattern TEXT NOT NULL, "
            "method TEXT, status INTEGER, error_code TEXT, message TEXT, remaining INTEGER NOT NULL, "
            "latency_ms INTEGER, after INTEGER NOT NULL DEFAULT 0)")
        for key, value in (("settings", settings.to_json()), ("clock_offset_ms", "0"),
                           ("clock_frozen_ms", ""), ("schema_ops", "[]"), ("schema_version", "0")):
            conn.execute("INSERT INTO _meta VALUES (?, ?)", (key, value))
        for obj in self._schema.objects.values():
            self._create_table(conn, obj)
        conn.execute("INSERT INTO _tokens (token, kind, data) VALUES (?, 'refresh', ?)",
                     (settings.refresh_token, json.dumps({"scope": "api refresh_token id"})))

    @staticmethod
    def _create_table(conn: sqlite3.Connection, obj: ObjectDef) -> None:
        sql_types = {"text": "TEXT", "int": "INTEGER", "real": "REAL", "bool": "INTEGER",
                     "datetime": "INTEGER", "date": "TEXT"}
        # Id compares case-insensitively everywhere (18-char ids are case-safe), so every lookup by Id,
        # with or without an explicit COLLATE, uses the unique index below.
        cols = ", ".join(f'"{f.name}" {sql_types[f.storage]}' + (" COLLATE NOCASE" if f.name == "Id" else "")
                         for f in obj.stored_fields)
        conn.execute(f'CREATE TABLE "{obj.name}" ({cols})')

    @staticmethod
    def _create_indexes(conn: sqlite3.Connection, obj: ObjectDef) -> None:
        conn.execute(f'CREATE UNIQUE INDEX "{obj.name}_Id" ON "{obj.name}" ("Id" COLLATE NOCASE)')
        for stamp in ("LastModifiedDate", "SystemModstamp"):
            if obj.field(stamp):
                conn.execute(f'CREATE INDEX "{obj.name}_{stamp}" ON "{obj.name}" ("{stamp}")')
        if obj.name == "CampaignMember":
            for ref in ("LeadId", "ContactId"):
                conn.execute(f'CREATE INDEX "CampaignMember_{ref}" ON "CampaignMember" ("{ref}")')
        # Every write looks up unique values and its duplicate rule's keys, case-insensitively.
        looked_up = [f.name for f in obj.stored_fields if f.unique or f.external_id] + list(rules_for(obj.name).indexed)
        for name in dict.fromkeys(looked_up):
            conn.execute(f'CREATE INDEX "{obj.name}_{name}" ON "{obj.name}" ("{name}" COLLATE NOCASE)')

    def _load_generated(self, conn: sqlite3.Connection, counts: dict[str, int]) -> None:
        """Fill a new org with the deterministic generated data for its seed."""
        from salesforce_sync.emulator.generate import generate_org_columns

        for object_name, columns in generate_org_columns(self.settings.seed, counts, self.now_ms()):
            self._insert_columns(conn, object_name, columns)

    @staticmethod
    def _insert_columns(conn: sqlite3.Connection, object_name: str, columns: dict[str, Any]) -> None:
        """Insert a batch given as columns (numpy arrays, or one value for the whole batch) with one executemany.

        Nulls are bound as NaN, which SQLite stores as NULL: CPython's sqlite3 looks for an adapter for every
        None it binds (two failed attribute lookups), which made Nones most of the cost of loading a million rows.
        """
        size = len(columns["Id"])
        values = [_bindable_column(column, size) for column in columns.values()]
        cols = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f'INSERT INTO "{object_name}" ({cols}) VALUES ({marks})', zip(*values))

    @staticmethod
    def _insert_rows(conn: sqlite3.Connection, object_name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        names = list(rows[0])
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        conn.executemany(f'INSERT INTO "{object_name}" ({cols}) VALUES ({marks})',
                         [tuple(row[n] for n in names) for row in rows])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ---- connection access ---------------------------------------------------------------------

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._refresh_schema()
            yield self._conn

    @contextlib.contextmanager
    def write(self, *, records: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction; rolled back on any error so a failed write leaves nothing behind.
        `records` marks a change to records or schema, which `records_version` counts."""
        with self._lock:
            if self._conn.in_transaction:
                # Inside this org's own open transaction (Composite, convertLead): join it, so it commits or
                # rolls back whole.
                yield self._conn
                if records:
                    self._record_writes += 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._refresh_schema()
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            if records:
                self._record_writes += 1

    def records_version(self) -> tuple[int, int]:
        """Changes when records or the schema may have changed: writes through this Org, or any commit by
        another connection to the same state file. Pages rendered ahead are valid only while it holds."""
        with self._lock:
            return self._record_writes, self._conn.execute("PRAGMA data_version").fetchone()[0]

    def _meta(self, key: str) -> str:
        return self._conn.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()[0]

    def _set_meta(self, key: str, value: str) -> None:
        self._conn.execute("UPDATE _meta SET value = ? WHERE key = ?", (value, key))

    def _refresh_schema(self) -> None:
        """Pick up schema changes made by this or another process."""
        try:
            row = self._conn.execute("SELECT value FROM _meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.OperationalError:  # a new org, before _initialize made its tables
            return
        version = int(row[0]) if row else 0
        if version == self._schema_version:
            return
        schema = OrgSchema()
        if row:
            for op in json.loads(self._meta("schema_ops")):
                _apply_schema_op(schema, op)
        self._schema, self._schema_version = schema, version

    @property
    def schema(self) -> OrgSchema:
        with self.read():
            return self._schema

    @property
    def settings(self) -> OrgSettings:
        """Read afresh each time, so a change made through another server sharing the state file counts here."""
        with self._lock:
            stored = self._meta("settings")
            if stored != self._settings_json:
                self._settings, self._settings_json = OrgSettings.from_json(stored), stored
            return self._settings

    def object(self, name: str) -> ObjectDef:
        obj = self.schema.object(name)
        if obj is None:
            raise invalid_type(name)
        return obj

    @property
    def integration_user_id(self) -> str:
        with self.read() as conn:
            row = conn.execute('SELECT "Id" FROM "User" WHERE "Username" = ?', (self.settings.username,)).fetchone()
        return row[0] if row else make_id("005", 1)

    def update_settings(self, **changes: Any) -> OrgSettings:
        """Change org settings (token lifetime, refresh-token rotation, redirect URIs, JWT key...)."""
        with self.write():
            settings = replace(self.settings, **changes)
            self._set_meta("settings", settings.to_json())
        return settings

    # ---- schema changes ------------------------------------------------------------------------

    def change_schema(self, op: dict[str, Any]) -> None:
        """Delete a field, rename one, or add a custom field; existing data follows the change.
        Ops: {"op": "delete_field", "object", "field"}, {"op": "rename_field", "object", "field", "new_name"},
        {"op": "add_field", "object", "field", "type", "label"?, "length"?, "values"? (picklist), "restricted"?}."""
        with self.write(records=True) as conn:
            drop_change_triggers(conn)
            schema = self._schema
            obj = schema.object(op.get("object", ""))
            if obj is None:
                raise invalid_type(op.get("object", ""))
            existing = obj.field(op.get("field", ""))
            kind = op.get("op")
            if kind in ("delete_field", "rename_field") and existing is None:
                raise SalesforceApiError(400, "INVALID_FIELD", f"No such field {op.get('field')} on {obj.name}")
            if kind == "delete_field" and existing.stored:
                conn.execute(f'ALTER TABLE "{obj.name}" DROP COLUMN "{existing.name}"')
            elif kind == "rename_field":
                if existing.stored:
                    conn.execute(f'ALTER TABLE "{obj.name}" RENAME COLUMN "{existing.name}" TO "{op["new_name"]}"')
            elif kind == "add_field":
                if existing is not None:
                    raise SalesforceApiError(400, "DUPLICATE_DEVELOPER_NAME", f"{op['field']} already exists on {obj.name}")
                probe = OrgSchema()
                _apply_schema_op(probe, op)
                added = probe.object(obj.name).field(op["field"])
                sql_type = {"text": "TEXT", "real": "REAL", "date": "TEXT"}.get(added.storage, "INTEGER")
                # A new checkbox reads false on existing records, never null.
                default = " DEFAULT 0" if added.storage == "bool" else ""
                conn.execute(f'ALTER TABLE "{obj.name}" ADD COLUMN "{added.name}" {sql_type}{default}')
            elif kind != "delete_field":
                raise ValueError(f"unknown schema op {kind!r}: use delete_field, rename_field or add_field")
            ops = json.loads(self._meta("schema_ops")) + [op]
            self._set_meta("schema_ops", json.dumps(ops))
            self._set_meta("schema_version", str(int(self._meta("schema_version")) + 1))
            self._refresh_schema()
            install_change_capture(conn, self._schema)

def _bindable_column(column: Any, size: int) -> Iterable[Any]:
    """One generated column as values sqlite3 binds fast: booleans as 0/1, None as NaN (stored as NULL)."""
    if not isinstance(column, np.ndarray):
        return itertools.repeat(NAN_NULL if column is None else column, size)
    if column.dtype == np.bool_:
        return column.astype(np.int8).tolist()
    if column.dtype == object:
        return [NAN_NULL if value is None else value for value in column.tolist()]
    return column.tolist()


def _apply_schema_op(schema: OrgSchema, op: dict[str, Any]) -> None:
    obj = schema.object(op["object"])
    kind = op["op"]
    if kind == "delete_field":
        fields = [f for f in obj.fields if f.name.lower() != op["field"].lower()]
    elif kind == "rename_field":
        fields = [replace(f, name=op["new_name"], label=f.label or label_for(f.name))
                  if f.name.lower() == op["field"].lower() else f for f in obj.fields]
    else:
        ftype = op.get("type", "string")
        fields = [*obj.fields, FieldDef(
            op["field"], ftype, op.get("label", ""), length=int(op.get("length", 255 if ftype != "boolean" else 0)),
            custom=op["field"].endswith("__c"), nillable=ftype != "boolean",
            default=False if ftype == "boolean" else None,
            precision=18 if ftype in ("double", "currency", "percent") else 0,
            picklist=tuple(op.get("values", ())), restricted_picklist=bool(op.get("restricted")))]
    schema.replace_object(replace(obj, fields=fields))
