"""`salesforce-sync logs`: the sync log, newest first, optionally of one integration, one event type, since a date."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from salesforce_sync.commands.common import NOTHING, find_integration, iso_utc, open_store, render_table
from salesforce_sync.config.loader import load_config
from salesforce_sync.store import SyncLogEntry


def run_logs(integration_id: str | None, *, event: str | None, since: datetime | None, limit: int,
             as_json: bool) -> int:
    store = open_store()
    try:
        entries = store.sync_log(integration_id, event, since, limit)
    finally:
        store.close()
    if not entries and integration_id is not None:
        # An empty answer for a mistyped id would look like "nothing happened": name the id instead.
        find_integration(load_config(), integration_id)
    if as_json:
        print(json.dumps([_as_json(entry) for entry in entries], indent=2))
    elif not entries:
        print("no sync log entries match")
    else:
        print(format_log(entries))
    return 0


def format_log(entries: list[SyncLogEntry]) -> str:
    """An aligned table; the message comes last and whole, with line breaks written as \\n and \\r."""
    headers = ("AT (UTC)", "INTEGRATION", "OBJECT", "EVENT", "COUNT", "SECONDS", "WINDOW (UTC)", "RUN", "MESSAGE")
    rows = [(
        iso_utc(entry.at),
        entry.integration_id,
        entry.object_type or NOTHING,
        entry.event.value,
        NOTHING if entry.count is None else str(entry.count),
        NOTHING if entry.duration_seconds is None else f"{entry.duration_seconds:.1f}",
        _window(entry),
        entry.run_id[:8] if entry.run_id else NOTHING,
        entry.message.replace("\r", "\\r").replace("\n", "\\n") if entry.message else NOTHING,
    ) for entry in entries]
    return render_table(headers, rows)


def _window(entry: SyncLogEntry) -> str:
    if entry.window_start is None and entry.window_end is None:
        return NOTHING
    return f"{iso_utc(entry.window_start)}..{iso_utc(entry.window_end)}"


def _as_json(entry: SyncLogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": iso_utc(entry.at),
        "project": entry.project,
        "integration": entry.integration_id,
        "object": entry.object_type,
        "event": entry.event.value,
        "count": entry.count,
        "duration_seconds": entry.duration_seconds,
        "window_start": None if entry.window_start is None else iso_utc(entry.window_start),
        "window_end": None if entry.window_end is None else iso_utc(entry.window_end),
        "run_id": entry.run_id,
        "message": entry.message,
        "details": entry.details,
    }

