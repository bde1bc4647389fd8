"""Health checks of an integration, in plain Python: credentials, API limits, field mappings, staleness, clock
skew, schema drift.

The asset checks report them; a sync runs the limits and mappings checks before it fetches anything and
stops with the same message when one fails, so a broken mapping or an exhausted quota never moves the
watermark. A sync over the integration's API budget is deferred (SyncDeferred), not failed; the checks keep
to the same budget (a check that would pass it is skipped with a warning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from collections.abc import Mapping
from typing import Any

from salesforce_sync.config.models import FieldMapping, IntegrationConfig
from salesforce_sync.salesforce.auth import SalesforceAuthError
from salesforce_sync.salesforce.client import SalesforceClient, SalesforceRequestError
from salesforce_sync.sync.budget import ApiBudget, describe_calls
from salesforce_sync.salesforce.org_clock import org_clock, skew_limit, skew_problem
from salesforce_sync.sync.describe import Describes, field_infos, objects_to_describe, validate_mappings
from salesforce_sync.store import AudienceStore, ChangeCaptureState
from salesforce_sync.sync.schema_drift import auto_mappings, field_names, new_fields
from salesforce_sync.sync.soql import select_fields

DEFAULT_BUDGET_PERCENT: int = IntegrationConfig.model_fields["api_budget_percent"].default
WARN_REMAINING_SHARE = 0.25
LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"
#: A related object the org does not have (a polymorphic target, say) is an empty describe, not an error.
NOT_DESCRIBABLE = frozenset({"NOT_FOUND", "INVALID_TYPE"})


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one health check: passed or not, a sentence for people, numbers for the UI. `warn` shows it
    as a warning: a pass close to a limit, or a check not run to stay within the API budget."""

    check: str
    passed: bool
    message: str
    warn: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class SyncBlocked(Exception):
    """A preflight check failed: the sync stops before fetching anything."""


class SyncDeferred(Exception):
    """The sync would pass the integration's API budget: it stops before fetching, without failing, and the
    watermark stays where it was so a later run syncs the same windows."""


def api_budget(client: SalesforceClient, integration: IntegrationConfig) -> ApiBudget:
    """The integration's budget against the org's usage: the last Sforce-Limit-Info the client saw, else a
    `/limits` call (one API call)."""
    if client.api_usage is None:
        daily = client.limits()["DailyApiRequests"]
        client.api_usage = (int(daily["Max"]) - int(daily["Remaining"]), int(daily["Max"]))
    used, maximum = client.api_usage
    return ApiBudget(used, maximum, integration.api_budget_percent)


def require_budget(client: SalesforceClient, integration: IntegrationConfig, calls: int, what: str) -> None:
    """Raise SyncDeferred when `calls` more API calls for `what` would pass the integration's budget."""
    budget = api_budget(client, integration)
    if not budget.allows(calls):
        raise SyncDeferred(f"integration {integration.id!r}: {what} deferred: {budget.describe(calls, 'it')}")


def check_credentials(client: SalesforceClient) -> CheckOutcome:
    """A token can be obtained and the identity call answers."""
    try:
        client.authenticate()
        identity = client.identity()
    except SalesforceAuthError as err:
        return CheckOutcome("credentials", False, str(err), metadata={"error": err.error})
    except SalesforceRequestError as err:
        return CheckOutcome("credentials", False,
                            f"{err} (the user may lack API access or the token was revoked; reconnect the integration)")
    return CheckOutcome(
        "credentials", True,
        f"integration {client.integration!r}: connected to org {identity['organization_id']} as {identity['username']}",
        metadata={"org_id": identity["organization_id"], "username": identity["username"]})


