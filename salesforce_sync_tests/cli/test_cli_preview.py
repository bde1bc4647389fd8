"""`salesforce-sync preview` against an emulated org: its counts are what a full sync stores as live people."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from salesforce_sync.cli import main
from salesforce_sync.runs.preview import preview_counts
from salesforce_sync.config.loader import load_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.runs.connection import connect
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.cli.cli_support import (
    LEAD_RULES,
    PROJECT,
    config_text,
    emulator_integration,
    full_sync,
    set_app_credentials,
)

THREE_OBJECTS = "      Lead:" + LEAD_RULES + """
      Contact:
        sync_rules: {rules: [{field: Account.Name, operator: is_set}]}
        field_mappings: []
      CampaignMember:
        sync_rules:
          match: any
          rules:
            - {field: Status, operator: equals, value: Responded}
            - {field: Email, operator: is_set}
        field_mappings: []"""
EVERY_OBJECT = THREE_OBJECTS + """
      Account: {sync_rules: {rules: []}, field_mappings: []}
      Opportunity:
        sync_rules: {rules: [{field: StageName, operator: not_equals, value: Closed Lost}]}
        field_mappings: [{field: Amount, property: amount, type: number}]
      Campaign: {sync_rules: {rules: [{field: IsActive, operator: equals, value: true}]}, field_mappings: []}"""


def preview_rows(output: str) -> dict[str, tuple[int, str]]:
    """(count, SOQL) by object from the preview table."""
    lines = output.strip().splitlines()
    header = lines.index(next(line for line in lines if line.startswith("OBJECT")))
    assert re.split(r"\s{2,}", lines[header]) == ["OBJECT", "RECORDS", "SOQL"]
    rows = {}
    for line in lines[header + 1:]:
        object_type, count, soql = re.split(r"\s{2,}", line, maxsplit=2)
        rows[object_type] = (int(count), soql)
    return rows


def live_people(store: AudienceStore, integration_id: str) -> dict[str, int]:
    users = store.users(PROJECT, integration_id)
    return {object_type: int((~group["deleted"]).sum()) for object_type, group in users.groupby("object_type")}


def test_preview_counts_equal_the_live_records_a_full_sync_stores(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, store: AudienceStore,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org, objects=EVERY_OBJECT)))
    set_app_credentials(monkeypatch, org, refresh_token=True)

    assert main(["preview", "crm"]) == 0
    output = capsys.readouterr().out
    rows = preview_rows(output)
    full_sync(load_config().integration("crm"), store)

    live = live_people(store, "crm")
    assert {name: count for name, (count, _) in rows.items()} == live
    assert all(count > 0 for count in live.values())
    users = store.users(PROJECT, "crm")
    assert users["deleted"].any(), "the org's deleted records reached the store, yet preview did not count them"
    assert rows["Lead"][1] == "SELECT COUNT() FROM Lead WHERE Email != null AND Status != 'Closed - Not Converted'"
    assert rows["Contact"][1] == "SELECT COUNT() FROM Contact WHERE Account.Name != null"
    assert rows["CampaignMember"][1] == "SELECT COUNT() FROM CampaignMember WHERE Status = 'Responded' OR Email != null"
    assert rows["Account"][1] == "SELECT COUNT() FROM Account"
    assert rows["Opportunity"][1] == "SELECT COUNT() FROM Opportunity WHERE StageName != 'Closed Lost'"
    assert rows["Campaign"][1] == "SELECT COUNT() FROM Campaign WHERE IsActive = true"
    assert "integration crm (project acme)" in output


def test_forward_only_previews_only_records_since_the_start_less_the_overlap(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        store: AudienceStore) -> None:
    start = (datetime.now(UTC) - timedelta(days=400)).date()
    use_config(config_text(
        emulator_integration(org, "everything", start=str(start)),
        emulator_integration(org, "recent", start=str(start), extra="    history: forward_only\n")))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    config = load_config()
    recent = config.integration("recent")

    with connect(recent) as client:
        [(object_type, soql, count)] = preview_counts(client, recent, ["Lead"])
        [(_, _, all_count)] = preview_counts(client, config.integration("everything"), ["Lead"])
    full_sync(recent, store)

    assert object_type == "Lead"
    assert soql == (f"SELECT COUNT() FROM Lead WHERE LastModifiedDate >= {start - timedelta(days=1)}T23:50:00Z AND "
                    "(Email != null AND Status != 'Closed - Not Converted')")
    assert 0 < count < all_count
    assert live_people(store, "recent") == {"Lead": count}


def test_preview_of_one_object_takes_any_spelling(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org, objects=THREE_OBJECTS)))
    set_app_credentials(monkeypatch, org, refresh_token=True)

    assert main(["preview", "crm", "campaignmember"]) == 0

    assert list(preview_rows(capsys.readouterr().out)) == ["CampaignMember"]


@pytest.mark.parametrize(("objects", "argv", "message"), [
    ("      Lead:" + LEAD_RULES, ["preview", "crm", "Contact"],
     "integration 'crm': object 'Contact' is not configured (configured: Lead)"),
    ("      Lead:" + LEAD_RULES, ["preview", "nope"], "no integration 'nope' (configured: crm)"),
    ("      Lead: {sync_rules: {rules: [{field: Nope__c, operator: is_set}]}, field_mappings: []}",
     ["preview", "crm"], "integration 'crm': Lead.sync_rules.rules[0]: field 'Nope__c' does not exist on Lead"),
])
def test_preview_errors_name_the_integration_object_or_field(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], objects: str, argv: list[str], message: str) -> None:
    use_config(config_text(emulator_integration(org, objects=objects)))
    set_app_credentials(monkeypatch, org, refresh_token=True)

    assert main(argv) == 1

    captured = capsys.readouterr()
    assert captured.err.strip() == f"salesforce-sync preview: error: {message}"
    assert captured.out == ""


def test_preview_without_the_refresh_token_names_the_variable(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org)))
    set_app_credentials(monkeypatch, org, refresh_token=False)

    assert main(["preview", "crm"]) == 1

    assert "auth.refresh_token_env: environment variable 'CRM_REFRESH_TOKEN' is not set" in capsys.readouterr().err
