"""Plain values the audience store hands out and accepts: events, statuses, counts, log and state rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd


class SyncEvent(StrEnum):
    """What a sync log entry records."""

    SYNC_STARTED = "sync_started"
    SYNC_COMPLETED = "sync_completed"
    SYNC_FAILED = "sync_failed"
    SYNC_DEFERRED = "sync_deferred"
    RECORDS_IMPORTED = "records_imported"
    RECORDS_UPDATED = "records_updated"
    RECORDS_DELETED = "records_deleted"
    HEALTH_CHECK = "health_check"
    ALERT_SENT = "alert_sent"
    SETTINGS_CHANGED = "settings_changed"
    RECONCILED = "reconciled"
    MICRO_SYNCED = "micro_synced"
    RECORDS_CREATED = "records_created"
    RECORDS_REJECTED = "records_rejected"
    FORMULAS_REFRESHED = "formulas_refreshed"


class IntegrationStatus(StrEnum):
    """The health an integration (or one of its objects) shows to users."""

    ACTIVE = "Active"
    ERROR = "Error"
    INCOMPLETE = "Incomplete"
    INACTIVE = "Inactive"


@dataclass(frozen=True)
class UpsertCounts:
    """What one or more upserted chunks did; every distinct incoming key lands in exactly one bucket.

    imported: new keys stored live; updated: newer versions applied (including undeletes);
    deleted: keys newly marked deleted (new keys arriving deleted count here, not as imported);
    skipped: versions not newer than the stored one. duplicates: same-key rows dropped within a chunk.
    """

    imported: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    duplicates: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            imported=self.imported + other.imported,
            updated=self.updated + other.updated,
            deleted=self.deleted + other.deleted,
            skipped=self.skipped + other.skipped,
            duplicates=self.duplicates + other.duplicates,
        )

    @property
    def changed(self) -> int:
        """Keys whose stored row this upsert wrote."""
        return self.imported + self.updated + self.deleted


@dataclass
class WindowTally:
    """UpsertCounts per window of a ranged sync, each record counted in the window its cursor value
    (`sf_modified_at`) falls in: the last window starting at or before it. Records older than the first
    window (the history it reads) count in the first; records past the last window's start in the last.

    The store adds each chunk's outcomes by stamp (`add`); a run reports one window at a time (`window`)."""

    starts: tuple[datetime, ...]
    counts: np.ndarray = field(init=False, repr=False)
    """Rows of imported, updated, deleted, skipped: one row per window."""

    def __post_init__(self) -> None:
        if not self.starts:
            raise ValueError("a window tally needs at least one window start")
        self.counts = np.zeros((len(self.starts), 4), dtype=np.int64)
        self._bounds = _microseconds(pd.Series(self.starts[1:], dtype="datetime64[us, UTC]"))

    def __len__(self) -> int:
        return len(self.starts)

    def add(self, staged: pd.Series, changed: Sequence[tuple[Any, int, int, int]]) -> None:
        """One chunk: the cursor values of its staged rows, and (cursor value, imported, updated, deleted)
        per distinct cursor value the upsert changed; staged rows the upsert did not change were skipped."""
        np.add.at(self.counts[:, 3], self._window_of(staged), 1)
        if changed:
            stamps, *outcomes = zip(*changed)
            windows = self._window_of(pd.Series(stamps))
            for column, values in enumerate(outcomes):
                values = np.asarray(values, dtype=np.int64)
                np.add.at(self.counts[:, column], windows, values)
                np.add.at(self.counts[:, 3], windows, -values)

    def add_deleted_to_last(self, deleted: int) -> None:
        """Deletions found without a cursor value (reconciliation): they are learned in the last window."""
        self.counts[-1, 2] += deleted

    def window(self, index: int) -> UpsertCounts:
        imported, updated, deleted, skipped = (int(value) for value in self.counts[index])
        return UpsertCounts(imported=imported, updated=updated, deleted=deleted, skipped=skipped)

    def _window_of(self, stamps: pd.Series) -> np.ndarray:
        return np.searchsorted(self._bounds, _microseconds(stamps), side="right")


def _microseconds(stamps: pd.Series) -> np.ndarray:
    """Aware datetimes or ISO text (UTC) as microseconds since the epoch."""
    parsed = pd.to_datetime(stamps, utc=True, format="ISO8601") if len(stamps) else stamps
    return parsed.astype("datetime64[us, UTC]").to_numpy(dtype="datetime64[us]").astype(np.int64)


@dataclass(frozen=True)
class SyncLogEntry:
    """One row of the sync log; message is kept verbatim."""

    id: int
    at: datetime
    project: str
    integration_id: str
    object_type: str | None
    event: SyncEvent
    count: int | None
    duration_seconds: float | None
    window_start: datetime | None
    window_end: datetime | None
    run_id: str | None
    message: str | None
    details: dict[str, Any] | None


@dataclass(frozen=True)
class OrgRegistration:
    """Which project (and integration) a Salesforce org feeds."""

    org_id: str
    project: str
    integration_id: str
    connected_at: datetime


@dataclass(frozen=True)
class IntegrationState:
    """Health and progress of an integration (object_type None) or of one of its objects.

    last_success_window_end only moves forward: it is the furthest window end synced successfully.
    The records_* fields are running totals across all syncs.
    """

    integration_id: str
    object_type: str | None
    status: IntegrationStatus
    last_success_at: datetime | None = None
    last_success_window_end: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    records_imported: int = 0
    records_updated: int = 0
    records_deleted: int = 0


@dataclass(frozen=True)
class ObjectSettings:
    """Which mappings and rules (fingerprint) an object's stored rows were last fully read with, and
    when its Ids were last reconciled with the org (hard deletes, records out of scope)."""

    integration_id: str
    object_type: str
    fingerprint: str | None
    fingerprint_at: datetime | None
    reconciled_at: datetime | None
    #: The object's field names in the org when the fingerprint was recorded: the schema_drift baseline.
    known_fields: tuple[str, ...] | None = None
    #: Mappings ({"field", "property", "type"}) schema_drift added for new custom fields (auto_map_new_fields).
    auto_mappings: tuple[dict[str, str], ...] = ()
    #: When the last formula refresh of the object began (see `runs.formula_refresh`).
    formula_refreshed_at: datetime | None = None


@dataclass(frozen=True)
class ChangeCaptureState:
    """Where an integration's change-event subscription resumes and how it keeps up (see store.schema)."""

    integration_id: str
    topic: str
    replay_id: bytes | None
    last_commit_at: datetime | None
    applied_at: datetime | None
    heard_at: datetime | None
    pending_since: datetime | None
    last_lag_seconds: float | None
    events_applied: int
