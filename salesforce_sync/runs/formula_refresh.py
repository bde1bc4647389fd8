"""Formula refresh, in plain Python: re-read the mapped formula fields and relationship paths of every record an
integration syncs, on the integration's own cadence (`formula_refresh_minutes`), and write only the values that
changed. Their inputs change without moving the record's LastModifiedDate, so no window sees it (see
`sync.formulas`).

Per object: the sync's preflight (API quota, mappings), a COUNT() of the records the sync rules select, then one
query of Id and the refreshed fields over REST, or Bulk API 2.0 above `bulk_threshold`, read chunk by chunk and
compared with the stored rows; the version (`sf_modified_at`) stays. It holds the integration's lease, so it
never interleaves with a sync of the same integration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from salesforce_sync.config.models import IntegrationConfig, ObjectType
from salesforce_sync.runs.health import CheckOutcome, SyncDeferred, preflight, require_budget, with_auto_mappings
from salesforce_sync.runs.lease import SyncLease, acquire_lease
from salesforce_sync.runs.window import MAX_LOGGED_WARNINGS, object_fingerprint, rules_where
from salesforce_sync.salesforce.client import SalesforceClient, rest_page_size
from salesforce_sync.store import AudienceStore, ObjectSettings, SyncEvent
from salesforce_sync.store.lease import LeaseHolder
from salesforce_sync.sync.budget import window_calls
from salesforce_sync.sync.formulas import changed_rows, refresh_query, refreshed_mappings
from salesforce_sync.sync.mapping import map_chunk
from salesforce_sync.sync.text_values import replace_nul

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FormulaRefresh:
    """What one object's refresh did; `skipped` says why it was not refreshed (nothing was read then)."""

    object_type: str
    fields: tuple[str, ...] = ()
    rows_read: int = 0
    rows_changed: int = 0
    api_calls: int = 0
    bulk: bool = False
    refreshed_at: datetime | None = None
    skipped: str | None = None


def last_formula_refresh(settings: ObjectSettings | None) -> datetime | None:
    """When the object's formula values were last all read: its last formula refresh, or its last complete
    read (a first or full sync reads them too)."""
    if settings is None:
        return None
    return max((at for at in (settings.formula_refreshed_at, settings.fingerprint_at) if at is not None),
               default=None)


def refresh_due(store: AudienceStore, integration: IntegrationConfig, now: datetime) -> tuple[ObjectType, ...]:
    """The objects whose formula refresh is due: synced at least once, and all their formula values last read
    at least the cadence ago. None of them when the scheduled refresh is off."""
    every = integration.formula_refresh_every
    if every is None:
        return ()
    due = []
    for object_type in integration.object_types:
        state = store.get_state(integration.id, object_type)
        if state is None or state.last_success_at is None:
            continue
        last = last_formula_refresh(store.object_settings(integration.id, object_type))
        if last is None or now - last >= every:
            due.append(object_type)
    return tuple(due)


def check_formula_freshness(integration: IntegrationConfig, object_type: str, last: datetime | None,
                            now: datetime) -> CheckOutcome:
    """The object's formula values were last all read within twice the refresh cadence; with no read recorded yet
    (before the object's first sync) a warning."""
    where = f"integration {integration.id!r}, object {object_type}"
    every = integration.formula_refresh_every
    if every is None:
        return CheckOutcome("formula_freshness", True, f"{where}: the formula refresh is off "
                                                       "(formula_refresh_minutes: 0)")
    metadata: dict[str, Any] = {"cadence_minutes": integration.formula_refresh_minutes,
                                "max_age_minutes": 2 * integration.formula_refresh_minutes}
    if last is None:
        return CheckOutcome("formula_freshness", False, f"{where}: no read of its formula fields and relationship "
                                                        "paths recorded yet (its first sync or refresh records one)",
                            warn=True, metadata=metadata)
    age = now - last
    metadata |= {"last_refresh": last.isoformat(), "age_minutes": round(age.total_seconds() / 60, 1)}
    if age > 2 * every:
        return CheckOutcome("formula_freshness", False,
                            f"{where}: formula values last read {last.isoformat()}, {metadata['age_minutes']} "
                            f"minutes ago, more than twice the {integration.formula_refresh_minutes}-minute cadence",
                            metadata=metadata)
    return CheckOutcome("formula_freshness", True, f"{where}: formula values read {metadata['age_minutes']} minutes "
                                                   f"ago (every {integration.formula_refresh_minutes} minutes)",
                        metadata=metadata)


