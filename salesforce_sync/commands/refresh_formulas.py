"""`salesforce-sync refresh-formulas`: re-reads the mapped formula fields and relationship paths now and prints
what changed per object."""

from __future__ import annotations

from salesforce_sync.commands.common import open_store, render_table, runnable_integrations
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.formula_refresh import refresh_formulas
from salesforce_sync.runs.lease import cli_holder


def run_refresh_formulas(config: SyncConfig, integration_id: str | None) -> int:
    """Every integration (or the one named) that syncs: Incomplete and Inactive ones are named and passed over."""
    store = open_store()
    try:
        for integration in runnable_integrations(config, [integration_id] if integration_id else [], "not refreshed"):
            with connect(integration) as client:
                results = refresh_formulas(store, client, integration, cli_holder(), say=lambda _line: None)
            print(f"integration {integration.id} (project {integration.project}): formula fields and relationship "
                  "paths re-read")
            print(render_table(("OBJECT", "READ", "CHANGED", "API CALLS", "API", "FIELDS"), [
                (r.object_type, "-", "-", "-", "-", f"skipped: {r.skipped}") if r.skipped else
                (r.object_type, f"{r.rows_read:,}", f"{r.rows_changed:,}", str(r.api_calls),
                 "Bulk" if r.bulk else "REST", ", ".join(r.fields) or "none mapped")
                for r in results]))
    finally:
        store.close()
    return 0
