"""The API budget governor against an emulated org whose DailyApiRequests are staged near the budget, on SQLite
and PostgreSQL: a window whose COUNT() says it would pass the budget is deferred before fetching (nothing read,
the watermark untouched) and syncs exactly once the quota allows; a preview near the budget is not run."""

from __future__ import annotations

from datetime import datetime

import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.runs.connection import connect
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import SyncDeferred, preflight
from salesforce_sync.runs.window import SyncWindow, WindowSync, apply_window, plan_window
from salesforce_sync.runs.preview import preview_counts
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.pipeline.support import (
    HOUR,
    assert_same_rows,
    https_integration,
    lead_integration,
    load_config,
    oracle_rows,
    set_auth_env,
    stored_rows,
)

PROJECT = "acme"
INTEGRATION = "crm"
PREFLIGHT_AND_COUNT = 3  # /limits, the Lead describe (no relationship mapped) and the COUNT()


@pytest.fixture
def org(emulated_org: EmulatedOrg, monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    set_auth_env(monkeypatch, emulated_org)
    return emulated_org


def used(org: EmulatedOrg) -> int:
    return org.control.api_calls()["used"]


def bulk_lead_integration(org: EmulatedOrg, start: datetime) -> IntegrationConfig:
    """Leads over Bulk (create, polls, 100-record result pages, delete: several calls) with half the quota."""
    return lead_integration(org, INTEGRATION, PROJECT, start, bulk_threshold=0, api_budget_percent=50)


def plan_leads(client: SalesforceClient, integration: IntegrationConfig, start: datetime) -> WindowSync:
    describes = preflight(client, integration, "Lead")
    return plan_window(client, integration, "Lead", SyncWindow(start, start + HOUR, first=True), describes)


def test_a_window_over_the_budget_is_deferred_before_fetching_and_syncs_once_the_quota_allows(
        org: EmulatedOrg, store: AudienceStore, start: datetime) -> None:
    integration = bulk_lead_integration(org, start)
    room_after_count = 3  # fewer than the Bulk read needs
    org.control.set_api_limit(2 * (used(org) + PREFLIGHT_AND_COUNT + room_after_count))  # a 50% budget

    with connect(integration) as client:
        with pytest.raises(SyncDeferred) as deferred:
            plan_leads(client, integration, start)
    calls = org.control.api_calls()

    assert str(deferred.value).startswith("integration 'crm': the Lead window of ")
    assert f"the budget of 50% allows {calls['max'] // 2} ({room_after_count} left)" in str(deferred.value)
    assert not any(endpoint.startswith("bulk2") for endpoint in calls["by_endpoint"])  # nothing fetched
    assert calls["used"] <= calls["max"] // 2
    assert store.get_state(INTEGRATION, "Lead") is None  # no watermark

    org.control.set_api_limit(15_000)
    sf: Salesforce = org.simple_salesforce()
    with connect(integration) as client:
        result = apply_window(store, plan_leads(client, integration, start), run_id="later")
    assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, "Lead"),
                     oracle_rows(sf, INTEGRATION, "Lead", start + HOUR))
    assert result.api_usage_before is not None and result.api_usage_after is not None
    assert result.api_usage_after[0] - result.api_usage_before[0] == result.api_calls  # the COUNT() and the read
    assert store.get_state(INTEGRATION, "Lead").last_success_window_end == start + HOUR


def test_a_preview_that_would_pass_the_budget_is_not_run(org: EmulatedOrg, start: datetime) -> None:
    integration = load_config(https_integration(org, INTEGRATION, PROJECT, start)).integrations[0]
    org.control.set_api_limit(100)
    with connect(integration) as client:
        while used(org) < 89:  # the 90% budget leaves one call: a Contact preview needs a describe and a COUNT()
            client.limits()
        with pytest.raises(SyncDeferred, match="the Contact preview deferred: it needs about 2 API calls"):
            preview_counts(client, integration, ["Contact"])
    assert used(org) == 89
