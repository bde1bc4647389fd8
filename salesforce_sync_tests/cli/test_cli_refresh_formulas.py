"""`salesforce-sync refresh-formulas` against an emulated org: a changed formula input reaches the store, a second
run changes nothing, and what stops it is one line naming the integration, object or field."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from salesforce_sync.cli import main
from salesforce_sync.config.loader import load_config
from salesforce_sync.emulator.harness import EmulatedOrg
from salesforce_sync.store import AudienceStore
from salesforce_sync_tests.cli.cli_support import PROJECT, config_text, emulator_integration, full_sync, set_app_credentials

CONTACTS = """      Contact:
        sync_rules: {rules: []}
        field_mappings:
          - {field: Account_Tier__c, property: account_tier, type: string}
          - {field: %s, property: extra, type: string}"""
TIERS = ("Gold", "Silver", "Bronze")


def refresh_rows(output: str) -> dict[str, list[str]]:
    lines = output.strip().splitlines()
    header = lines.index(next(line for line in lines if line.startswith("OBJECT")))
    assert re.split(r"\s{2,}", lines[header]) == ["OBJECT", "READ", "CHANGED", "API CALLS", "API", "FIELDS"]
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line) for line in lines[header + 1:])}


def test_refresh_formulas_writes_a_changed_tier_once(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, store: AudienceStore,
        capsys: pytest.CaptureFixture[str]) -> None:
    use_config(config_text(emulator_integration(org, objects=CONTACTS % "Title")))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    full_sync(load_config().integration("crm"), store)
    sf = org.simple_salesforce()
    contacts = sf.query_all("SELECT Id, AccountId, Account.Tier__c FROM Contact WHERE AccountId != null")["records"]
    account, tier = contacts[0]["AccountId"], contacts[0]["Account"]["Tier__c"]
    sf.Account.update(account, {"Tier__c": next(t for t in TIERS if t != tier)})
    affected = {c["Id"] for c in contacts if c["AccountId"] == account}

    assert main(["refresh-formulas", "crm"]) == 0
    first = refresh_rows(capsys.readouterr().out)
    assert main(["refresh-formulas"]) == 0
    second = refresh_rows(capsys.readouterr().out)

    live = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    assert first == {"Contact": [f"{live:,}", str(len(affected)), first["Contact"][2], "REST", "Account_Tier__c"]}
    assert second["Contact"][:2] == [f"{live:,}", "0"]
    users = store.users(PROJECT, "crm", "Contact", include_deleted=False)
    tiers = {sf_id: properties["account_tier"] for sf_id, properties in zip(users["salesforce_id"], users["properties"])}
    org_tiers = {c["Id"]: c["Account_Tier__c"] for c in sf.query_all("SELECT Id, Account_Tier__c FROM Contact")["records"]}
    assert tiers == org_tiers


@pytest.mark.parametrize(("argv", "message"), [
    (["refresh-formulas", "nope"], "no integration 'nope' (configured: crm)"),
    (["refresh-formulas", "crm"], "integration 'crm', object Contact: Contact.Gone__c (property 'extra') does not "
                                  "exist in the org"),
])
def test_refresh_formulas_errors_are_one_line(
        org: EmulatedOrg, use_config: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch, store: AudienceStore,
        capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    org.control.add_field("Contact", "Gone__c", "string", label="Gone")
    use_config(config_text(emulator_integration(org, objects=CONTACTS % "Gone__c")))
    set_app_credentials(monkeypatch, org, refresh_token=True)
    full_sync(load_config().integration("crm"), store)
    org.control.delete_field("Contact", "Gone__c")

    assert main(argv) == 1

    assert capsys.readouterr().err == f"salesforce-sync refresh-formulas: error: {message}\n"
