"""Transient Salesforce failures during a window sync, injected by the emulator's fault control, on SQLite and
PostgreSQL: a 503, a 500, a cut REST page, a cut Bulk CSV result, UNABLE_TO_LOCK_ROW and an expired query locator
are retried (each retry a warning naming the call) and the store ends exactly equal to the org; an error that is
not transient fails at once; a describe outage is never reported as a missing field."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import pytest
from simple_salesforce import Salesforce

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.runs.connection import connect
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import check_field_mappings, preflight
from salesforce_sync.runs.window import SyncWindow, WindowResult, WindowSync, apply_window, plan_window
from salesforce_sync.salesforce.client import SalesforceRequestError
from salesforce_sync.salesforce.retries import RetryPolicy
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
FAST = RetryPolicy(attempts=4, initial_seconds=0.01, max_seconds=0.05, jitter_seconds=0.01)
CLIENT_LOG = "salesforce_sync.salesforce.client"
REST_PAGE = 200  # the smallest chunk size (100) asks for 200-record pages: the window spans several pages
FIRST_PAGE = r"/queryAll$"
SECOND_PAGE = rf"/query/01g\w+-{REST_PAGE}$"
BULK_RESULTS = r"/jobs/query/\w+/results$"


@pytest.fixture
def org(emulated_org_factory: Callable[..., EmulatedOrg], monkeypatch: pytest.MonkeyPatch) -> EmulatedOrg:
    org = emulated_org_factory(seed=5, counts={"Lead": 700, "Contact": 10, "CampaignMember": 0})
    set_auth_env(monkeypatch, org)
    return org


def sync_leads(integration: IntegrationConfig, store: AudienceStore, start: datetime,
               arm: Callable[[], None]) -> tuple[WindowResult, int]:
    """The first Lead window through the production path; `arm` injects faults once the window is planned
    (so they hit the fetch, not the COUNT). Returns the result and how many records the window counted."""
    result, sync = sync_leads_planned(integration, store, start, arm)
    return result, sync.expected


def sync_leads_planned(integration: IntegrationConfig, store: AudienceStore, start: datetime,
                       arm: Callable[[], None]) -> tuple[WindowResult, WindowSync]:
    with connect(integration) as client:
        client.retry_policy = FAST
        describes = preflight(client, integration, "Lead")
        sync = plan_window(client, integration, "Lead", SyncWindow(start, start + HOUR, first=True), describes)
        arm()
        return apply_window(store, sync, run_id="retries"), sync


def retry_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CLIENT_LOG and r.levelno == logging.WARNING]


def assert_exact(store: AudienceStore, sf: Salesforce, start: datetime, result: WindowResult, expected: int) -> None:
    """The store equals the org, and every record was read once (none re-read, so none re-upserted)."""
    assert_same_rows(stored_rows(store, PROJECT, INTEGRATION, "Lead"),
                     oracle_rows(sf, INTEGRATION, "Lead", start + HOUR))
    counts = result.counts
    assert (counts.imported + counts.deleted, counts.updated, counts.skipped) == (expected, 0, 0)


TRANSIENT_REST_FAULTS = {  # (path, status and errorCode of an error, or None for a cut connection)
    "503 on the first page": (FIRST_PAGE, (503, "SERVER_UNAVAILABLE")),
    "500 on a later page": (SECOND_PAGE, (500, "UNKNOWN_EXCEPTION")),
    "cut connection mid-page": (SECOND_PAGE, None),
    "UNABLE_TO_LOCK_ROW": (SECOND_PAGE, (400, "UNABLE_TO_LOCK_ROW")),
}


@pytest.mark.parametrize("path, error", TRANSIENT_REST_FAULTS.values(), ids=TRANSIENT_REST_FAULTS.keys())
def test_transient_rest_failures_are_retried_and_the_store_is_exact(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, start: datetime, caplog: pytest.LogCaptureFixture,
        path: str, error: tuple[int, str] | None) -> None:
    integration = lead_integration(org, INTEGRATION, PROJECT, start)
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)

    def arm() -> None:
        if error is None:
            org.control.cut_connection(path, count=2)
        else:
            org.control.inject_error(path, *error, count=2)

    result, expected = sync_leads(integration, store, start, arm)

    assert expected > 2 * REST_PAGE
    assert_exact(store, sf, start, result, expected)
    warnings = retry_warnings(caplog)
    assert len(warnings) == 2, warnings
    call = "query" if path == FIRST_PAGE else "query page 01g"
    assert all(f"integration 'crm': {call}" in w for w in warnings), warnings
    assert [w.split("attempt ")[1][:6] for w in warnings] == ["1 of 4", "2 of 4"]


def test_an_expired_query_locator_restarts_after_the_last_record_read(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, start: datetime,
        caplog: pytest.LogCaptureFixture) -> None:
    integration = lead_integration(org, INTEGRATION, PROJECT, start)
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)

    def expire_the_locator_twice() -> None:
        org.control.inject_error(SECOND_PAGE, 400, "INVALID_QUERY_LOCATOR", "invalid query locator", count=2)

    result, sync = sync_leads_planned(integration, store, start, expire_the_locator_twice)
    calls = org.control.api_calls()["by_endpoint"]
    expected = sync.expected
    leaver_pages = -(-len(sf.query_all(sync.out_of_scope_soql, include_deleted=True)["records"]) // REST_PAGE)

    restarts = [w for w in retry_warnings(caplog) if "restarting the query" in w]
    assert len(restarts) == 2, retry_warnings(caplog)
    # A restart reads on from the last record: one call per page of the window, never from the top (+ the COUNT
    # and the pages listing the window's records that left the rules).
    assert calls["query"] + calls.get("queryMore", 0) == -(-expected // REST_PAGE) + 1 + leaver_pages
    assert calls["query"] == 1 + 1 + 2 + 1
    assert_exact(store, sf, start, result, expected)  # no record read twice, none missed


def test_a_bulk_result_page_cut_mid_csv_is_fetched_again(
        org: EmulatedOrg, sf: Salesforce, store: AudienceStore, start: datetime,
        caplog: pytest.LogCaptureFixture) -> None:
    integration = lead_integration(org, INTEGRATION, PROJECT, start, bulk_threshold=0)
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)

    def cut_results_and_fail_a_poll() -> None:
        org.control.cut_connection(BULK_RESULTS, count=2)
        org.control.inject_error(r"/jobs/query/\w+$", 503, "SERVER_UNAVAILABLE", method="GET")

    result, expected = sync_leads(integration, store, start, cut_results_and_fail_a_poll)

    assert_exact(store, sf, start, result, expected)
    warnings = retry_warnings(caplog)
    assert sum("/results" in w and "connection lost" in w for w in warnings) == 2, warnings
    assert sum("GET jobs/query/" in w and "HTTP 503" in w for w in warnings) == 1, warnings


@pytest.mark.parametrize("status, code", [(400, "INVALID_FIELD"), (403, "REQUEST_LIMIT_EXCEEDED")])
def test_an_error_that_is_not_transient_fails_without_a_retry(
        org: EmulatedOrg, store: AudienceStore, start: datetime, caplog: pytest.LogCaptureFixture,
        status: int, code: str) -> None:
    integration = lead_integration(org, INTEGRATION, PROJECT, start)
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)

    with pytest.raises(SalesforceRequestError, match=f"HTTP {status}: {code}"):
        # One injected error only: a retry would have succeeded.
        sync_leads(integration, store, start, lambda: org.control.inject_error(SECOND_PAGE, status, code))

    assert retry_warnings(caplog) == []
    assert store.get_state(INTEGRATION, "Lead") is None  # the watermark never moved


def test_retries_are_bounded_and_the_last_error_surfaces(
        org: EmulatedOrg, store: AudienceStore, start: datetime, caplog: pytest.LogCaptureFixture) -> None:
    integration = lead_integration(org, INTEGRATION, PROJECT, start)
    caplog.set_level(logging.WARNING, logger=CLIENT_LOG)

    with pytest.raises(SalesforceRequestError, match="HTTP 503: SERVER_UNAVAILABLE"):
        sync_leads(integration, store, start, lambda: org.control.inject_error(
            SECOND_PAGE, 503, "SERVER_UNAVAILABLE", count=-1))

    assert len(retry_warnings(caplog)) == FAST.attempts - 1


@pytest.mark.parametrize("outage", [2, -1], ids=["short", "lasting"])
def test_a_describe_outage_is_never_a_missing_field(org: EmulatedOrg, start: datetime, outage: int) -> None:
    """Contact maps Account.Name: the Account describe failing must not turn into 'does not exist'."""
    integration = load_config(https_integration(org, INTEGRATION, PROJECT, start)).integrations[0]
    org.control.inject_error(r"/sobjects/Account/describe$", 503, "SERVER_UNAVAILABLE", count=outage)
    with connect(integration) as client:
        client.retry_policy = FAST
        if outage > 0:
            outcome, _ = check_field_mappings(client, integration, "Contact")
            assert outcome.passed, outcome.message
        else:
            with pytest.raises(SalesforceRequestError, match="HTTP 503") as failure:
                check_field_mappings(client, integration, "Contact")
            assert "does not exist" not in str(failure.value)