def check_api_limits(client: SalesforceClient, budget_percent: int = DEFAULT_BUDGET_PERCENT) -> CheckOutcome:
    """DailyApiRequests: fails when the usage reaches the budget (by default 90% used, 10% remaining), warns at
    25% remaining. When the client already saw the usage at the budget (Sforce-Limit-Info), it makes no call.

    Once the quota is used up Salesforce refuses every call, `/limits` included (403
    REQUEST_LIMIT_EXCEEDED): the usage then comes from that refusal's Sforce-Limit-Info header.
    """
    if client.api_usage is not None and ApiBudget(*client.api_usage, budget_percent).room == 0:
        used, maximum = client.api_usage
        if used >= maximum:
            return _quota_refused(client, LIMIT_EXCEEDED)
        return _limits_outcome(client, used, maximum, budget_percent)
    try:
        daily = client.limits()["DailyApiRequests"]
    except SalesforceRequestError as err:
        if LIMIT_EXCEEDED not in str(err):
            raise
        return _quota_refused(client, err)
    maximum = int(daily["Max"])
    return _limits_outcome(client, maximum - int(daily["Remaining"]), maximum, budget_percent)


def _limits_outcome(client: SalesforceClient, used: int, maximum: int, budget_percent: int) -> CheckOutcome:
    remaining = maximum - used
    metadata = {"used": used, "max": maximum, "remaining": remaining}
    text = f"integration {client.integration!r}: {used} of {maximum} daily API requests used, {remaining} remaining"
    if not maximum or ApiBudget(used, maximum, budget_percent).room == 0:
        return CheckOutcome("api_limits", False, text + f" ({100 - budget_percent}% or less left: syncs wait until "
                                                        "the quota resets)", metadata=metadata)
    return CheckOutcome("api_limits", True, text, warn=remaining / maximum <= WARN_REMAINING_SHARE, metadata=metadata)


def _quota_refused(client: SalesforceClient, err: SalesforceRequestError | str) -> CheckOutcome:
    """The failed check for a call Salesforce refused over quota, with the usage it reported if any."""
    if client.api_usage is None:
        return CheckOutcome("api_limits", False, f"{err} (the daily API quota is used up: syncs wait until it resets)")
    used, maximum = client.api_usage
    remaining = max(0, maximum - used)
    return CheckOutcome(
        "api_limits", False,
        f"integration {client.integration!r}: {used} of {maximum} daily API requests used, {remaining} remaining "
        f"(Salesforce refuses calls with {LIMIT_EXCEEDED}: syncs wait until the quota resets)",
        metadata={"used": used, "max": maximum, "remaining": remaining})


def describe_for(client: SalesforceClient, object_type: str, paths: tuple[str, ...]) -> dict[str, Any]:
    """Describes of the object and every object its relationship paths lead through."""
    describes: dict[str, Any] = {object_type: client.describe(object_type)}
    while needed := objects_to_describe(object_type, paths, describes):
        for name in needed:
            try:
                describes[name] = client.describe(name)
            except SalesforceRequestError as err:
                # Only an object the org lacks is empty; an outage (retried already) is not "no such field".
                if err.error_code not in NOT_DESCRIBABLE:
                    raise
                describes[name] = {}
    return describes


def check_field_mappings(client: SalesforceClient, integration: IntegrationConfig,
                         object_type: str) -> tuple[CheckOutcome, Describes]:
    """Every mapped field exists, is readable and fits its property; the opt-out is boolean; every
    sync-rule field exists."""
    mappings = integration.mappings(object_type)
    paths = select_fields(object_type, mappings, integration.cursor_field)
    rule_paths = integration.rule_fields(object_type)
    describes = describe_for(client, object_type, paths + rule_paths)
    mapping_problems = validate_mappings(object_type, mappings, describes)
    problems = [str(p) for p in mapping_problems]
    suggestions = {p.field: p.suggestion for p in mapping_problems if p.suggestion}
    found = field_infos(object_type, rule_paths, describes)
    problems += [f"{object_type}.{path} (a sync rule field) does not exist in the org"
                 for path in rule_paths if path not in found]
    where = f"integration {integration.id!r}, object {object_type}"
    if problems:
        return CheckOutcome("field_mappings", False, f"{where}: " + "; ".join(problems),
                            metadata={"problems": len(problems), "suggestions": suggestions}), describes
    return CheckOutcome("field_mappings", True, f"{where}: {len(mappings)} mappings fit the org's fields",
                        metadata={"mappings": len(mappings)}), describes


