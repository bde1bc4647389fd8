"""One sync window end to end, in plain Python: plan the query, stream mapped chunks, apply them to the
audience store. The Dagster asset plans and the IO manager applies; tests and the benchmark call these
directly.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from salesforce_sync.config.models import OBJECT_RULES, IntegrationConfig
from salesforce_sync.runs.health import require_budget
from salesforce_sync.runs.reconcile import mark_window_out_of_scope, reconcile, reconciliation_due
from salesforce_sync.salesforce.client import ResumeQuery, SalesforceClient, rest_page_size
from salesforce_sync.salesforce.org_clock import DATE_RESOLUTION
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.chunks import PreparedChunk, store_ready_chunk
from salesforce_sync.store.models import SyncEvent, UpsertCounts, WindowTally
from salesforce_sync.sync.budget import window_calls
from salesforce_sync.sync.describe import Describes, field_types
from salesforce_sync.sync.mapping import MappingWarning, map_chunk, settings_fingerprint
from salesforce_sync.sync.schema_drift import field_names
from salesforce_sync.sync.soql import (
    after_record_where,
    build_count_soql,
    build_window_soql,
    order_by_cursor,
    rules_to_where,
    select_fields,
)
from salesforce_sync.sync.text_values import replace_nul
from salesforce_sync.sync.windows import fetch_bounds
from salesforce_sync.runs.lease import SyncLease

log = logging.getLogger(__name__)
MAX_LOGGED_WARNINGS = 20
MANUAL_LAG = timedelta(minutes=2)
"""A manual "sync now" reads up to this long before the org's present: commits still in flight are
stamped earlier than they become visible (the next sync's overlap re-reads them too)."""


@dataclass(frozen=True)
class SyncWindow:
    """A partition window [start, end); `first` when it starts at the integration's first window, `full`
    when it also reaches the last complete window (a full re-sync: one query over everything); `reread`
    says why an object is read in full anyway (its mappings or rules changed, see check_settings).

    `read_from` and `read_until` replace the window's own ends in the query when set: a manual sync
    reads from where the last one stopped up to the present, and an org whose clock is behind the host's
    is read only up to its own present. `watermark` is the end actually read."""

    start: datetime
    end: datetime
    first: bool = False
    full: bool = False
    reread: str | None = None
    read_from: datetime | None = None
    read_until: datetime | None = None

    @property
    def reads_everything(self) -> bool:
        """Whether the window reads every record up to now, then reconciles the object's Ids."""
        return self.full or self.reread is not None

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
    resume: ResumeQuery | None = None
    usage_at_start: tuple[int, int] | None = None
    rules_where: str | None = None
    out_of_scope_soql: str | None = None
    lease: SyncLease | None = None
    clock_skew: timedelta | None = None
    warnings: list[MappingWarning] = field(default_factory=list)
    replaced_nul: int = 0
    started: float = field(default_factory=time.monotonic)
    planned_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The object's field names in the describe the plan was made with: schema_drift's baseline.
    known_fields: tuple[str, ...] | None = None
    #: When a set: collects the Id of every record read (a micro-sync tells what it asked for but did not get).
    read_ids: set[str] | None = None

    def chunks(self) -> Iterator[PreparedChunk]:
        """Mapped store chunks, validated where the mapping built them; warnings about dropped values collect
        in `self.warnings`."""
        fetch = self.client.bulk_chunks if self.use_bulk else self.client.rest_chunks
        size = self.integration.chunk_size
        kwargs: dict[str, Any] = {"max_records": size} if self.use_bulk else {"chunk_rows": size, "resume": self.resume}
        mappings = self.integration.mappings(self.object_type)
        people = OBJECT_RULES[self.object_type].versioned_by
        # Salesforce answers in its own spelling of each field (`Company` for a mapped `company`).
        spelling = {path.lower(): path for path in self.columns}
        for raw in fetch(self.soql, include_deleted=True, **kwargs):
            raw = raw.rename(columns=lambda name: spelling.get(str(name).lower(), name))
            raw = raw.reindex(columns=list(self.columns)).reset_index(drop=True)
            if self.read_ids is not None:
                self.read_ids.update(raw["Id"].dropna())
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
            prepared = store_ready_chunk(self.integration.id, mapped.frame)
            del raw, mapped  # not held while the store writes this chunk and the next one is read
            yield prepared


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


def related_parents(integration: IntegrationConfig, object_type: str) -> tuple[str, ...]:
    """Parent relationships whose own change inside a window also selects a record: the people of a
    CampaignMember, and every relationship a mapping or sync rule reads through (`Account.Name`), so a
    renamed Account reaches its Contacts on the next window."""
    paths = [path for mapping in integration.mappings(object_type) for path in mapping.fields]
    paths += integration.rule_fields(object_type)
    parents: dict[str, str] = {}
    for parent in [*OBJECT_RULES[object_type].versioned_by, *(path.split(".")[0] for path in paths if "." in path)]:
        parents.setdefault(parent.lower(), parent)
    return tuple(parents.values())


def check_settings(store: AudienceStore, integration: IntegrationConfig, object_type: str,
                   window: SyncWindow, *, run_id: str | None = None) -> SyncWindow:
    """The window to sync: re-read the object in full when its mappings or rules differ from those its
    stored rows were read with (their fingerprint is kept in the store), logging `settings_changed`."""
    if window.first or window.reads_everything:
        return window
    current = object_fingerprint(integration, object_type)
    settings = store.object_settings(integration.id, object_type)
    if settings is not None and settings.fingerprint == current:
        return window
    if settings is None or settings.fingerprint is None:
        state = store.get_state(integration.id, object_type)
        if state is None or state.last_success_window_end is None:
            return window  # never synced: its first window reads everything anyway
        reason = f"{object_type}: no record of the mappings and sync rules its stored rows were read with"
    else:
        reason = f"{object_type}: field mappings or sync rules changed since its stored rows were read"
    store.log_event(integration.project, integration.id, SyncEvent.SETTINGS_CHANGED, object_type=object_type,
                    window_start=window.start, window_end=window.end, run_id=run_id,
                    message=f"{reason}; re-reading every record",
                    details={"previous": None if settings is None else settings.fingerprint, "current": current})
    return replace(window, reread=reason)


def object_fingerprint(integration: IntegrationConfig, object_type: str) -> str:
    return settings_fingerprint(integration.mappings(object_type), integration.sync_rules(object_type),
                                integration.cursor_field)


def read_fields(integration: IntegrationConfig, object_type: str) -> tuple[str, ...]:
    """What a read of the object selects: its mapped fields (select_fields) and the stamps of the people a
    record's version also depends on."""
    fields = select_fields(object_type, integration.mappings(object_type), integration.cursor_field)
    selected = {path.lower() for path in fields}
    stamps = (f"{person}.LastModifiedDate" for person in OBJECT_RULES[object_type].versioned_by)
    return fields + tuple(path for path in stamps if path.lower() not in selected)


def plan_selection(client: SalesforceClient, integration: IntegrationConfig, object_type: str, selection: str,
                   describes: Describes, window: SyncWindow, *, expected: int, list_leavers: bool) -> WindowSync:
    """A REST read of the object's records picked by `selection` (a SOQL condition such as `Id IN (...)`) under
    its sync rules, mapped like a window's, and with `list_leavers` the Id listing of the picked records that no
    longer match the rules. A micro-sync reads changed records this way; `window` says which commit times they
    come from."""
    fields = read_fields(integration, object_type)
    where = rules_where(integration, object_type, describes)
    soql = build_window_soql(object_type, fields, f"({selection}) AND ({where})" if where else selection, None, None)
    leavers = None
    if where and list_leavers:
        leavers = build_window_soql(object_type, ("Id",), f"({selection}) AND NOT ({where})", None, None)
    return WindowSync(integration, object_type, window, soql, fields, False, expected, client, client.api_calls,
                      usage_at_start=client.api_usage, rules_where=where, out_of_scope_soql=leavers)


def plan_window(client: SalesforceClient, integration: IntegrationConfig, object_type: str, window: SyncWindow,
                describes: Describes, *, calls_at_start: int | None = None) -> WindowSync:
    """Compile the window's SOQL (rules escaped, bounds with overlap) and pick REST or Bulk by a COUNT().

    The COUNT() also sizes the fetch for the API budget: a window that would pass it raises SyncDeferred
    before fetching. A REST read is ordered by cursor and Id, so it can resume after its last record. An
    incremental window with sync rules also gets the Id listing of its records that no longer match them
    (the rules negated). `calls_at_start` is the client's API-call count when the sync began (preflight
    included)."""
    calls = client.api_calls if calls_at_start is None else calls_at_start
    usage_at_start = client.api_usage
    related = related_parents(integration, object_type)
    fields = read_fields(integration, object_type)
    where = rules_where(integration, object_type, describes)
    start, end = fetch_bounds(window.read_from or window.start, window.watermark, first_window=window.first,
                              history=integration.history, overlap=integration.overlap)
    if window.reads_everything:
        # Everything the integration covers, from its first window (with history, per `history`). The
        # reconciliation in apply_window treats every record the query does not list as gone, so a full
        # read lists records up to now: one changed since the last window must not look deleted.
        start, _ = fetch_bounds(integration.start, window.end, first_window=True, history=integration.history,
                                overlap=integration.overlap)
        end = None
    cursor = integration.cursor_field
    soql = build_window_soql(object_type, fields, where, start, end, cursor_field=cursor, related=related)
    expected = client.count(build_count_soql(object_type, where, start, end, cursor_field=cursor, related=related))
    use_bulk = expected > integration.bulk_threshold
    leavers = None
    if where and not window.reads_everything:
        leavers = build_window_soql(object_type, ("Id",), f"NOT ({where})", start, end, cursor_field=cursor,
                                    related=related)
    needed = window_calls(expected, use_bulk=use_bulk, rest_page_size=rest_page_size(integration.chunk_size),
                          bulk_page_size=integration.chunk_size) + (1 if leavers else 0)
    require_budget(client, integration, needed, f"the {object_type} window of {expected} records")

    def resume(last: dict[str, Any]) -> str:
        """The window's records after `last`, in the same order."""
        after = after_record_where(pd.Timestamp(last[cursor]).to_pydatetime(), last["Id"], cursor_field=cursor)
        rest = build_window_soql(object_type, fields, f"({where}) AND {after}" if where else after, start, end,
                                 cursor_field=cursor, related=related)
        return rest + order_by_cursor(cursor)

    if not use_bulk:
        soql += order_by_cursor(cursor)
    return WindowSync(integration, object_type, window, soql, fields, use_bulk, expected, client, calls,
                      resume=None if use_bulk else resume, usage_at_start=usage_at_start, rules_where=where,
                      out_of_scope_soql=leavers, known_fields=field_names(describes.get(object_type, {})))


def _reporting_chunks(sync: WindowSync, say: Callable[[str], Any]) -> Iterator[PreparedChunk]:
    """The window's chunks, reporting progress each time the store has taken one and asks for the next."""
    done, began = 0, time.monotonic()
    for chunk in sync.chunks():
        yield chunk
        done += len(chunk)
        rate = done / max(time.monotonic() - began, 1e-6)
        share = f" ({100 * done / sync.expected:.0f}%)" if sync.expected else ""
        say(f"{sync.object_type}: {done:,} / {sync.expected:,} records{share}, {rate:,.0f} records/s")


@dataclass(frozen=True)
class WindowResult:
    counts: UpsertCounts
    scrubbed: int
    api_calls: int
    duration_seconds: float
    warnings: int
    #: The org's DailyApiRequests (used, max) from Sforce-Limit-Info when the sync began and when it ended.
    api_usage_before: tuple[int, int] | None = None
    api_usage_after: tuple[int, int] | None = None
    out_of_scope: int = 0
    #: The counts by window of the range when apply_window was given the window starts.
    by_window: WindowTally | None = None


def store_records(store: AudienceStore, sync: WindowSync, *, scan_id: str | None = None,
                  tally: WindowTally | None = None, say: Callable[[str], Any] = log.info) -> tuple[UpsertCounts, int]:
    """Upsert a planned read chunk by chunk (each chunk one transaction, idempotent), then mark not live its
    records that no longer match the sync rules: what every read of records does, a window's or a micro-sync's.
    Returns the upsert's counts and how many were marked out of scope."""
    integration = sync.integration
    counts = store.upsert_stream(integration.project, integration.id, _reporting_chunks(sync, say), scan_id=scan_id,
                                 tally=tally)
    if sync.lease is not None:
        sync.lease.confirm()
    out_of_scope = 0
    if sync.out_of_scope_soql:
        out_of_scope = mark_window_out_of_scope(store, sync.client, integration, sync.object_type,
                                                sync.out_of_scope_soql)
    return counts, out_of_scope


def apply_window(store: AudienceStore, sync: WindowSync, *, run_id: str | None,
                 window_starts: Sequence[datetime] | None = None, say: Callable[[str], Any] = log.info) -> WindowResult:
    """Upsert the window chunk by chunk (each chunk one transaction, idempotent), log it, record success.

    Then marks not live what the window learned no longer belongs: records modified in it that left the
    sync rules, and, in a full read or when the integration's reconciliation is due, every stored record
    the org no longer lists (hard deletes, CampaignMembers) or that no longer matches the rules.
    A sync holding the integration's lease checks it still does before those sweeps and before moving the
    watermark.

    With `window_starts` (the starts of the windows a ranged run covers) the counts are also kept by
    window (WindowResult.by_window). `say` gets one progress line per chunk (plain logging by default; the
    Dagster IO manager passes its run log).
    """
    integration, object_type = sync.integration, sync.object_type
    project = integration.project
    everything = sync.window.reads_everything
    scan_id = f"{run_id or 'scan'}:{object_type}:{uuid.uuid4().hex[:8]}" if everything else None
    state = store.get_state(integration.id, object_type)
    synced_before = state is not None and state.last_success_at is not None
    tally = WindowTally(tuple(window_starts)) if window_starts else None
    counts, out_of_scope = store_records(store, sync, scan_id=scan_id, tally=tally, say=say)
    scrubbed = 0
    if everything or (not sync.window.first and reconciliation_due(store, integration, object_type)):
        # Before an object's first success nothing stored can have left the rules: no listing needed.
        reconciled = reconcile(store, sync.client, integration, object_type, sync.rules_where, scan_id=scan_id,
                               scan_started_at=sync.planned_at if everything else None, run_id=run_id,
                               list_out_of_scope=synced_before)
        scrubbed, out_of_scope = reconciled.hard_deleted, out_of_scope + reconciled.out_of_scope
    counts += UpsertCounts(deleted=scrubbed + out_of_scope)
    if tally is not None:
        tally.add_deleted_to_last(scrubbed + out_of_scope)
    if sync.window.first or everything:
        # A first window has just listed every record there is (up to its end): nothing to reconcile yet.
        store.record_object_settings(integration.id, object_type, reconciled_at=sync.planned_at,
                                     fingerprint=object_fingerprint(integration, object_type),
                                     known_fields=sync.known_fields)
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
                        len(sync.warnings) + sync.replaced_nul, sync.usage_at_start, sync.client.api_usage,
                        out_of_scope, tally)


def record_window_failure(store: AudienceStore, integration: IntegrationConfig, object_type: str, window: Any,
                          *, run_id: str | None, error: str) -> None:
    """A window that failed: `sync_failed` with the error verbatim, and the object's status Error. `window` is
    anything with `start` and `end` (a SyncWindow, or Dagster's partition window before one was planned)."""
    store.log_event(integration.project, integration.id, SyncEvent.SYNC_FAILED, object_type=object_type,
                    window_start=window.start, window_end=window.end, run_id=run_id, message=error)
    store.record_failure(integration.id, object_type, error=error)


def _seconds(delta: timedelta | None) -> float | None:
    return None if delta is None else round(delta.total_seconds(), 1)
