"""The state of one emulated org, kept in SQLite: records, identity, clock, tokens, API usage, faults.

In memory by default; given a file path, several processes (Dagster runs, a CLI server) share one org.
Every write stamps LastModifiedDate and SystemModstamp from the org's own clock, which tests can set,
move or freeze.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from salesforce_sync.emulator.errors import SalesforceApiError, invalid_type, not_found
from salesforce_sync.emulator.ids import KEY_PREFIXES, OBJECT_BY_PREFIX, make_id, normalize_id
from salesforce_sync.emulator.schema import FieldDef, ObjectDef, OrgSchema, label_for

ISO_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$"
)
PERSON_OBJECTS = ("Lead", "Contact")
NAN_NULL = float("nan")  # SQLite stores a bound NaN as NULL
OTHER_INTEGRATIONS = "(other integrations)"  # API usage staged by exhaust_api_limit, not calls made here
CAMPAIGN_MEMBER_MIRRORS = ("FirstName", "LastName", "Name", "Email", "Phone", "Title", "HasOptedOutOfEmail", "DoNotCall")


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


def iso_to_ms(text: str) -> int | None:
    """Epoch ms of an ISO datetime in any form clients send (Z, +00:00, +0000, 0-6 fraction digits)."""
    m = ISO_DATETIME.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    stamp = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s),
                        int((frac or "0").ljust(6, "0")), tzinfo=dt.timezone.utc)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        stamp -= sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return int(stamp.timestamp() * 1000)


def ms_to_iso(ms: int, suffix: str = "+0000") -> str:
    """`2024-01-02T03:04:05.000+0000` (REST) or with suffix 'Z' (Bulk CSV)."""
    stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}" + suffix


class Org:
    """One emulated org. Thread-safe: one SQLite connection guarded by a lock (file mode adds WAL for
    other processes)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = str(path) if path else ":memory:"
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        if path:
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")
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
            "latency_ms INTEGER)")
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

    # ---- clock ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        with self._lock:
            frozen = self._meta("clock_frozen_ms")
            if frozen:
                return int(frozen)
            return int(time.time() * 1000) + int(self._meta("clock_offset_ms"))

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now_ms() / 1000, tz=dt.timezone.utc)

    def set_clock(self, at: dt.datetime, *, frozen: bool = False) -> None:
        """Make the org's clock read `at` now; frozen keeps it there until moved again."""
        target = int(at.timestamp() * 1000)
        with self.write():
            self._set_meta("clock_frozen_ms", str(target) if frozen else "")
            self._set_meta("clock_offset_ms", str(target - int(time.time() * 1000)))

    def move_clock(self, delta: dt.timedelta) -> None:
        with self.write():
            frozen = self._meta("clock_frozen_ms")
            step = int(delta.total_seconds() * 1000)
            if frozen:
                self._set_meta("clock_frozen_ms", str(int(frozen) + step))
            self._set_meta("clock_offset_ms", str(int(self._meta("clock_offset_ms")) + step))

    def unfreeze_clock(self) -> None:
        with self.write():
            frozen = self._meta("clock_frozen_ms")
            if frozen:
                self._set_meta("clock_offset_ms", str(int(frozen) - int(time.time() * 1000)))
            self._set_meta("clock_frozen_ms", "")

    # ---- tokens --------------------------------------------------------------------------------

    def issue_access_token(self, parent: str | None = None, scope: str = "api refresh_token id") -> str:
        token = self.settings.org_id[:15] + "!" + "AQ0AQ" + secrets.token_urlsafe(48).replace("-", "x").replace("_", "y")
        expires = self.now_ms() + self.settings.access_token_seconds * 1000
        with self.write() as conn:
            conn.execute("INSERT INTO _tokens (token, kind, parent, expires_ms, data) VALUES (?, 'access', ?, ?, ?)",
                         (token, parent, expires, json.dumps({"scope": scope})))
        return token

    def issue_refresh_token(self, scope: str = "api refresh_token id") -> str:
        token = "5Aep861" + secrets.token_urlsafe(60).replace("-", "x").replace("_", "y")
        with self.write() as conn:
            conn.execute("INSERT INTO _tokens (token, kind, data) VALUES (?, 'refresh', ?)",
                         (token, json.dumps({"scope": scope})))
        return token

    def issue_code(self, data: dict[str, Any]) -> str:
        code = "aPrx" + secrets.token_urlsafe(40) + "=="
        with self.write() as conn:
            conn.execute("INSERT INTO _tokens (token, kind, expires_ms, data) VALUES (?, 'code', ?, ?)",
                         (code, self.now_ms() + 15 * 60 * 1000, json.dumps(data)))
        return code

    def token(self, token: str, kind: str) -> dict[str, Any] | None:
        """A live (unrevoked, unexpired) token's data, or None."""
        with self.read() as conn:
            row = conn.execute("SELECT parent, expires_ms, revoked, data FROM _tokens WHERE token = ? AND kind = ?",
                               (token, kind)).fetchone()
        if row is None or row[2]:
            return None
        parent, expires, _, data = row
        if expires is not None and expires <= self.now_ms():
            return None
        return {"parent": parent, **json.loads(data or "{}")}

    def consume_code(self, code: str) -> dict[str, Any] | None:
        data = self.token(code, "code")
        if data is not None:
            with self.write() as conn:
                conn.execute("UPDATE _tokens SET revoked = 1 WHERE token = ?", (code,))
        return data

    def revoke(self, token: str) -> bool:
        """Revoke an access or refresh token; revoking a refresh token kills its access tokens too."""
        with self.write() as conn:
            row = conn.execute("SELECT kind FROM _tokens WHERE token = ? AND revoked = 0", (token,)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE _tokens SET revoked = 1 WHERE token = ? OR parent = ?", (token, token))
        return True

    def expire_sessions(self) -> int:
        """Expire every access token now (the control knob behind 'expire every session')."""
        with self.write() as conn:
            return conn.execute("UPDATE _tokens SET expires_ms = ? WHERE kind = 'access' AND revoked = 0",
                                (self.now_ms() - 1,)).rowcount

    # ---- API usage -----------------------------------------------------------------------------

    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self.now_ms() / 1000, tz=dt.timezone.utc).date().isoformat()

    def count_call(self, endpoint: str) -> tuple[int, int]:
        """Count one API call; returns (used, max) after it."""
        day = self._today()
        with self.write() as conn:
            conn.execute("INSERT INTO _api_calls VALUES (?, ?, 1) ON CONFLICT (day, endpoint) "
                         "DO UPDATE SET count = count + 1", (day, endpoint))
        return self.api_usage()

    def api_usage(self) -> tuple[int, int]:
        """(DailyApiRequests used today, Max)."""
        with self.read() as conn:
            used = conn.execute("SELECT COALESCE(SUM(count), 0) FROM _api_calls WHERE day = ?",
                                (self._today(),)).fetchone()[0]
        return used, self.settings.daily_api_max

    def api_calls(self) -> dict[str, int]:
        """Calls made to this emulator so far, per endpoint (all days)."""
        with self.read() as conn:
            rows = conn.execute("SELECT endpoint, SUM(count) FROM _api_calls WHERE endpoint != ? GROUP BY endpoint",
                                (OTHER_INTEGRATIONS,)).fetchall()
        return {endpoint: count for endpoint, count in rows}

    def reset_api_calls(self) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM _api_calls")

    def exhaust_api_limit(self) -> None:
        """Use up the rest of today's DailyApiRequests, as other integrations of a busy org do; the next day of
        the org clock starts afresh."""
        day = self._today()
        with self.write() as conn:
            used = conn.execute("SELECT COALESCE(SUM(count), 0) FROM _api_calls WHERE day = ?", (day,)).fetchone()[0]
            conn.execute("INSERT INTO _api_calls VALUES (?, ?, ?) ON CONFLICT (day, endpoint) "
                         "DO UPDATE SET count = count + excluded.count",
                         (day, OTHER_INTEGRATIONS, max(0, self.settings.daily_api_max - used)))

    def set_api_limit(self, maximum: int) -> None:
        self.update_settings(daily_api_max=maximum)

    def update_settings(self, **changes: Any) -> OrgSettings:
        """Change org settings (token lifetime, refresh-token rotation, redirect URIs, JWT key...)."""
        with self.write():
            settings = replace(self.settings, **changes)
            self._set_meta("settings", settings.to_json())
        return settings

    # ---- faults --------------------------------------------------------------------------------

    def add_fault(self, kind: str, path_pattern: str, *, count: int = 1, method: str | None = None,
                  status: int | None = None, error_code: str | None = None, message: str | None = None,
                  latency_ms: int | None = None) -> int:
        """Inject a fault for the next `count` requests whose path matches the regex (count -1 = forever).
        Kinds: `error` (status + errorCode), `cut` (drop the connection mid-response), `latency`."""
        if kind not in ("error", "cut", "latency"):
            raise ValueError(f"unknown fault kind {kind!r}: use error, cut or latency")
        re.compile(path_pattern)
        with self.write() as conn:
            return conn.execute(
                "INSERT INTO _faults (kind, path_pattern, method, status, error_code, message, remaining, latency_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, path_pattern, method, status, error_code, message, count, latency_ms)).lastrowid

    def take_faults(self, method: str, path: str) -> list[dict[str, Any]]:
        """The faults that apply to this request, each used once."""
        with self.read() as conn:
            if conn.execute("SELECT 1 FROM _faults WHERE remaining != 0 LIMIT 1").fetchone() is None:
                return []
        hits = []
        with self.write() as conn:
            rows = conn.execute("SELECT id, kind, path_pattern, method, status, error_code, message, latency_ms "
                                "FROM _faults WHERE remaining != 0 ORDER BY id").fetchall()
            for fid, kind, pattern, fmethod, status, code, message, latency in rows:
                if (fmethod and fmethod.upper() != method) or not re.search(pattern, path):
                    continue
                conn.execute("UPDATE _faults SET remaining = remaining - 1 WHERE id = ? AND remaining > 0", (fid,))
                hits.append({"kind": kind, "status": status, "error_code": code, "message": message,
                             "latency_ms": latency})
        return hits

    def clear_faults(self) -> None:
        with self.write() as conn:
            conn.execute("DELETE FROM _faults")

    # ---- schema changes ------------------------------------------------------------------------

    def change_schema(self, op: dict[str, Any]) -> None:
        """Delete a field, rename one, or add a custom field; existing data follows the change.
        Ops: {"op": "delete_field", "object", "field"}, {"op": "rename_field", "object", "field", "new_name"},
        {"op": "add_field", "object", "field", "type", "label"?, "length"?}."""
        with self.write(records=True) as conn:
            schema = self._schema
            obj = schema.object(op.get("object", ""))
            if obj is None:
                raise invalid_type(op.get("object", ""))
            existing = obj.field(op.get("field", ""))
            kind = op.get("op")
            if kind in ("delete_field", "rename_field") and existing is None:
                raise SalesforceApiError(400, "INVALID_FIELD", f"No such field {op.get('field')} on {obj.name}")
            if kind == "delete_field" and existing.storage:
                conn.execute(f'ALTER TABLE "{obj.name}" DROP COLUMN "{existing.name}"')
            elif kind == "rename_field":
                if existing.storage:
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

    # ---- records -------------------------------------------------------------------------------

    def count(self, object_name: str, *, include_deleted: bool = False) -> int:
        obj = self.object(object_name)
        where = "" if include_deleted or not obj.field("IsDeleted") else ' WHERE "IsDeleted" = 0'
        with self.read() as conn:
            return conn.execute(f'SELECT COUNT(*) FROM "{obj.name}"{where}').fetchone()[0]

    def get_stored(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        """A record in storage form (including a soft-deleted one), or None."""
        obj = self.object(object_name)
        with self.read() as conn:
            cur = conn.execute(f'SELECT * FROM "{obj.name}" WHERE "Id" = ? COLLATE NOCASE', (normalize_id(record_id),))
            row = cur.fetchone()
            return dict(zip([d[0] for d in cur.description], row)) if row else None

    def find_ids(self, object_name: str, field_name: str, value: Any) -> list[str]:
        obj = self.object(object_name)
        f = obj.field(field_name)
        if f is None or f.storage is None:
            raise not_found()
        with self.read() as conn:
            rows = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE'
                                + (' AND "IsDeleted" = 0' if obj.field("IsDeleted") else ""),
                                (value,)).fetchall()
        return [r[0] for r in rows]

    def create(self, object_name: str, values: dict[str, Any], *, stamp_ms: int | None = None) -> str:
        """Insert one record from API-form values; returns its id."""
        with self.write(records=True) as conn:
            return self._create(conn, self.object(object_name), values, stamp_ms)

    def update(self, object_name: str, record_id: str, values: dict[str, Any], *, stamp_ms: int | None = None) -> None:
        with self.write(records=True) as conn:
            self._update(conn, self.object(object_name), record_id, values, stamp_ms)

    def delete(self, object_name: str, record_id: str, *, stamp_ms: int | None = None) -> None:
        with self.write(records=True) as conn:
            self._delete(conn, self.object(object_name), record_id, stamp_ms)

    def upsert(self, object_name: str, external_field: str, value: str, values: dict[str, Any]) -> tuple[str, bool]:
        """Upsert by external id; returns (id, created). Several matches raise a 300."""
        with self.write(records=True) as conn:
            return self._upsert(conn, self.object(object_name), external_field, value, values)

    def hard_delete(self, object_name: str, record_ids: Iterable[str]) -> int:
        """Remove records for good: no recycle bin, invisible to queryAll."""
        obj = self.object(object_name)
        ids = [normalize_id(i) for i in record_ids]
        with self.write(records=True) as conn:
            removed = 0
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" for _ in chunk)
                removed += conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" IN ({marks}) COLLATE NOCASE',
                                        chunk).rowcount
        return removed

    def apply_dml(self, operations: list[tuple[str, str, Any]], *, all_or_none: bool) -> list[dict[str, Any]]:
        """Run (op, object, payload) writes for sObject Collections and Bulk ingest; one result per record.
        With all_or_none, any failure rolls every write back."""
        results: list[dict[str, Any]] = []
        failed = False
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for op, object_name, payload in operations:
                    self._conn.execute("SAVEPOINT rec")
                    try:
                        results.append(self._dml_one(op, object_name, payload))
                        self._conn.execute("RELEASE rec")
                    except SalesforceApiError as err:
                        self._conn.execute("ROLLBACK TO rec")
                        self._conn.execute("RELEASE rec")
                        failed = True
                        results.append({"success": False, "errors": [err.record_error()]})
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            if failed and all_or_none:
                self._conn.execute("ROLLBACK")
                rolled_back = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                               "message": "Record rolled back because not all records were valid and the "
                                          "request was using AllOrNone header", "fields": []}
                return [r if not r["success"] else {"success": False, "errors": [rolled_back]} for r in results]
            self._conn.execute("COMMIT")
            self._record_writes += 1
        return results

    def _dml_one(self, op: str, object_name: str, payload: Any) -> dict[str, Any]:
        conn = self._conn
        obj = self.object(object_name)
        if op == "create":
            return {"id": self._create(conn, obj, payload, None), "success": True, "errors": []}
        if op == "update":
            values = dict(payload)
            record_id = values.pop("Id", None) or values.pop("id", None)
            if not record_id:
                raise SalesforceApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            self._update(conn, obj, record_id, values, None)
            return {"id": normalize_id(record_id), "success": True, "errors": []}
        if op == "delete":
            self._delete(conn, obj, payload, None)
            return {"id": normalize_id(payload), "success": True, "errors": []}
        if op == "hardDelete":
            stored = self._stored(conn, obj, payload)
            if stored is None:
                raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (stored["Id"],))
            return {"id": stored["Id"], "success": True, "errors": []}
        if op == "upsert":
            ext_field, values = payload
            record_id, created = self._upsert(conn, obj, ext_field, values.get(ext_field), values)
            return {"id": record_id, "success": True, "errors": [], "created": created}
        raise ValueError(f"unknown DML operation {op!r}")

    # -- write internals (run inside a write transaction) --

    def _stored(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: Any) -> dict[str, Any] | None:
        if not isinstance(record_id, str) or len(record_id) not in (15, 18):
            raise SalesforceApiError(400, "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}")
        cur = conn.execute(f'SELECT * FROM "{obj.name}" WHERE "Id" = ? COLLATE NOCASE', (normalize_id(record_id),))
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None

    def _convert_values(self, obj: ObjectDef, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            f = obj.field(name)
            if f is None or f.storage is None:
                raise SalesforceApiError(
                    400, "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {obj.name}", [name])
            allowed = f.createable if creating else f.updateable
            if not allowed:
                raise SalesforceApiError(
                    400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings of this "
                    "field and verify that it is read/write for your profile or permission set.", [f.name])
            out[f.name] = to_storage(f, value)
        return out

    def _check_references(self, conn: sqlite3.Connection, obj: ObjectDef, stored: dict[str, Any]) -> None:
        for name, value in stored.items():
            f = obj.field(name)
            if f.type != "reference" or value is None:
                continue
            target = OBJECT_BY_PREFIX.get(value[:3])
            if target not in f.reference_to or self._schema.object(target) is None or \
                    conn.execute(f'SELECT 1 FROM "{target}" WHERE "Id" = ?', (value,)).fetchone() is None:
                raise SalesforceApiError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])

    def _check_unique(self, conn: sqlite3.Connection, obj: ObjectDef, stored: dict[str, Any], own_id: str | None) -> None:
        for name, value in stored.items():
            f = obj.field(name)
            if not f.unique or value is None:
                continue
            row = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE AND "Id" != ?',
                               (value, own_id or "")).fetchone()
            if row:
                raise SalesforceApiError(400, "DUPLICATE_VALUE",
                                         f"duplicate value found: {f.name} duplicates value on record with id: {row[0]}",
                                         [f.name])

    def _create(self, conn: sqlite3.Connection, obj: ObjectDef, values: dict[str, Any], stamp_ms: int | None) -> str:
        stored = self._convert_values(obj, values, creating=True)
        for f in obj.stored_fields:
            if f.name not in stored and f.default is not None and f.createable:
                stored[f.name] = to_storage(f, f.default)
        missing = [f.name for f in obj.stored_fields
                   if not f.nillable and f.createable and f.type != "boolean" and stored.get(f.name) is None
                   and f.name not in ("OwnerId",)]
        if obj.name == "CampaignMember" and not (stored.get("LeadId") or stored.get("ContactId")):
            missing.append("LeadId")
        if missing:
            raise SalesforceApiError(400, "REQUIRED_FIELD_MISSING",
                                     f"Required fields are missing: [{', '.join(missing)}]", missing)
        self._check_references(conn, obj, stored)
        self._check_unique(conn, obj, stored, None)
        user = self._integration_user(conn)
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        number = conn.execute(f'SELECT COUNT(*) FROM "{obj.name}"').fetchone()[0] + 1
        record_id = make_id(obj.key_prefix, number, pod="5h")
        while conn.execute(f'SELECT 1 FROM "{obj.name}" WHERE "Id" = ?', (record_id,)).fetchone():
            number += 1
            record_id = make_id(obj.key_prefix, number, pod="5h")
        system = {"Id": record_id, "IsDeleted": 0, "CreatedDate": stamp, "CreatedById": user,
                  "LastModifiedDate": stamp, "LastModifiedById": user, "SystemModstamp": stamp, "OwnerId": user}
        for name, value in system.items():
            if obj.field(name) and (name != "OwnerId" or stored.get("OwnerId") is None):
                stored[name] = value
        for f in obj.stored_fields:
            if f.type == "boolean" and stored.get(f.name) is None:
                stored[f.name] = 1 if f.default is True else 0
        if obj.name == "CampaignMember":
            self._fill_campaign_member(conn, stored)
        if obj.field("Name") and obj.field("LastName"):
            stored["Name"] = " ".join(p for p in (stored.get("FirstName"), stored.get("LastName")) if p)
        self._insert_rows(conn, obj.name, [stored])
        return record_id

    def _fill_campaign_member(self, conn: sqlite3.Connection, stored: dict[str, Any]) -> None:
        duplicate = conn.execute(
            'SELECT 1 FROM "CampaignMember" WHERE "CampaignId" = ? AND ("LeadId" = ? OR "ContactId" = ?)',
            (stored["CampaignId"], stored.get("LeadId") or "", stored.get("ContactId") or "")).fetchone()
        if duplicate:
            raise SalesforceApiError(400, "DUPLICATE_VALUE", "Already a campaign member.")
        person_type = "Lead" if stored.get("LeadId") else "Contact"
        person_id = stored.get("LeadId") or stored.get("ContactId")
        cols = ", ".join(f'"{c}"' for c in CAMPAIGN_MEMBER_MIRRORS)
        row = conn.execute(f'SELECT {cols} FROM "{person_type}" WHERE "Id" = ?', (person_id,)).fetchone()
        stored.update(dict(zip(CAMPAIGN_MEMBER_MIRRORS, row)))
        stored.update({"Type": person_type, "LeadOrContactId": person_id})
        company = "Company" if person_type == "Lead" else None
        if company:
            stored["CompanyOrAccount"] = conn.execute('SELECT "Company" FROM "Lead" WHERE "Id" = ?', (person_id,)).fetchone()[0]

    def _integration_user(self, conn: sqlite3.Connection) -> str:
        row = conn.execute('SELECT "Id" FROM "User" WHERE "Username" = ?', (self.settings.username,)).fetchone()
        return row[0] if row else make_id("005", 1)

    def _update(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, values: dict[str, Any],
                stamp_ms: int | None) -> None:
        current = self._stored(conn, obj, record_id)
        if current is None:
            raise not_found()
        if current.get("IsDeleted"):
            raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        if obj.name == "Lead" and current.get("IsConverted"):
            raise SalesforceApiError(400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
        changes = self._convert_values(obj, values, creating=False)
        self._check_references(conn, obj, changes)
        self._check_unique(conn, obj, changes, current["Id"])
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        changes.update({"LastModifiedDate": stamp, "SystemModstamp": stamp,
                        "LastModifiedById": self._integration_user(conn)})
        if obj.field("Name") and obj.field("LastName") and ({"FirstName", "LastName"} & changes.keys()):
            merged = {**current, **changes}
            changes["Name"] = " ".join(p for p in (merged.get("FirstName"), merged.get("LastName")) if p)
        sets = ", ".join(f'"{k}" = ?' for k in changes)
        conn.execute(f'UPDATE "{obj.name}" SET {sets} WHERE "Id" = ?', (*changes.values(), current["Id"]))
        if obj.name in PERSON_OBJECTS:
            mirrored = {k: v for k, v in changes.items() if k in CAMPAIGN_MEMBER_MIRRORS}
            if mirrored:
                sets = ", ".join(f'"{k}" = ?' for k in mirrored)
                conn.execute(f'UPDATE "CampaignMember" SET {sets} WHERE "{obj.name}Id" = ?',
                             (*mirrored.values(), current["Id"]))

    def _delete(self, conn: sqlite3.Connection, obj: ObjectDef, record_id: str, stamp_ms: int | None) -> None:
        current = self._stored(conn, obj, record_id)
        if current is None:
            raise not_found()
        if current.get("IsDeleted"):
            raise SalesforceApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        if not obj.field("IsDeleted") or obj.name == "CampaignMember":
            # Junction objects skip the recycle bin: the row is gone, invisible even to queryAll.
            conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (current["Id"],))
            return
        stamp = stamp_ms if stamp_ms is not None else self.now_ms()
        conn.execute(f'UPDATE "{obj.name}" SET "IsDeleted" = 1, "LastModifiedDate" = ?, "SystemModstamp" = ? '
                     'WHERE "Id" = ?', (stamp, stamp, current["Id"]))
        if obj.name in PERSON_OBJECTS:
            conn.execute(f'DELETE FROM "CampaignMember" WHERE "{obj.name}Id" = ?', (current["Id"],))

    def _upsert(self, conn: sqlite3.Connection, obj: ObjectDef, external_field: str, value: Any,
                values: dict[str, Any]) -> tuple[str, bool]:
        f = obj.field(external_field)
        if f is None or not (f.external_id or f.name == "Id"):
            raise SalesforceApiError(404, "NOT_FOUND",
                                     f"Provided external ID field does not exist or is not accessible: {external_field}")
        body = {k: v for k, v in values.items() if k.lower() != f.name.lower()}
        where = ' AND "IsDeleted" = 0' if obj.field("IsDeleted") else ""
        rows = conn.execute(f'SELECT "Id" FROM "{obj.name}" WHERE "{f.name}" = ? COLLATE NOCASE{where}',
                            (value,)).fetchall()
        if len(rows) > 1:
            raise SalesforceApiError(300, "MULTIPLE_CHOICES", f"more than one record found for {f.name}={value}")
        if rows:
            self._update(conn, obj, rows[0][0], body, None)
            return rows[0][0], False
        if f.name == "Id":
            raise not_found()
        return self._create(conn, obj, {**body, f.name: value}, None), True


