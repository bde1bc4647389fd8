"""The IO manager: upserts a window's stream of chunks into the audience store."""

import dagster as dg

from salesforce_sync.dagster_defs.resources import AudienceStoreResource
from salesforce_sync.runs.window import WindowResult, WindowSync, apply_window, record_window_failure
from salesforce_sync.store import AudienceStore, IntegrationStatus, UpsertCounts


class AudienceStoreIOManager(dg.ConfigurableIOManager):
    """Consumes the lazy chunks an asset returns, one transaction per chunk, so memory stays bounded
    and a killed run leaves only whole, idempotent chunks behind. Reports counts as numeric metadata, per window."""

    store: dg.ResourceDependency[AudienceStoreResource]

    def handle_output(self, context: dg.OutputContext, obj: WindowSync) -> None:
        store = self.store.open()
        run_id = context.run_id
        keys = context.asset_partition_keys
        partitions = context.asset_partitions_def
        starts = [partitions.time_window_for_partition_key(key).start for key in keys]
        try:
            try:
                result = apply_window(store, obj, run_id=run_id, window_starts=starts, say=context.log.info)
            except Exception as err:
                record_window_failure(store, obj.integration, obj.object_type, obj.window, run_id=run_id,
                                      error=str(err))
                raise
            live = object_counts(store, obj.integration.id, obj.object_type).get("live", 0)
        finally:
            store.close()
            if obj.lease is not None:
                obj.lease.release()
        for warning in obj.warnings[:20]:
            context.log.warning(str(warning))
        if obj.replaced_nul:
            context.log.warning(f"{obj.replaced_nul} values held NUL characters, stored with U+FFFD in their place")
        report_windows(context, keys, result, {**run_metadata(obj, result), "dagster/row_count": live})

    def load_input(self, context: dg.InputContext) -> dict:
        """Downstream steps and checks get the object's stored record counts, not the records."""
        key = context.asset_key.path
        store = self.store.open()
        try:
            return object_counts(store, key[1], key[2])
        finally:
            store.close()


def report_windows(context: dg.OutputContext, keys: list[str], result: WindowResult, run: dict) -> None:
    """One materialization per window with that window's own counts; what exists only for the whole run
    (API calls, duration, the query, the store's row count) once, on the last window.

    Every window's materialization starts from zero counts; only windows with records get their own
    (partition-scoped) metadata, so a long quiet range costs Dagster little."""
    assert result.by_window is not None
    context.add_output_metadata(_counts_metadata(UpsertCounts()))
    step = context.step_context
    last = len(keys) - 1
    for index, key in enumerate(keys):
        counts = result.by_window.window(index)
        if index == last:
            step.add_asset_metadata({**_counts_metadata(counts), **run}, partition_key=key)
        elif counts != UpsertCounts():
            step.add_asset_metadata(_counts_metadata(counts), partition_key=key)


def _counts_metadata(counts: UpsertCounts) -> dict[str, int]:
    return {"records_imported": counts.imported, "records_updated": counts.updated,
            "records_deleted": counts.deleted, "records_skipped": counts.skipped}


def run_metadata(obj: WindowSync, result: WindowResult) -> dict:
    """What the run did as a whole: its totals (`run_records_*`) and what has no per-window value."""
    return {
        "status": IntegrationStatus.ACTIVE.value,
        **{f"run_{name}": value for name, value in _counts_metadata(result.counts).items()},
        "records_out_of_scope": result.out_of_scope,
        "records_expected": obj.expected,
        "api_calls": result.api_calls,
        **_usage_metadata(result.api_usage_before, result.api_usage_after),
        "duration_seconds": round(result.duration_seconds, 3),
        "warnings": result.warnings,
        "nul_replaced": obj.replaced_nul,
        "clock_skew_seconds": round(obj.clock_skew.total_seconds(), 1) if obj.clock_skew is not None else 0.0,
        "read_until": dg.MetadataValue.timestamp(obj.window.watermark),
        "range_start": dg.MetadataValue.timestamp(obj.window.start),
        "range_end": dg.MetadataValue.timestamp(obj.window.end),
        "full_resync": obj.window.full,
        "reread_reason": obj.window.reread or "",
        "api": "bulk_2.0" if obj.use_bulk else "rest",
        "soql": dg.MetadataValue.md(f"```sql\n{obj.soql}\n```"),
    }


def object_counts(store: AudienceStore, integration_id: str, object_type: str) -> dict:
    """The store's row counts (users, live, deleted) of one object of one integration; {} before any."""
    counts = store.user_counts()
    rows = counts[(counts["integration_id"] == integration_id) & (counts["object_type"] == object_type)]
    return rows.to_dict("records")[0] if len(rows) else {}


def _usage_metadata(before: tuple[int, int] | None, after: tuple[int, int] | None) -> dict[str, int]:
    """The org's DailyApiRequests used before and after the sync, and its max (from Sforce-Limit-Info)."""
    out = {}
    if before:
        out["api_usage_before"] = before[0]
    if after:
        out["api_usage_after"], out["api_max"] = after
    return out
