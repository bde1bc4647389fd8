"""The IO manager: upserts a window's stream of chunks into the audience store."""

import dagster as dg

from salesforce_sync.dagster_defs.resources import AudienceStoreResource
from salesforce_sync.runs.window import WindowSync, apply_window
from salesforce_sync.store import IntegrationStatus, SyncEvent


class AudienceStoreIOManager(dg.ConfigurableIOManager):
    """Consumes the lazy chunks an asset returns, one transaction per chunk, so memory stays bounded
    and a killed run leaves only whole, idempotent chunks behind. Reports counts as numeric metadata."""

    store: dg.ResourceDependency[AudienceStoreResource]

    def handle_output(self, context: dg.OutputContext, obj: WindowSync) -> None:
        store = self.store.open()
        run_id = context.run_id
        try:
            result = apply_window(store, obj, run_id=run_id)
        except Exception as err:
            integration = obj.integration
            store.log_event(integration.project, integration.id, SyncEvent.SYNC_FAILED, object_type=obj.object_type,
                            window_start=obj.window.start, window_end=obj.window.end, run_id=run_id, message=str(err))
            store.record_failure(integration.id, obj.object_type, error=str(err))
            raise
        finally:
            store.close()
            if obj.lease is not None:
                obj.lease.release()
        for warning in obj.warnings[:20]:
            context.log.warning(str(warning))
        if obj.replaced_nul:
            context.log.warning(f"{obj.replaced_nul} values held NUL characters, stored with U+FFFD in their place")
        context.add_output_metadata({
            "status": IntegrationStatus.ACTIVE.value,
            "records_imported": result.counts.imported,
            "records_updated": result.counts.updated,
            "records_deleted": result.counts.deleted,
            "records_skipped": result.counts.skipped,
            "records_out_of_scope": result.out_of_scope,
            "records_expected": obj.expected,
            "api_calls": result.api_calls,
            **_usage_metadata(result.api_usage_before, result.api_usage_after),
            "duration_seconds": round(result.duration_seconds, 3),
            "warnings": result.warnings,
            "nul_replaced": obj.replaced_nul,
            "clock_skew_seconds": round(obj.clock_skew.total_seconds(), 1) if obj.clock_skew is not None else 0.0,
            "read_until": dg.MetadataValue.timestamp(obj.window.watermark),
            "window_start": dg.MetadataValue.timestamp(obj.window.start),
            "window_end": dg.MetadataValue.timestamp(obj.window.end),
            "full_resync": obj.window.full,
            "reread_reason": obj.window.reread or "",
            "api": "bulk_2.0" if obj.use_bulk else "rest",
            "soql": dg.MetadataValue.md(f"```sql\n{obj.soql}\n```"),
        })

    def load_input(self, context: dg.InputContext) -> dict:
        """Downstream steps and checks get the object's stored record counts, not the records."""
        key = context.asset_key.path
        store = self.store.open()
        try:
            counts = store.user_counts()
        finally:
            store.close()
        rows = counts[(counts["integration_id"] == key[1]) & (counts["object_type"] == key[2])]
        return rows.to_dict("records")[0] if len(rows) else {}


def _usage_metadata(before: tuple[int, int] | None, after: tuple[int, int] | None) -> dict[str, int]:
    """The org's DailyApiRequests used before and after the sync, and its max (from Sforce-Limit-Info)."""
    out = {}
    if before:
        out["api_usage_before"] = before[0]
    if after:
        out["api_usage_after"], out["api_max"] = after
    return out
