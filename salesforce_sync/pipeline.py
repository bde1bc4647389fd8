"""One sync window end to end, in plain Python: plan the query, stream mapped chunks, apply them to the
audience store. The Dagster asset plans and the IO manager applies; tests and the benchmark call these
directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.org_clock import DATE_RESOLUTION
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.models import SyncEvent, UpsertCounts
from salesforce_sync.sync.describe import Describes, field_types
from salesforce_sync.sync.mapping import MappingWarning, map_chunk
from salesforce_sync.sync.soql import build_count_soql, build_window_soql, rules_to_where, select_fields
from salesforce_sync.sync.text_values import replace_nul
from salesforce_sync.sync.windows import fetch_bounds
from salesforce_sync.sync_lease import SyncLease

log = logging.getLogger(__name__)
MAX_LOGGED_WARNINGS = 20
#: CampaignMember rows carry their Lead's or Contact's opt-out and name, but the member's own
#: LastModifiedDate does not move when the person changes: a window also selects the members whose
#: person changed in it, and a member row's version is the newest of the three stamps.
PERSON_RELATIONSHIPS: dict[str, tuple[str, ...]] = {"CampaignMember": ("Lead", "Contact")}
MANUAL_LAG = timedelta(minutes=2)
"""A manual "sync now" reads up to this long before the org's present: commits still in flight are
stamped earlier than they become visible (the next sync's overlap re-reads them too)."""


@dataclass(frozen=True)
class SyncWindow:
    """A partition window [start, end); `first` when it starts at the integration's first window, `full`
    when it also reaches the last complete window (a full re-sync: one query over everything).

    `read_from` and `read_until` replace the window's own ends in the query when set: a manual sync
    reads from where the last one stopped up to the present, and an org whose clock is behind the host's
    is read only up to its own present. `watermark` is the end actually read."""

    start: datetime
    end: datetime
    first: bool = False
    full: bool = False
    read_from: datetime | None = None
    read_until: datetime | None = None

    @property
    def watermark(self) -> datetime:
        return self.read_until or self.end


def window_for_run(integration: IntegrationConfig, start: datetime, end: datetime, *, first_start: datetime,
                   last_complete_end: datetime, org_as_of: datetime, watermark: datetime | None) -> SyncWindow:
    """The window a run syncs, decided once per run and the same for every object of it.

    `last_complete_end` and `org_as_of` (the org's time when the run was created) are taken at the run's
    creation, not when a step starts, so a window closing between two objects changes nothing: a run over
    every window is a full re-sync for all of its objects. `watermark` is the object's last synced end.
    """
    first = start <= first_start
    reaches_present = end >= last_complete_end
    full = first and reaches_present
    if integration.manual and reaches_present:
        # "sync now": up to the present (minus the lag), and from where the last sync stopped.
        until = org_as_of - MANUAL_LAG
        resume = watermark if watermark is not None and start < watermark < until and not first else None
        return SyncWindow(start, end, first=first, full=full, read_from=resume, read_until=max(until, end))
    if org_as_of < end - DATE_RESOLUTION:  # the org's clock is behind: it still stamps records into this window
        if org_as_of <= start:
            raise ValueError(f"integration {integration.id!r}: the org's time {org_as_of.isoformat()} is before the "
                             f"window start {start.isoformat()}: its clock is far behind this host's; fix the "
                             f"host's time (NTP)")
        return SyncWindow(start, end, first=first, full=full, read_until=org_as_of)
    return SyncWindow(start, end, first=first, full=full)


@dataclass
class WindowSync:
    """A planned window: its query and a lazy stream of mapped chunks. Nothing is fetched until iterated."""

    integration: IntegrationConfig
    object_type: str
    window: SyncWindow
    soql: str
    columns: tuple[str, ...]
    use_bulk: bool
    expected: int
    client: SalesforceClient
    calls_at_start: int = 0
    lease: SyncLease | None = None
    clock_skew: timedelta | None = None
    warnings: list[MappingWarning] = field(default_factory=list)
    replaced_nul: int = 0
    started: float = field(default_factory=time.monotonic)
    planned_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def chunks(self) -> Iterator[pd.DataFrame]:
        """Mapped store chunks; warnings about dropped values collect in `self.warnings`."""
        fetch = self.client.bulk_chunks if self.use_bulk else self.client.rest_chunks
        size = self.integration.chunk_size
        kwargs = {"max_records": size} if self.use_bulk else {"chunk_rows": size}
        mappings = self.integration.mappings(self.object_type)
        people = PERSON_RELATIONSHIPS.get(self.object_type, ())
        # Salesforce answers in its own spelling of each field (`Company` for a mapped `company`).
        spelling = {path.lower(): path for path in self.columns}
        for raw in fetch(self.soql, include_deleted=True, **kwargs):
            raw = raw.rename(columns=lambda name: spelling.get(str(name).lower(), name))
            raw = raw.reindex(columns=list(self.columns)).reset_index(drop=True)
            raw, replaced = replace_nul(raw)
            if replaced:
                self.replaced_nul += replaced
                log.warning("integration %r, %s: %d values held NUL characters, stored with U+FFFD in their place",
                            self.integration.id, self.object_type, replaced)
            mapped = map_chunk(raw, integration_id=self.integration.id, object_type=self.object_type,
                               mappings=mappings)
            self.warnings.extend(mapped.warnings)
            if people:
                stamps = [raw[spelling[f"{person}.LastModifiedDate".lower()]] for person in people]
                mapped.frame["sf_modified_at"] = _newest_stamp(mapped.frame["sf_modified_at"], stamps)
            yield mapped.frame


def _newest_stamp(own: pd.Series, related: list[pd.Series]) -> pd.Series:
    """Per row, the newest of the record's own stamp and its related records' stamps (text, null when absent)."""
    stamps = [own] + [pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce").dt.as_unit("us")
                      for text in related]
    return pd.concat(stamps, axis=1).max(axis=1).dt.as_unit("us")


def rules_where(integration: IntegrationConfig, object_type: str, describes: Describes) -> str | None:
    """The object's sync rules as a SOQL condition, each value typed by the org's describe and escaped."""
    types = field_types(object_type, integration.rule_fields(object_type), describes)
    return rules_to_where(integration.objects[object_type].sync_rules, types, integration_id=integration.id,
                          object_type=object_type)


def plan_window(client: SalesforceClient, integration: IntegrationConfig, object_type: str, window: SyncWindow,
                describes: Describes, *, calls_at_start: int | None = None) -> WindowSync:
    """Compile the window's SOQL (rules escaped, bounds with overlap) and pick REST or Bulk by a COUNT().

    `calls_at_start` is the client's API-call count when the sync began (preflight included)."""
    calls = client.api_calls if calls_at_start is None else calls_at_start
    mappings = integration.mappings(object_type)
    people = PERSON_RELATIONSHIPS.get(object_type, ())
    fields = select_fields(object_type, mappings, integration.cursor_field)
    selected = {path.lower() for path in fields}
    stamps = (f"{person}.LastModifiedDate" for person in people)
    fields += tuple(path for path in stamps if path.lower() not in selected)
    where = rules_where(integration, object_type, describes)
    start, end = fetch_bounds(window.read_from or window.start, window.watermark, first_window=window.first,
                              history=integration.history, overlap=integration.overlap)
    if window.full:
        # The scrub in apply_window treats every record the query does not list as deleted, so a full
        # re-sync lists records up to now: one changed since the last window must not look deleted.
        end = None
    cursor = integration.cursor_field
    soql = build_window_soql(object_type, fields, where, start, end, cursor_field=cursor, related=people)
    expected = client.count(build_count_soql(object_type, where, start, end, cursor_field=cursor, related=people))
    return WindowSync(integration, object_type, window, soql, fields, expected > integration.bulk_threshold,
                      expected, client, calls)


@dataclass(frozen=True)
class WindowResult:
    counts: UpsertCounts
    scrubbed: int
    api_calls: int
    duration_seconds: float
    warnings: int


def apply_window(store: AudienceStore, sync: WindowSync, *, run_id: str | None) -> WindowResult:
    """Upsert the window chunk by chunk (each chunk one transaction, idempotent), log it, record success.

    A full re-sync also marks deleted the stored records Salesforce no longer lists (hard deletes,
    CampaignMembers, records that left the sync rules). A sync holding the integration's lease checks it
    still does before that sweep and before moving the watermark.
    """
    integration, object_type = sync.integration, sync.object_type
    project = integration.project
    scan_id = f"{run_id or 'scan'}:{object_type}" if sync.window.full else None
    counts = store.upsert_stream(project, integration.id, sync.chunks(), scan_id=scan_id)
    scrubbed = 0
    if sync.lease is not None:
        sync.lease.confirm()
    if scan_id:
        scrubbed = store.mark_missing_deleted(project, integration.id, object_type, scan_id=scan_id,
                                              scan_started_at=sync.planned_at)
        counts += UpsertCounts(deleted=scrubbed)
    for warning in sync.warnings[:MAX_LOGGED_WARNINGS]:
        log.warning("integration %r, %s: %s", integration.id, object_type, warning)
    duration = time.monotonic() - sync.started
    window = {"window_start": sync.window.start, "window_end": sync.window.end, "run_id": run_id}
    for event, count in ((SyncEvent.RECORDS_IMPORTED, counts.imported), (SyncEvent.RECORDS_UPDATED, counts.updated),
                         (SyncEvent.RECORDS_DELETED, counts.deleted)):
        if count:
            store.log_event(project, integration.id, event, object_type=object_type, count=count, **window)
    store.log_event(project, integration.id, SyncEvent.SYNC_COMPLETED, object_type=object_type,
                    count=counts.changed, duration_seconds=duration, **window,
                    details={"skipped": counts.skipped, "warnings": len(sync.warnings), "bulk": sync.use_bulk,
                             "nul_replaced": sync.replaced_nul, "read_until": sync.window.watermark.isoformat(),
                             "clock_skew_seconds": _seconds(sync.clock_skew)})
    if sync.lease is not None:
        sync.lease.confirm()
    store.record_success(integration.id, object_type, window_end=sync.window.watermark, counts=counts,
                         at=datetime.now(UTC))
    return WindowResult(counts, scrubbed, sync.client.api_calls - sync.calls_at_start, duration,
                        len(sync.warnings) + sync.replaced_nul)


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 1)
