"""Status badges: Incomplete (with what is missing) > Inactive > Error > Active."""

from __future__ import annotations

from typing import Any

import pytest

from salesforce_sync.config import IntegrationConfig, integration_status

AUTH = {"method": "refresh_token", "client_id_env": "ID", "refresh_token_env": "REFRESH"}
COMPLETE_OBJECT = {"sync_rules": {"rules": []}, "field_mappings": []}


def integration(**settings: Any) -> IntegrationConfig:
    data = {"id": "acme", "project": "demo", "start": "2026-01-01", "environment": "production", "auth": AUTH,
            "objects": {"Lead": COMPLETE_OBJECT}}
    data.update(settings)
    return IntegrationConfig.model_validate({k: v for k, v in data.items() if v is not None})


def test_complete_integration_is_active_or_error_after_a_failed_sync() -> None:
    assert integration_status(integration(), last_sync_failed=False) == ("Active", [])
    assert integration_status(integration(), last_sync_failed=True) == ("Error", [])


def test_inactive_wins_over_error() -> None:
    assert integration_status(integration(active=False), last_sync_failed=True) == ("Inactive", [])


def test_emulator_needs_no_auth() -> None:
    assert integration_status(integration(environment="emulator", auth=None), False) == ("Active", [])


@pytest.mark.parametrize(("settings", "missing"), [
    ({"environment": None, "auth": None}, ["connection: environment", "connection: auth"]),
    ({"auth": None}, ["connection: auth"]),
    ({"objects": {}}, ["objects: select at least one of Lead, Contact, CampaignMember, Account, Opportunity, Campaign"]),
    ({"objects": {"Lead": None}}, ["objects.Lead.sync_rules", "objects.Lead.field_mappings"]),
    ({"objects": {"CampaignMember": {"field_mappings": []}, "Contact": {"sync_rules": {"rules": []}}}},
     ["objects.Contact.field_mappings", "objects.CampaignMember.sync_rules"]),
])
def test_incomplete_says_exactly_what_is_missing(settings: dict, missing: list[str]) -> None:
    assert integration_status(integration(**settings), last_sync_failed=False) == ("Incomplete", missing)
    # Incomplete beats Inactive and Error: the user must finish the setup first.
    assert integration_status(integration(active=False, **settings), last_sync_failed=True)[0] == "Incomplete"
