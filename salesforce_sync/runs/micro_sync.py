"""One micro-sync, in plain Python: apply a plan of change events (sync.change_events) to the audience store.

Changed records are read again by Id, one SOQL per batch of Ids, and go through a window's own mapping, rules and
upsert (runs.window: plan_selection, store_records), so a record ends up stored exactly as a window would store it
and a later window skips it. Deletes come back the same way (queryAll returns a deleted record with IsDeleted
and its stamps, in the same query); a deleted record the org no longer returns at all is marked hard-deleted.
An overflow (or a gap without usable Ids) re-syncs the object by window from the event's commit time. The
replay id is stored only after all of it, and only if nobody moved it meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simple_salesforce import format_soql

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.runs.health import describe_for, require_budget, with_auto_mappings
from salesforce_sync.runs.lease import SyncLease
from salesforce_sync.runs.reconcile import query_ids
from salesforce_sync.runs.window import SyncWindow, plan_selection, plan_window, store_records
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.salesforce.org_clock import org_clock
from salesforce_sync.store import AudienceStore, SyncEvent, UpsertCounts
from salesforce_sync.sync.change_events import (
    LagSummary,
    MicroSyncPlan,
    ObjectChanges,
    lag_summary,
    relationship_id_field,
)
from salesforce_sync.sync.describe import Describes

log = logging.getLogger(__name__)

IDS_PER_QUERY = 300
"""Ids per SOQL `IN` list: about 7,000 characters of query, well inside Salesforce's URI and SOQL lengths."""
RESYNC_HORIZON = timedelta(hours=1)
"""A re-sync reads up to this far past the org's now (its responses' Date), so no record stamped meanwhile is
left out."""


@dataclass
class MicroSyncResult:
    """What one micro-sync did, per object and in all."""

    counts: UpsertCounts = field(default_factory=UpsertCounts)
    by_object: dict[str, UpsertCounts] = field(default_factory=dict)
    out_of_scope: int = 0
    hard_deleted: int = 0
    resynced: tuple[str, ...] = ()
    api_calls: int = 0
    duration_seconds: float = 0.0
    lag: LagSummary | None = None
    stored: bool = False
    events: int = 0
    own: int = 0
    #: When the records were stored and the commit times of the events applied (epoch ms): lags across
    #: micro-syncs (bench/change_capture_lag.py).
    stored_ms: int = 0
    commits_ms: list[int] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """Numbers for Dagster's UI (lag in seconds, event commit -> stored)."""
        return {"events": self.events, "own_changes_skipped": self.own, "records_imported": self.counts.imported,
                "records_updated": self.counts.updated, "records_deleted": self.counts.deleted,
                "records_skipped": self.counts.skipped, "records_out_of_scope": self.out_of_scope,
                "records_hard_deleted": self.hard_deleted, "resynced_objects": ", ".join(self.resynced),
                "api_calls": self.api_calls, "duration_seconds": round(self.duration_seconds, 3),
                "replay_id_stored": self.stored, **(self.lag.as_metadata() if self.lag else {})}


def _batches(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), IDS_PER_QUERY):
        yield list(ids[start:start + IDS_PER_QUERY])


