"""Health checks of an integration, in plain Python: credentials, API limits, field mappings, staleness.

The asset checks report them; a sync runs the limits and mappings checks before it fetches anything and
stops with the same message when one fails, so a broken mapping or an exhausted quota never moves the
watermark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.salesforce.auth import SalesforceAuthError
from salesforce_sync.salesforce.client import SalesforceClient, SalesforceRequestError
from salesforce_sync.salesforce.org_clock import org_clock, skew_limit, skew_problem
from salesforce_sync.sync.describe import Describes, field_infos, objects_to_describe, validate_mappings
from salesforce_sync.sync.soql import select_fields

MIN_REMAINING_SHARE = 0.10
WARN_REMAINING_SHARE = 0.25
LIMIT_EXCEEDED = "REQUEST_LIMIT_EXCEEDED"


@dataclass(frozen=True)
class CheckOutcome:
    """The result of one health check: passed or not, a sentence for people, numbers for the UI."""

    check: str
    passed: bool
    message: str
    warn: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class SyncBlocked(Exception):
    """A preflight check failed: the sync stops before fetching anything."""


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


def check_api_limits(client: SalesforceClient) -> CheckOutcome:
    """DailyApiRequests: fails at 10% remaining or less, warns at 25%.

    Once the quota is used up Salesforce refuses every call, `/limits` included (403
    REQUEST_LIMIT_EXCEEDED): the usage then comes from that refusal's Sforce-Limit-Info header.
    """
    try:
        daily = client.limits()["DailyApiRequests"]
    except SalesforceRequestError as err:
        if LIMIT_EXCEEDED not in str(err):
            raise
        return _quota_refused(client, err)
    maximum, remaining = int(daily["Max"]), int(daily["Remaining"])
    used = maximum - remaining
    share = remaining / maximum if maximum else 0.0
    metadata = {"used": used, "max": maximum, "remaining": remaining}
    text = f"integration {client.integration!r}: {used} of {maximum} daily API requests used, {remaining} remaining"
    if share <= MIN_REMAINING_SHARE:
        return CheckOutcome("api_limits", False, text + " (10% or less left: syncs wait until the quota resets)",
                            metadata=metadata)
    return CheckOutcome("api_limits", True, text, warn=share <= WARN_REMAINING_SHARE, metadata=metadata)


def _quota_refused(client: SalesforceClient, err: SalesforceRequestError) -> CheckOutcome:
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
            except SalesforceRequestError:
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
    """Run the checks a sync needs to pass before it fetches anything; returns the describes it read."""
    limits = check_api_limits(client)
    if not limits.passed:
        raise SyncBlocked(limits.message)
    mappings, describes = check_field_mappings(client, integration, object_type)
    if not mappings.passed:
        raise SyncBlocked(mappings.message)
    return describes
