"""Id reconciliation, in plain Python: compare the org's Ids with the store's live rows, so records that
were hard-deleted (emptied recycle bin, removed CampaignMembers) or left the sync rules without being
modified (a parent's value changed) stop being live without waiting for a full re-sync.

Two Id-only listings split the object: the records matching the rules (stamped as seen by a scan) and
those not matching them (marked out of scope); a live stored row in neither is marked hard-deleted.
Together they list each record once, so a reconciliation costs about one Id listing of the object
(REST pages of 2,000, or Bulk API 2.0 above the integration's bulk_threshold).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from salesforce_sync.config.models import IntegrationConfig, ObjectType
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.store import AudienceStore, SyncEvent
from salesforce_sync.sync.soql import build_count_soql, build_window_soql


@dataclass(frozen=True)
class Reconciliation:
    """What one reconciliation marked not live."""

    hard_deleted: int
    out_of_scope: int


def reconciliation_due(store: AudienceStore, integration: IntegrationConfig, object_type: ObjectType,
                       now: datetime | None = None) -> bool:
    """Whether the object's last reconciliation is at least the integration's cadence ago (or never ran)."""
    settings = store.object_settings(integration.id, object_type)
    if settings is None or settings.reconciled_at is None:
        return True
    return (now or datetime.now(UTC)) - settings.reconciled_at >= integration.reconcile_every


def reconcile(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
              object_type: ObjectType, rules_where: str | None, *, scan_id: str | None = None,
              scan_started_at: datetime | None = None, run_id: str | None = None,
              list_out_of_scope: bool = True) -> Reconciliation:
    """Mark not live every stored record of the object the org no longer lists under its rules.

    A full re-sync passes the scan its read already stamped (`scan_id`, started at `scan_started_at`);
    otherwise the records matching the rules are listed by Id here. `list_out_of_scope` False skips
    the listing of records outside the rules (nothing stored can have left them yet). Rows modified
    after the listing began are left alone. Logs a `reconciled` event and records when it ran.
    """
    project = integration.project
    started = scan_started_at or datetime.now(UTC)
    if scan_id is None:
        scan_id = f"reconcile:{uuid.uuid4().hex}"
        for ids in listed_ids(client, integration, object_type, rules_where, include_deleted=False):
            store.mark_seen(project, integration.id, object_type, ids, scan_id)
    out_of_scope = 0
    if rules_where and list_out_of_scope:
        for ids in listed_ids(client, integration, object_type, f"NOT ({rules_where})", include_deleted=False):
            out_of_scope += store.mark_out_of_scope(project, integration.id, object_type, ids)
    hard_deleted = store.mark_missing_deleted(project, integration.id, object_type, scan_id=scan_id,
                                              scan_started_at=started)
    store.log_event(project, integration.id, SyncEvent.RECONCILED, object_type=object_type,
                    count=hard_deleted + out_of_scope, run_id=run_id,
                    details={"hard_deleted": hard_deleted, "out_of_scope": out_of_scope})
    store.record_object_settings(integration.id, object_type, reconciled_at=started)
    return Reconciliation(hard_deleted=hard_deleted, out_of_scope=out_of_scope)


def listed_ids(client: SalesforceClient, integration: IntegrationConfig, object_type: ObjectType,
               where: str | None, *, include_deleted: bool) -> Iterator[list[str]]:
    """Pages of the Ids of the object's records matching `where`: REST, or Bulk when a COUNT() says the
    listing is larger than the integration's bulk_threshold."""
    soql = build_window_soql(object_type, ("Id",), where, None, None)
    count = client.count(build_count_soql(object_type, where, None, None), include_deleted=include_deleted)
    if count == 0:
        return
    if count > integration.bulk_threshold:
        pages = client.bulk_chunks(soql, include_deleted=include_deleted, max_records=integration.chunk_size)
    else:
        pages = client.rest_chunks(soql, include_deleted=include_deleted, chunk_rows=integration.chunk_size)
    yield from _page_ids(pages)


def mark_window_out_of_scope(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig,
                             object_type: ObjectType, soql: str) -> int:
    """Run a window's Id listing of the records that no longer match the rules (`soql`, the window's
    bounds with the rules negated) and mark those stored live out of scope; returns how many.

    One REST call for the usual handful: most records modified in a window still match."""
    return sum(store.mark_out_of_scope(integration.project, integration.id, object_type, ids)
               for ids in query_ids(client, integration, soql))


def query_ids(client: SalesforceClient, integration: IntegrationConfig, soql: str) -> Iterator[list[str]]:
    """Pages of the Ids an Id-only query lists over REST, deleted records included (queryAll)."""
    yield from _page_ids(client.rest_chunks(soql, include_deleted=True, chunk_rows=integration.chunk_size))


def _page_ids(pages: Iterator[pd.DataFrame]) -> Iterator[list[str]]:
    """The Id column of each page of an Id listing, in whichever spelling the API answered with."""
    for page in pages:
        column = next((name for name in page.columns if str(name).lower() == "id"), None)
        if column is not None and len(page):
            yield page[column].tolist()