def check_staleness(integration: IntegrationConfig, last_success_at: datetime | None, now: datetime) -> CheckOutcome:
    """The last successful sync is within twice the integration's frequency."""
    limit = timedelta(minutes=2 * integration.window_minutes)
    if last_success_at is None:
        return CheckOutcome("staleness", False, f"integration {integration.id!r} has never synced successfully",
                            metadata={"max_age_minutes": limit.total_seconds() / 60})
    age = now - last_success_at
    metadata = {"age_minutes": round(age.total_seconds() / 60, 1), "max_age_minutes": limit.total_seconds() / 60}
    if age > limit:
        return CheckOutcome("staleness", False,
                            f"integration {integration.id!r}: last successful sync {last_success_at.isoformat()} is "
                            f"{metadata['age_minutes']} minutes old, more than twice its frequency", metadata=metadata)
    return CheckOutcome("staleness", True, f"integration {integration.id!r}: last successful sync "
                                           f"{metadata['age_minutes']} minutes ago", metadata=metadata)


def with_auto_mappings(store: AudienceStore, integration: IntegrationConfig, object_type: str) -> IntegrationConfig:
    """The integration as it syncs `object_type`: its configured mappings plus those schema_drift added for new
    custom fields (kept in the store), which the settings fingerprint then covers."""
    settings = store.object_settings(integration.id, object_type)
    if settings is None or not settings.auto_mappings:
        return integration
    return integration.with_extra_mappings(object_type, tuple(FieldMapping.model_validate(mapping)
                                                              for mapping in settings.auto_mappings))


def check_schema_drift(client: SalesforceClient, store: AudienceStore, integration: IntegrationConfig,
                       object_type: str, describe: Mapping[str, Any] | None = None) -> CheckOutcome:
    """Fields the org added since the object's mappings were written (its field names when the settings
    fingerprint was last recorded), custom fields first: a warning listing them, else a pass. With
    `auto_map_new_fields` the new custom fields get mappings by describe type, kept in the store; the next
    sync's fingerprint then differs and it re-reads the object. Without a baseline yet (a store from before
    this check) the current fields become it. `describe` is the object's describe when already read (by the
    field_mappings check); else it costs one API call, if the budget allows."""
    where = f"integration {integration.id!r}, object {object_type}"
    if describe is None:
        budget = api_budget(client, integration)
        if not budget.allows(1):
            return CheckOutcome("schema_drift", False, f"{where}: not checked to stay within the API budget: "
                                                       f"{budget.describe(1, 'the check')}", warn=True)
        describe = client.describe(object_type)
    settings = store.object_settings(integration.id, object_type)
    if settings is None or settings.known_fields is None:
        store.record_object_settings(integration.id, object_type, known_fields=field_names(describe))
        return CheckOutcome("schema_drift", True, f"{where}: no record of the org's fields yet; recorded its "
                                                  f"{len(field_names(describe))} fields as the baseline")
    effective = with_auto_mappings(store, integration, object_type)
    mappings = effective.mappings(object_type)
    added = new_fields(describe, settings.known_fields, mappings)
    if not added:
        return CheckOutcome("schema_drift", True, f"{where}: no fields added since the mappings were written",
                            metadata={"fields": len(settings.known_fields)})
    listed = ", ".join(f"{new.name} ({new.type})" for new in added)
    message = f"{where}: {len(added)} field(s) added since the mappings were written: {listed}"
    mapped: tuple[FieldMapping, ...] = ()
    if integration.auto_map_new_fields:
        mapped = auto_mappings(added, mappings)
    if mapped:
        stored = settings.auto_mappings + tuple(m.model_dump(mode="json", by_alias=True) for m in mapped)
        store.record_object_settings(integration.id, object_type, auto_mappings=stored)
        message += ("; mapped automatically: " + ", ".join(f"{m.fields[0]} -> {m.property} ({m.type})" for m in mapped)
                    + f"; the next sync re-reads every {object_type}")
    return CheckOutcome("schema_drift", False, message, warn=True, metadata={
        "new_fields": len(added), "new_custom_fields": sum(new.custom for new in added),
        "field_names": ", ".join(new.name for new in added), "auto_mapped": len(mapped)})


def mapping_check_calls(integration: IntegrationConfig, object_type: str) -> int:
    """Describe calls the field_mappings check of one object makes."""
    paths = select_fields(object_type, integration.mappings(object_type), integration.cursor_field)
    return describe_calls(paths + integration.rule_fields(object_type))