def _queries(changes: ObjectChanges) -> int:
    """At most: a read and an Id listing per batch of Ids."""
    batches = -(-len(changes.ids) // IDS_PER_QUERY)
    return 2 * (batches + sum(-(-len(parent_ids) // IDS_PER_QUERY) for parent_ids in changes.via_parent.values()))


def _describes(client: SalesforceClient, integration: IntegrationConfig, object_type: str) -> Describes:
    """What typing the object's sync-rule values needs: nothing without rules (no API call)."""
    rule_fields = integration.rule_fields(object_type)
    return describe_for(client, object_type, rule_fields) if rule_fields else {}


def _org_now(client: SalesforceClient) -> datetime:
    clock = org_clock(client)
    if clock.skew is None:
        client.identity()  # any answer carries the org's time; identity costs no API request
    return clock.org_time(datetime.now(UTC))


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def apply_micro_sync(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                     plan: MicroSyncPlan, *, lease: SyncLease | None = None, run_id: str | None = None,
                     say: Callable[[str], Any] = log.debug) -> MicroSyncResult:
    """Read and store what the plan names, then store its replay id. Holding the integration's lease (`lease`)
    keeps window syncs out meanwhile; it is confirmed before anything is marked and before the replay id moves.
    Raises SyncDeferred (nothing stored) when the reads would pass the integration's API budget."""
    started, calls = time.monotonic(), client.api_calls
    result = MicroSyncResult(events=plan.events, own=plan.own)
    needed = sum(_queries(changes) for changes in plan.objects.values())
    require_budget(client, integration, needed, f"a micro-sync of {plan.events} change events")
    now_ms = int(time.time() * 1000)  # a plan of re-syncs alone (an expired replay id) may have no events
    span = SyncWindow(_at(min(plan.commits_ms, default=now_ms)), _at(max(plan.commits_ms, default=now_ms) + 1))
    resynced = []
    for object_type, changes in plan.objects.items():
        effective = with_auto_mappings(store, integration, object_type)
        describes = _describes(client, effective, object_type)
        counts, out_of_scope, gone = UpsertCounts(), 0, 0
        for batch in _batches(changes.ids):
            sync = plan_selection(client, effective, object_type, format_soql("Id IN {}", batch), describes, span,
                                  expected=len(batch), list_leavers=False)
            sync.lease, sync.read_ids = lease, set()
            read, _ = store_records(store, sync, say=say)
            left, missing = _not_read(store, client, integration, object_type, batch, sync.read_ids)
            counts, out_of_scope, gone = counts + read, out_of_scope + left, gone + missing
        for relationship, parent_ids in changes.via_parent.items():
            for batch in _batches(parent_ids):
                selection = f"{relationship_id_field(relationship)} IN " + format_soql("{}", batch)
                sync = plan_selection(client, effective, object_type, selection, describes, span,
                                      expected=len(batch), list_leavers=True)
                sync.lease = lease
                read, left = store_records(store, sync, say=say)
                counts, out_of_scope = counts + read, out_of_scope + left
        if changes.resync_since_ms is not None:
            since = _at(changes.resync_since_ms)
            window = SyncWindow(since, _org_now(client) + RESYNC_HORIZON)
            sync = plan_window(client, effective, object_type, window, describes)
            sync.lease = lease
            read, left = store_records(store, sync, say=say)
            counts, out_of_scope = counts + read, out_of_scope + left
            resynced.append(object_type)
        counts += UpsertCounts(deleted=out_of_scope + gone)
        result.by_object[object_type] = counts
        result.counts += counts
        result.out_of_scope += out_of_scope
        result.hard_deleted += gone
    if lease is not None:
        lease.confirm()
    result.stored_ms, result.commits_ms = int(time.time() * 1000), plan.commits_ms
    result.lag = lag_summary(plan.commits_ms, result.stored_ms)
    result.resynced = tuple(resynced)
    result.api_calls = client.api_calls - calls
    result.duration_seconds = time.monotonic() - started
    for object_type, counts in result.by_object.items():
        store.log_event(integration.project, integration.id, SyncEvent.MICRO_SYNCED, object_type=object_type,
                        count=counts.changed, duration_seconds=result.duration_seconds, window_start=span.start,
                        window_end=span.end, run_id=run_id,
                        details={"imported": counts.imported, "updated": counts.updated, "deleted": counts.deleted,
                                 "skipped": counts.skipped, "resync_since": None if object_type not in resynced else
                                 _at(plan.objects[object_type].resync_since_ms).isoformat(),
                                 **(result.lag.as_metadata() if result.lag else {})})
    result.stored = store.advance_replay_id(
        integration.id, integration.change_capture.topic, after=plan.after, until=plan.until,
        last_commit_at=_at(max(plan.commits_ms)) if plan.commits_ms else None,
        lag_seconds=result.lag.max_seconds if result.lag else None, events=plan.events)
    if not result.stored:
        log.warning("integration %r: the stored replay id moved while this micro-sync ran; it stays where the "
                    "other one put it", integration.id)
    return result


def _not_read(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, object_type: str,
              asked: list[str], read: set[str]) -> tuple[int, int]:
    """Records asked for by Id that the read (under the sync rules, deleted ones included) did not return: those
    the org still has no longer match the rules (out of scope), the others are gone even from its recycle bin
    (hard-deleted). One Id listing, and none at all when every record came back. Returns how many of each."""
    missing = [record_id for record_id in asked if record_id not in read]
    if not missing:
        return 0, 0
    soql = f"SELECT Id FROM {object_type} WHERE " + format_soql("Id IN {}", missing)
    found = {record_id for page in query_ids(client, integration, soql) for record_id in page}
    project = integration.project
    return (store.mark_out_of_scope(project, integration.id, object_type, [i for i in missing if i in found]),
            store.mark_hard_deleted(project, integration.id, object_type, [i for i in missing if i not in found]))


def settle_without_work(store: AudienceStore, integration: IntegrationConfig, plan: MicroSyncPlan) -> bool:
    """A batch that asks nothing of the store (our own write-back's changes, objects nothing here reads, a
    keepalive): its position is stored at once, so a resubscription never starts far back."""
    if plan.needs_work or plan.until is None or plan.until == plan.after:
        return False
    return store.advance_replay_id(integration.id, integration.change_capture.topic, after=plan.after,
                                   until=plan.until, events=plan.events)