def refresh_formulas(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                     holder: LeaseHolder, *, run_id: str | None = None,
                     say: Callable[[str], Any] = log.info) -> list[FormulaRefresh]:
    """Refresh the formula values of every configured object under the integration's lease.

    Raises SyncDeferred when a read would pass the API budget (logged `sync_deferred`) and SyncBlocked when a
    mapping no longer fits the org; any failure is logged `sync_failed` (details `formula_refresh`) with the
    error verbatim, and the objects refreshed before it stay refreshed. `say` gets one line per object."""
    results = []
    with acquire_lease(store, integration.id, holder, wait=integration.lease_wait) as lease:
        for object_type in integration.object_types:
            try:
                result = _refresh_object(store, client, integration, object_type, lease, run_id)
            except SyncDeferred as err:
                store.log_event(integration.project, integration.id, SyncEvent.SYNC_DEFERRED, object_type=object_type,
                                run_id=run_id, message=str(err), details={"formula_refresh": True})
                raise
            except Exception as err:
                store.log_event(integration.project, integration.id, SyncEvent.SYNC_FAILED, object_type=object_type,
                                run_id=run_id, message=str(err), details={"formula_refresh": True})
                raise
            say(f"{object_type}: formula refresh skipped: {result.skipped}" if result.skipped else
                f"{object_type}: {result.rows_read:,} records read ({'Bulk' if result.bulk else 'REST'}), "
                f"{result.rows_changed:,} changed, {result.api_calls} API calls")
            results.append(result)
    return results


def _refresh_object(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                    object_type: ObjectType, lease: SyncLease, run_id: str | None) -> FormulaRefresh:
    effective = with_auto_mappings(store, integration, object_type)
    state = store.get_state(integration.id, object_type)
    if state is None or state.last_success_at is None:
        return FormulaRefresh(object_type, skipped="never synced: its first sync reads every value")
    settings = store.object_settings(integration.id, object_type)
    if settings is None or settings.fingerprint != object_fingerprint(effective, object_type):
        return FormulaRefresh(object_type, skipped="its mappings or sync rules changed since its stored rows were "
                                                   "read: its next sync re-reads every record")
    began, calls_before, started = time.monotonic(), client.api_calls, datetime.now(UTC)
    describes = preflight(client, effective, object_type)
    mappings = effective.mappings(object_type)
    refreshed = refreshed_mappings(object_type, mappings, describes)
    paths = tuple(path for mapping in refreshed for path in mapping.fields)
    read = changed = dropped = 0
    use_bulk = False
    if refreshed:
        fields, soql, count_soql = refresh_query(object_type, refreshed, rules_where(effective, object_type, describes),
                                                 effective.cursor_field)
        expected = client.count(count_soql, include_deleted=False)
        use_bulk = expected > integration.bulk_threshold
        size = integration.chunk_size
        require_budget(client, integration, window_calls(expected, use_bulk=use_bulk, rest_page_size=rest_page_size(
            size), bulk_page_size=size), f"the {object_type} formula refresh of {expected} records")
        pages = (client.bulk_chunks(soql, include_deleted=False, max_records=size) if use_bulk
                 else client.rest_chunks(soql, include_deleted=False, chunk_rows=size))
        spelling = {path.lower(): path for path in fields}  # Salesforce answers in its own spelling
        for raw in pages:
            raw = raw.rename(columns=lambda name: spelling.get(str(name).lower(), name))
            raw, replaced = replace_nul(raw.reindex(columns=list(fields)).reset_index(drop=True))
            fresh, warnings = map_chunk(raw, integration_id=integration.id, object_type=object_type,
                                        mappings=refreshed)
            for warning in warnings[:max(0, MAX_LOGGED_WARNINGS - dropped)]:
                log.warning("integration %r, %s: %s", integration.id, object_type, warning)
            dropped += len(warnings) + replaced
            stored = store.live_rows(integration.project, integration.id, object_type, fresh["salesforce_id"])
            lease.confirm()
            changed += store.apply_refreshed(integration.project, integration.id,
                                             changed_rows(fresh, stored, mappings, refreshed))
            read += len(raw)
    calls = client.api_calls - calls_before
    store.record_object_settings(integration.id, object_type, formula_refreshed_at=started)
    store.log_event(integration.project, integration.id, SyncEvent.FORMULAS_REFRESHED, object_type=object_type,
                    count=changed, duration_seconds=time.monotonic() - began, run_id=run_id,
                    details={"read": read, "api_calls": calls, "bulk": use_bulk, "fields": list(paths),
                             "warnings": dropped})
    return FormulaRefresh(object_type, paths, read, changed, calls, use_bulk, started)