def mapping_check_within_budget(client: SalesforceClient, integration: IntegrationConfig,
                                object_type: str) -> CheckOutcome | None:
    """A field_mappings check not run (not passed, a warning) when its describes would pass the API budget,
    else None."""
    calls = mapping_check_calls(integration, object_type)
    budget = api_budget(client, integration)
    if budget.allows(calls):
        return None
    return CheckOutcome("field_mappings", False, f"integration {integration.id!r}, object {object_type}: not checked "
                        f"to stay within the API budget: {budget.describe(calls, 'the check')}", warn=True,
                        metadata={"used": budget.used, "max": budget.maximum, "calls_needed": calls})


def check_clock_skew(client: SalesforceClient, integration: IntegrationConfig) -> CheckOutcome:
    """The org's clock (from its responses' Date header) is within half the overlap of this host's."""
    clock = org_clock(client)
    if clock.skew is None:
        client.identity()  # any answer carries the org's time; identity costs no API request
    if clock.skew is None:
        return CheckOutcome("clock_skew", False, f"integration {integration.id!r}: the org's responses carry no "
                                                 f"Date header, so its clock cannot be compared with this host's")
    seconds = round(clock.skew.total_seconds(), 1)
    metadata = {"skew_seconds": seconds, "max_skew_seconds": skew_limit(integration.overlap).total_seconds()}
    problem = skew_problem(integration.id, clock.skew, integration.overlap)
    if problem:
        return CheckOutcome("clock_skew", True, problem, warn=True, metadata=metadata)
    return CheckOutcome("clock_skew", True,
                        f"integration {integration.id!r}: the org's clock is within {abs(seconds)} s of this host's",
                        metadata=metadata)


def preflight(client: SalesforceClient, integration: IntegrationConfig, object_type: str) -> Describes:
    """Run the checks a sync needs to pass before it fetches anything; returns the describes it read.
    A quota at or past the integration's budget defers the sync (SyncDeferred) instead of failing it."""
    limits = check_api_limits(client, integration.api_budget_percent)
    if not limits.passed:
        raise SyncDeferred(limits.message)
    require_budget(client, integration, mapping_check_calls(integration, object_type),
                   f"checking the {object_type} mappings")
    mappings, describes = check_field_mappings(client, integration, object_type)
    if not mappings.passed:
        raise SyncBlocked(mappings.message)
    return describes


def check_change_capture(integration: IntegrationConfig, state: ChangeCaptureState | None,
                         now: datetime) -> CheckOutcome:
    """The change-event subscription keeps up: heard from within the lag threshold, no event read but unapplied
    for longer, and the last micro-sync's largest lag (event commit -> stored) within it."""
    limit = integration.change_capture.lag_threshold_seconds
    where = f"integration {integration.id!r}: change capture"
    if state is None or state.heard_at is None:
        return CheckOutcome("change_capture", False, f"{where} has not subscribed yet (is its sensor running?)",
                            metadata={"lag_threshold_seconds": limit})
    silent = (now - state.heard_at).total_seconds()
    waiting = (now - state.pending_since).total_seconds() if state.pending_since else 0.0
    lag = state.last_lag_seconds or 0.0
    metadata = {"lag_threshold_seconds": limit, "last_lag_seconds": round(lag, 3), "silent_seconds": round(silent, 1),
                "waiting_seconds": round(waiting, 1), "events_applied": state.events_applied}
    if silent > limit:
        return CheckOutcome("change_capture", False, f"{where} stopped: the subscription was last heard from "
                                                     f"{silent:.0f} s ago (threshold {limit} s)", metadata=metadata)
    if waiting > limit:
        return CheckOutcome("change_capture", False, f"{where} is behind: events committed {waiting:.0f} s ago are "
                                                     f"not applied yet (threshold {limit} s)", metadata=metadata)
    if lag > limit:
        return CheckOutcome("change_capture", False, f"{where} is behind: the last micro-sync stored changes "
                                                     f"{lag:.0f} s after their commit (threshold {limit} s)",
                            metadata=metadata)
    return CheckOutcome("change_capture", True, f"{where} keeps up: last micro-sync lag {lag:.1f} s, heard from "
                                                f"{silent:.0f} s ago", metadata=metadata)
