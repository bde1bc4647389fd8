"""Health checks as asset checks (credentials, API limits, field mappings, staleness, clock skew, schema
drift, formula freshness), which run after every sync and on their own in a checks-only job, each writing a `health_check` entry
to the sync log and telling the owners when a check starts failing (ERROR severity) and when it recovers; and
the preview-count job."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import dagster as dg
import requests

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.config.status import missing_settings
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, asset_key
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.runs.health import (
    CheckOutcome,
    check_api_limits,
    check_change_capture,
    check_clock_skew,
    check_credentials,
    check_field_mappings,
    check_schema_drift,
    check_staleness,
    mapping_check_within_budget,
    with_auto_mappings,
)
from salesforce_sync.runs.alerts import announce, health_subject
from salesforce_sync.runs.formula_refresh import check_formula_freshness, last_formula_refresh
from salesforce_sync.runs.preview import preview_counts
from salesforce_sync.sync.describe import Describes
from salesforce_sync.salesforce.auth import SalesforceAuthError
from salesforce_sync.salesforce.client import SalesforceRequestError
from salesforce_sync.salesforce.org_clock import org_clock
from salesforce_sync.store import AudienceStore, SyncEvent

NOT_CHECKED = "not_checked"
CHECKS = {
    "credentials": "A token can be obtained and the identity call answers (org ID and user reported).",
    "api_limits": "DailyApiRequests remaining above 10% (warns at 25%); reports used and max.",
    "field_mappings": "Every mapped field exists, is readable and fits its property; the opt-out is boolean.",
    "staleness": "The last successful sync is within twice the integration's frequency.",
    "clock_skew": "The org's clock (its responses' Date header) is within half the overlap of this host's; warns "
                  "beyond.",
    "schema_drift": "Fields the org added since the mappings were written, custom fields first (warns); with "
                    "auto_map_new_fields the new custom fields are mapped and the object re-read.",
    "formula_freshness": "The mapped formula fields and relationship paths were last re-read within twice "
                         "formula_refresh_minutes (not defined when the refresh is off).",
}
CHANGE_CAPTURE_CHECK = ("change_capture", "The change-event subscription was heard from, and no event waited to be "
                        "applied, within the lag threshold (only with change_capture enabled).")


def build_integration_checks(integration: IntegrationConfig) -> dg.AssetChecksDefinition:
    """One multi-check per integration, so credentials and limits are read once for all its objects."""
    checks = {name: text for name, text in CHECKS.items()
              if name != "formula_freshness" or integration.formula_refresh_every is not None}
    if integration.change_capture.enabled:
        checks.update([CHANGE_CAPTURE_CHECK])
    specs = [dg.AssetCheckSpec(name, asset=asset_key(integration.id, object_type), description=text)
             for object_type in integration.object_types for name, text in checks.items()]

    @dg.multi_asset_check(specs=specs, name=f"health_checks_{integration.id}", can_subset=True)
    def integration_health(context: dg.AssetCheckExecutionContext, salesforce: SalesforceResource,
                           audience_store: AudienceStoreResource) -> Iterator[dg.AssetCheckResult]:
        selected = context.selected_asset_check_keys
        store = audience_store.open()
        run_id = context.op_execution_context.run_id
        by_check: dict[str, list[CheckOutcome]] = {}
        try:
            for object_type, outcome in _outcomes(integration, salesforce, store, {k.name for k in selected}):
                key = dg.AssetCheckKey(asset_key(integration.id, object_type), outcome.check)
                if key not in selected:
                    continue
                by_check.setdefault(outcome.check, []).append(outcome)
                store.log_event(integration.project, integration.id, SyncEvent.HEALTH_CHECK, object_type=object_type,
                                run_id=context.op_execution_context.run_id, message=outcome.message,
                                details={"check": outcome.check, "passed": outcome.passed, "warn": outcome.warn,
                                         **outcome.metadata})
                yield dg.AssetCheckResult(
                    asset_key=key.asset_key, check_name=outcome.check, passed=outcome.passed and not outcome.warn,
                    severity=dg.AssetCheckSeverity.WARN if outcome.warn else dg.AssetCheckSeverity.ERROR,
                    description=outcome.message, metadata={"message": outcome.message, **_numeric(outcome.metadata)})
            for check, outcomes in by_check.items():
                _announce_check(store, integration, check, outcomes, run_id)
        finally:
            store.close()

    return integration_health


def _announce_check(store: AudienceStore, integration: IntegrationConfig, check: str, outcomes: list[CheckOutcome],
                    run_id: str) -> None:
    """One state per check of the integration: failing when any object's check failed with ERROR severity,
    recovered when every object's passed; warnings and checks not run (no connection: the credentials check
    says why) change nothing."""
    failing = [o.message for o in outcomes if not o.passed and not o.warn and not o.metadata.get(NOT_CHECKED)]
    if failing:
        announce(store, integration, "failing", message="\n".join(dict.fromkeys(failing)), run_id=run_id,
                 subject=health_subject(check))
    elif all(o.passed for o in outcomes):
        announce(store, integration, "recovered", message=f"the {check} check passes again", run_id=run_id,
                 subject=health_subject(check))


def _outcomes(integration: IntegrationConfig, salesforce: SalesforceResource, store,
              wanted: set[str]) -> Iterator[tuple[str, CheckOutcome]]:
    missing = missing_settings(integration)
    if missing:
        for object_type in integration.object_types:
            for name in wanted:
                yield object_type, _unconnected(name, f"integration {integration.id!r} is Incomplete: "
                                                      + "; ".join(missing))
        return
    try:
        client = salesforce.client(integration)
    except ConfigError as err:  # an unset secret: nothing can connect, so every check fails with why
        for object_type in integration.object_types:
            for name in wanted:
                yield object_type, _unconnected(name, f"{err} (set it and reconnect the integration)")
        return
    org_clock(client)  # from the first response on, the org's time is compared with the host's
    credentials: CheckOutcome | None = None
    limits: CheckOutcome | None = None
    skew: CheckOutcome | None = None
    if "credentials" in wanted:
        credentials = _guarded(integration, "credentials", lambda: check_credentials(client))
    connected = credentials is None or credentials.passed
    if connected and "api_limits" in wanted:
        limits = _guarded(integration, "api_limits", lambda: check_api_limits(client, integration.api_budget_percent))
    if connected and "clock_skew" in wanted:
        skew = _guarded(integration, "clock_skew", lambda: check_clock_skew(client, integration))
    now = datetime.now(UTC)
    for object_type in integration.object_types:
        if credentials is not None:
            yield object_type, credentials
        if "api_limits" in wanted:
            yield object_type, limits or _skipped("api_limits", credentials)
        effective = with_auto_mappings(store, integration, object_type)
        described: dict[str, Describes] = {}  # the mappings check's describes, so schema_drift needs no call

        def mappings_check() -> CheckOutcome:
            outcome, described[object_type] = check_field_mappings(client, effective, object_type)
            return outcome

        if "field_mappings" in wanted:
            if connected:
                yield object_type, _guarded(integration, "field_mappings", lambda: (
                    mapping_check_within_budget(client, effective, object_type) or mappings_check()))
            else:
                yield object_type, _skipped("field_mappings", credentials)
        if "schema_drift" in wanted:
            if connected:
                describe = described.get(object_type, {}).get(object_type)
                yield object_type, _guarded(integration, "schema_drift", lambda: check_schema_drift(
                    client, store, integration, object_type, describe))
            else:
                yield object_type, _skipped("schema_drift", credentials)
        if "clock_skew" in wanted:
            yield object_type, skew or _skipped("clock_skew", credentials)
        if "staleness" in wanted:
            state = store.get_state(integration.id, object_type)
            yield object_type, check_staleness(integration, state.last_success_at if state else None, now)
        if "formula_freshness" in wanted:
            last = last_formula_refresh(store.object_settings(integration.id, object_type))
            yield object_type, check_formula_freshness(integration, object_type, last, now)
        if "change_capture" in wanted:
            yield object_type, check_change_capture(integration, store.change_capture_state(integration.id), now)


def _guarded(integration: IntegrationConfig, check: str, run: Callable[[], CheckOutcome]) -> CheckOutcome:
    """The check's outcome, or a failed one carrying the error when Salesforce refuses or cannot be
    reached, so one failing call shows as a failed check instead of crashing the others."""
    try:
        return run()
    except (SalesforceAuthError, SalesforceRequestError) as err:
        return CheckOutcome(check, False, str(err))
    except requests.RequestException as err:
        return CheckOutcome(check, False, f"integration {integration.id!r}: cannot reach Salesforce: {err}")


def _unconnected(check: str, why: str) -> CheckOutcome:
    """A failed check when nothing can connect; only the credentials check alerts about it."""
    return CheckOutcome(check, False, why, metadata={} if check == "credentials" else {NOT_CHECKED: True})


def _skipped(check: str, credentials: CheckOutcome | None) -> CheckOutcome:
    reason = credentials.message if credentials else "credentials failed"
    return CheckOutcome(check, False, f"not checked: no connection to the org ({reason})", metadata={NOT_CHECKED: True})


def _numeric(metadata: dict) -> dict:
    """Check metadata the UI can show: numbers and short strings."""
    return {k: v for k, v in metadata.items() if isinstance(v, (int, float, str))}


def build_preview_job(integration: IntegrationConfig) -> dg.JobDefinition:
    """`preview_<integration>`: the preview count of every object (SELECT COUNT() with the compiled rules),
    reported as run metadata with the SOQL, without syncing."""

    @dg.op(name=f"preview_counts_{integration.id}", tags={INTEGRATION_TAG: integration.id})
    def preview_op(context: dg.OpExecutionContext, salesforce: SalesforceResource) -> dict:
        counts = preview_counts(salesforce.client(integration), integration, integration.object_types)
        for result in counts:
            context.log.info(f"{integration.id} {result.object_type}: {result.count} records  <- {result.soql}")
        context.add_output_metadata({f"{r.object_type}_count": r.count for r in counts}
                                    | {f"{r.object_type}_soql": r.soql for r in counts})
        return {r.object_type: r.count for r in counts}

    @dg.job(name=f"preview_{integration.id}", tags={INTEGRATION_TAG: integration.id},
            description=f"Preview counts of integration {integration.id!r}: records its sync rules select now.")
    def preview_job() -> None:
        preview_op()

    return preview_job
