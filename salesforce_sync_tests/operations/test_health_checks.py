"""The plain-Python health checks against an emulated org reached over HTTPS, staged with its fault and
schema controls: a revoked login, a used-up or nearly used-up API quota, deleted and renamed fields, and
the staleness rule. The preflight a sync runs stops with the same messages (a quota at the budget defers it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from salesforce_sync.config.models import IntegrationConfig
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.health import (
    SyncBlocked,
    SyncDeferred,
    check_api_limits,
    check_credentials,
    check_field_mappings,
    check_staleness,
    preflight,
)
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.runs.connection import connect
from salesforce_sync_tests.operations.support import build_config, offline_integration, org_integration


def integration_for(org: EmulatedOrg) -> IntegrationConfig:
    return build_config(org_integration(org)).integrations[0]


def spend_api_calls_until(org: EmulatedOrg, client: SalesforceClient, used: int) -> None:
    """Make real API calls until the org has counted `used` of today's requests."""
    for _ in range(used - org.control.api_calls()["used"]):
        client.limits()
    assert org.control.api_calls()["used"] == used


def test_credentials_check_reports_the_org_and_user_it_reached(org: EmulatedOrg) -> None:
    info = org.connection_info()
    with connect(integration_for(org)) as client:
        outcome = check_credentials(client)
    assert outcome.passed, outcome.message
    assert outcome.metadata == {"org_id": info["org_id"], "username": info["username"]}
    assert info["org_id"] in outcome.message and info["username"] in outcome.message


def test_revoked_refresh_token_fails_credentials_with_salesforces_cause_and_advice(org: EmulatedOrg) -> None:
    info = org.connection_info()
    revoked = org.session().post(f"{org.base_url}/services/oauth2/revoke", data={"token": info["refresh_token"]},
                                 timeout=30)
    assert revoked.status_code == 200
    with connect(integration_for(org)) as client:
        outcome = check_credentials(client)
    assert not outcome.passed
    assert outcome.metadata == {"error": "invalid_grant"}
    assert outcome.message.startswith("integration 'acme': Salesforce refused the login: invalid_grant")
    assert "reconnect the integration" in outcome.message


def test_exhausted_api_limit_fails_the_check_reporting_used_and_max(org: EmulatedOrg) -> None:
    org.control.exhaust_api_limit()
    maximum = org.control.api_calls()["max"]
    integration = integration_for(org)
    with connect(integration) as client:
        outcome = check_api_limits(client)
        with pytest.raises(SyncDeferred) as blocked:
            preflight(client, integration, "Lead")
    assert not outcome.passed
    assert outcome.metadata == {"used": maximum, "max": maximum, "remaining": 0}
    assert outcome.message.startswith(
        f"integration 'acme': {maximum} of {maximum} daily API requests used, 0 remaining")
    assert "REQUEST_LIMIT_EXCEEDED" in outcome.message
    assert str(blocked.value) == outcome.message


def test_api_limits_check_warns_at_a_quarter_left_and_fails_at_a_tenth(org: EmulatedOrg) -> None:
    org.control.set_api_limit(100)
    integration = integration_for(org)
    with connect(integration) as client:
        plenty = check_api_limits(client)
        spend_api_calls_until(org, client, used=79)  # the check's own call is the 80th
        low = check_api_limits(client)
        preflight(client, integration, "Lead")  # a warning does not stop a sync
        spend_api_calls_until(org, client, used=89)
        exhausted = check_api_limits(client)
        with pytest.raises(SyncDeferred, match=r"of 100 daily API requests used.*10% or less left"):
            preflight(client, integration, "Lead")
    assert plenty.passed and not plenty.warn
    assert low.passed and low.warn
    assert low.metadata == {"used": 80, "max": 100, "remaining": 20}
    assert low.message == "integration 'acme': 80 of 100 daily API requests used, 20 remaining"
    assert not exhausted.passed
    assert exhausted.metadata == {"used": 90, "max": 100, "remaining": 10}


def test_deleted_field_fails_the_mapping_check_naming_it(org: EmulatedOrg) -> None:
    integration = integration_for(org)
    with connect(integration) as client:
        before, _ = check_field_mappings(client, integration, "Lead")
        org.control.delete_field("Lead", "Company")
        after, _ = check_field_mappings(client, integration, "Lead")
        contact, _ = check_field_mappings(client, integration, "Contact")
        with pytest.raises(SyncBlocked) as blocked:
            preflight(client, integration, "Lead")
    assert before.passed, before.message
    assert not after.passed
    assert after.message == ("integration 'acme', object Lead: Lead.Company (property 'company') does not exist "
                             "in the org")
    assert after.metadata == {"problems": 1, "suggestions": {}}
    assert contact.passed, contact.message
    assert str(blocked.value) == after.message


def test_a_sync_rule_on_a_deleted_field_fails_the_mapping_check_and_the_sync(org: EmulatedOrg) -> None:
    settings = {"objects": {"Lead": {"sync_rules": {"rules": [{"field": "LeadSource", "operator": "equals",
                                                                 "value": "Web"}]}}}}
    integration = build_config(org_integration(org, **settings)).integration("acme")
    org.control.delete_field("Lead", "LeadSource")
    with connect(integration) as client:
        outcome, _ = check_field_mappings(client, integration, "Lead")
        with pytest.raises(SyncBlocked) as blocked:
            preflight(client, integration, "Lead")
    assert not outcome.passed
    assert outcome.message == ("integration 'acme', object Lead: Lead.LeadSource (a sync rule field) does not "
                               "exist in the org")
    assert str(blocked.value) == outcome.message


def test_renamed_field_fails_the_mapping_check_naming_it_and_its_new_name(org: EmulatedOrg) -> None:
    org.control.rename_field("Lead", "Lead_Score__c", "Lead_Rating__c")
    integration = integration_for(org)
    with connect(integration) as client:
        outcome, _ = check_field_mappings(client, integration, "Lead")
        with pytest.raises(SyncBlocked) as blocked:
            preflight(client, integration, "Lead")
    assert not outcome.passed
    assert "Lead.Lead_Score__c (property 'lead_score') does not exist in the org" in outcome.message
    assert "map 'Lead_Rating__c' instead" in outcome.message
    assert outcome.metadata == {"problems": 1, "suggestions": {"Lead_Score__c": "Lead_Rating__c"}}
    assert str(blocked.value) == outcome.message


def test_staleness_allows_twice_the_frequency_and_no_more() -> None:
    hourly = build_config(offline_integration("acme")).integrations[0]
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert check_staleness(hourly, now - timedelta(minutes=120), now).passed
    late = check_staleness(hourly, now - timedelta(minutes=121), now)
    assert not late.passed
    assert late.message == ("integration 'acme': last successful sync 2026-11-23T09:59:00+00:00 is 121.0 minutes "
                            "old, more than twice its frequency")
    assert late.metadata == {"age_minutes": 121.0, "max_age_minutes": 120.0}
    never = check_staleness(hourly, None, now)
    assert not never.passed and never.message == "integration 'acme' has never synced successfully"