def _bindable_column(column: Any, size: int) -> Iterable[Any]:
    """One generated column as values sqlite3 binds fast: booleans as 0/1, None as NaN (stored as NULL)."""
    if not isinstance(column, np.ndarray):
        return itertools.repeat(NAN_NULL if column is None else column, size)
    if column.dtype == np.bool_:
        return column.astype(np.int8).tolist()
    if column.dtype == object:
        return [NAN_NULL if value is None else value for value in column.tolist()]
    return column.tolist()


def to_storage(f: FieldDef, value: Any) -> Any:
    """An API-form value (JSON or CSV text) in the org's storage form; a bad value is Salesforce's error."""
    if value is None or value == "" or value == "#N/A":
        return None
    storage = f.storage
    try:
        if storage == "text":
            if isinstance(value, list):
                value = ";".join(value)
            if not isinstance(value, str):
                value = str(value)
            if f.type in ("id", "reference"):
                return normalize_id(value)
            if f.length and len(value) > f.length:
                raise SalesforceApiError(400, "STRING_TOO_LONG",
                                         f"{f.label or f.name}: data value too large: {value[:40]} (max length={f.length})",
                                         [f.name])
            return value
        if storage == "bool":
            if isinstance(value, bool):
                return int(value)
            if str(value).lower() in ("true", "false", "1", "0"):
                return int(str(value).lower() in ("true", "1"))
            raise ValueError(value)
        if storage == "int":
            return int(float(value))
        if storage == "real":
            return float(value)
        if storage == "datetime":
            ms = iso_to_ms(str(value))
            if ms is None:
                raise ValueError(value)
            return ms
        if storage == "date":
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
    except (ValueError, TypeError):
        raise SalesforceApiError(400, "JSON_PARSER_ERROR" if not isinstance(value, str) else "INVALID_TYPE_ON_FIELD_IN_RECORD",
                                 f"{f.name}: value not of required type: {value}", [f.name]) from None
    return value


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
            precision=18 if ftype in ("double", "currency", "percent") else 0)]
    schema.replace_object(ObjectDef(obj.name, obj.label_plural, fields))


__all__ = ["Org", "OrgSettings", "iso_to_ms", "ms_to_iso", "to_storage", "KEY_PREFIXES"]
