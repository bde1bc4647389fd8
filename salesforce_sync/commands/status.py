"""`salesforce-sync status`: every configured integration with the badge the marketing tool shows, its last
successful sync, its last error and how many people it holds, read from the audience store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from salesforce_sync.commands.common import iso_utc, open_store, render_table, shorten
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.config.status import Badge, integration_status
from salesforce_sync.store import AudienceStore, IntegrationState, IntegrationStatus

NEVER = "never"


@dataclass(frozen=True)
class ObjectStatus:
    """One synced object: its stored state (None before its first sync) and its people in the store."""

    object_type: str
    status: str | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    live: int
    deleted: int


@dataclass(frozen=True)
class IntegrationReport:
    """What `status` shows for one integration; `missing` says why it is Incomplete."""

    integration_id: str
    project: str
    badge: Badge
    missing: tuple[str, ...]
    active: bool
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    live: int
    deleted: int
    objects: tuple[ObjectStatus, ...]


def integration_reports(config: SyncConfig, store: AudienceStore) -> list[IntegrationReport]:
    """Badge, last success, last error and counts of every configured integration, in config order.

    The badge is Error when the latest sync of any configured object (or of the integration as a whole)
    failed; the config decides Incomplete and Inactive first.
    """
    states: dict[str, list[IntegrationState]] = {}
    for state in store.states():
        states.setdefault(state.integration_id, []).append(state)
    counts = store.user_counts()
    reports = []
    for integration in config.integrations:
        own = [s for s in states.get(integration.id, []) if s.object_type in (None, *integration.object_types)]
        mine = counts[(counts["project"] == integration.project) & (counts["integration_id"] == integration.id)]
        failed = any(state.status == IntegrationStatus.ERROR for state in own)
        badge, missing = integration_status(integration, last_sync_failed=failed)
        last_error = max((s for s in own if s.last_error_at is not None), key=lambda s: s.last_error_at, default=None)
        successes = [s.last_success_at for s in own if s.last_success_at is not None]
        reports.append(IntegrationReport(
            integration_id=integration.id,
            project=integration.project,
            badge=badge,
            missing=tuple(missing),
            active=integration.active,
            last_success_at=max(successes, default=None),
            last_error=last_error.last_error if last_error else None,
            last_error_at=last_error.last_error_at if last_error else None,
            live=int(mine["live"].sum()),
            deleted=int(mine["deleted"].sum()),
            objects=tuple(_object_status(object_type, own, mine) for object_type in integration.object_types),
        ))
    return reports


def _object_status(object_type: str, states: list[IntegrationState], counts: pd.DataFrame) -> ObjectStatus:
    state = next((s for s in states if s.object_type == object_type), None)
    rows = counts[counts["object_type"] == object_type]
    return ObjectStatus(
        object_type=object_type,
        status=state.status.value if state else None,
        last_success_at=state.last_success_at if state else None,
        last_error=state.last_error if state else None,
        last_error_at=state.last_error_at if state else None,
        live=int(rows["live"].sum()),
        deleted=int(rows["deleted"].sum()),
    )


def run_status(config: SyncConfig, *, as_json: bool) -> int:
    store = open_store()
    try:
        reports = integration_reports(config, store)
    finally:
        store.close()
    print(json.dumps([_as_json(report) for report in reports], indent=2) if as_json else format_status(reports))
    return 0


def format_status(reports: list[IntegrationReport]) -> str:
    """An aligned table, then a line per integration that cannot sync saying why."""
    if not reports:
        return "no integrations configured"
    headers = ("INTEGRATION", "PROJECT", "STATUS", "LAST SUCCESS (UTC)", "LIVE", "DELETED", "LAST ERROR")
    rows = [(r.integration_id, r.project, r.badge, iso_utc(r.last_success_at) if r.last_success_at else NEVER,
             str(r.live), str(r.deleted), _error_cell(r)) for r in reports]
    notes = []
    for report in reports:
        if report.badge == "Incomplete":
            notes.append(f"{report.integration_id}: Incomplete, missing: {'; '.join(report.missing)}")
        elif report.badge == "Inactive":
            notes.append(f"{report.integration_id}: Inactive (active: false in the config)")
    return render_table(headers, rows) + ("\n\n" + "\n".join(notes) if notes else "")


def _error_cell(report: IntegrationReport) -> str:
    if report.last_error_at is None:
        return shorten(report.last_error)
    return f"{iso_utc(report.last_error_at)} {shorten(report.last_error)}"


def _as_json(report: IntegrationReport) -> dict[str, Any]:
    return {
        "integration": report.integration_id,
        "project": report.project,
        "status": report.badge,
        "missing": list(report.missing),
        "active": report.active,
        "last_success_at": _iso_or_none(report.last_success_at),
        "last_error": report.last_error,
        "last_error_at": _iso_or_none(report.last_error_at),
        "records": {"live": report.live, "deleted": report.deleted},
        "objects": [{
            "object": o.object_type,
            "status": o.status,
            "last_success_at": _iso_or_none(o.last_success_at),
            "last_error": o.last_error,
            "last_error_at": _iso_or_none(o.last_error_at),
            "records": {"live": o.live, "deleted": o.deleted},
        } for o in report.objects],
    }


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)
