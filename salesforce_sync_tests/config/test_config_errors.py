"""Every broken config names the file, the integration and the field, and never echoes a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from salesforce_sync.config import ConfigError, load_config

BASE = {
    "projects": [{"id": "demo"}],
    "integrations": [{
        "id": "acme",
        "project": "demo",
        "environment": "acme.my.salesforce.com",
        "auth": {"method": "client_credentials", "client_id_env": "ACME_ID", "client_secret_env": "ACME_SECRET"},
        "start": "2026-11-20",
        "objects": {
            "Lead": {
                "sync_rules": {"match": "all", "rules": [
                    {"field": "Email", "operator": "is_set"},
                    {"field": "Status", "operator": "equals", "value": "Open"},
                ]},
                "field_mappings": [{"field": "Company", "property": "company", "type": "string"}],
            },
        },
    }],
}


def broken(tmp_path: Path, change: dict | None = None, lead: dict | None = None, auth: dict | None = None,
           top: dict | None = None) -> str:
    """Load BASE with changes applied and return the single error message."""
    data = yaml.safe_load(yaml.safe_dump(BASE))
    integration = data["integrations"][0]
    integration.update(change or {})
    if lead is not None:
        integration["objects"]["Lead"].update(lead)
    if auth is not None:
        integration["auth"] = auth
    data.update(top or {})
    path = tmp_path / "integrations.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message, message
    return message.removeprefix(f"{path}: ")


def rules(*items: dict) -> dict:
    return {"sync_rules": {"rules": list(items)}}


def test_base_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "integrations.yaml"
    path.write_text(yaml.safe_dump(BASE), encoding="utf-8")
    assert load_config(path).integration("acme").objects["Lead"].sync_rules.rules[1].value == "Open"


def test_unknown_operator_lists_the_ten_operators(tmp_path: Path) -> None:
    message = broken(tmp_path, lead=rules({"field": "Email", "operator": "is_set"},
                                          {"field": "Status", "operator": "equal", "value": "Open"}))
    assert message == (
        "integration 'acme': objects.Lead.sync_rules.rules[1].operator: 'equal' is not one of equals, "
        "not_equals, contains, not_contains, starts_with, ends_with, greater_than, less_than, is_set, is_not_set"
    )


@pytest.mark.parametrize(("lead", "expected"), [
    (rules({"field": "Email", "operator": "is_set", "value": "x"}),
     "objects.Lead.sync_rules.rules[0].value: operator 'is_set' takes no value, got 'x'"),
    (rules({"field": "Email", "operator": "equals"}),
     "objects.Lead.sync_rules.rules[0].value: operator 'equals' needs a value"),
    (rules({"field": "Email", "operator": "contains", "value": ["a", "b"]}),
     "objects.Lead.sync_rules.rules[0].value: ['a', 'b'] is not a single value"),
    (rules({"field": "Account..Name", "operator": "is_set"}),
     "objects.Lead.sync_rules.rules[0].field: 'Account..Name' is not a Salesforce field API name"),
    ({"sync_rules": {"match": "every", "rules": []}},
     "objects.Lead.sync_rules.match: 'every' is not one of all, any"),
    ({"sync_rules": {"match": "all"}}, "objects.Lead.sync_rules.rules: is required"),
    ({"field_mappings": [{"field": "Score__c", "property": "score", "type": "integer"}]},
     "objects.Lead.field_mappings[0].type: 'integer' is not one of string, number, boolean, date, array"),
    ({"field_mappings": [{"field": "Email", "property": "unsubscribed", "type": "string"}]},
     "objects.Lead.field_mappings[0].type: the opt-out property 'unsubscribed' must be of type boolean, not string"),
    ({"field_mappings": [{"field": "Score__c", "property": "email", "type": "number"}]},
     "objects.Lead.field_mappings[0].type: store column 'email' must be of type string, not number"),
    ({"field_mappings": [{"field": "A__c", "property": "a", "type": "string"},
                         {"field": "B__c", "property": "a", "type": "string"}]},
     "objects.Lead.field_mappings[0].property: property 'a' is mapped more than once"),
    ({"field_mappings": [{"field": "IsDeleted", "property": "deleted", "type": "boolean"}]},
     "objects.Lead.field_mappings[0].property: 'deleted' is filled by the sync itself"),
    ({"field_mappings": [{"field": "Company", "property": "converted_contact_id", "type": "string"}]},
     "objects.Lead.field_mappings[0].property: 'converted_contact_id' is filled by the sync itself (Lead "
     "references); map to another property name"),
    ({"field_mappings": [{"field": "Company", "property": "Company Name", "type": "string"}]},
     "objects.Lead.field_mappings[0].property: 'Company Name' is not a valid property name"),
    ({"field_mappings": [{"property": "company", "type": "string"}]},
     "objects.Lead.field_mappings[0].field: is required"),
])
def test_object_settings_errors(tmp_path: Path, lead: dict, expected: str) -> None:
    assert broken(tmp_path, lead=lead).startswith(f"integration 'acme': {expected}")


@pytest.mark.parametrize(("change", "expected"), [
    ({"objects": {"Task": {}}},
     "integration 'acme': objects.Task: 'Task' is not one of Lead, Contact, CampaignMember, Account, Opportunity, "
     "Campaign"),
    ({"objects": {"Contact": {"field_mappings": [{"field": "Name", "property": "account_id", "type": "string"}]}}},
     "integration 'acme': objects.Contact.field_mappings[0].property: 'account_id' is filled by the sync itself "
     "(Contact references); map to another property name"),
    ({"id": "Acme-Org"}, "integration 'Acme-Org': id: 'Acme-Org' is not a valid id"),
    ({"project": "sales"}, "integration 'acme': project: 'sales' is not a declared project (declared: demo)"),
    ({"environment": "prod"}, "integration 'acme': environment: 'prod' is not production, sandbox, emulator"),
    ({"environment": "http://127.0.0.1:8080"},
     "integration 'acme': environment: 'http://127.0.0.1:8080': Salesforce logins need https://"),
    ({"environment": "https://127.0.0.1:8443/services/oauth2/token"},
     "integration 'acme': environment: 'https://127.0.0.1:8443/services/oauth2/token' is not a login URL"),
    ({"environment": "production"},
     "integration 'acme': auth.method: client_credentials is refused by https://login.salesforce.com"),
    ({"ca_file": "ca.pem"}, "integration 'acme': ca_file: is only used with an explicit https:// login URL"),
    ({"emulator": {"seed": 1}}, "integration 'acme': emulator: options are only used with environment: emulator"),
    ({"environment": "emulator", "emulator": {"leads": -1}},
     "integration 'acme': emulator.leads: Input should be greater than or equal to 0, got -1"),
    ({"frequency": 45}, "integration 'acme': frequency: 45 is not a usable frequency"),
    ({"frequency": True}, "integration 'acme': frequency: True is not a usable frequency"),
    ({"start": None}, "integration 'acme': start: None is not a date"),
    ({"start": "next monday"}, "integration 'acme': start: 'next monday' is not a date (2026-11-20)"),
    ({"overlap_minutes": -1}, "integration 'acme': overlap_minutes: Input should be greater than or equal to 0"),
    ({"cursor_field": "CreatedDate"},
     "integration 'acme': cursor_field: 'CreatedDate' is not one of LastModifiedDate, SystemModstamp"),
    ({"history": "everything"},
     "integration 'acme': history: 'everything' is not one of historical_and_forward, historical_only, forward_only"),
    ({"schedule": "hourly"}, "integration 'acme': schedule: is not a known setting"),
])
def test_integration_errors(tmp_path: Path, change: dict, expected: str) -> None:
    assert broken(tmp_path, change=change).startswith(expected)


def test_start_is_required(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    del data["integrations"][0]["start"]
    path = tmp_path / "integrations.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"integration 'acme': start: is required$"):
        load_config(path)


def test_duplicate_integration_ids_and_missing_id(tmp_path: Path) -> None:
    second = dict(BASE["integrations"][0])
    assert broken(tmp_path, top={"integrations": [BASE["integrations"][0], second]}) == (
        "integration 'acme': id: integration id 'acme' is used twice")
    no_id = {k: v for k, v in BASE["integrations"][0].items() if k != "id"}
    assert broken(tmp_path, top={"integrations": [no_id]}) == "integration #1 (no id): id: is required"


def test_top_level_errors(tmp_path: Path) -> None:
    assert broken(tmp_path, top={"projects": []}) == "projects: declare at least one project"
    assert broken(tmp_path, top={"projects": ["demo", "demo"]}) == "projects[1].id: project 'demo' is declared twice"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "integrations.yaml"
    path.write_text("projects: [demo\nintegrations: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path}: not valid YAML at line \d+, column \d+"):
        load_config(path)
    path.write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping with 'projects' and 'integrations'"):
        load_config(path)


def test_all_problems_are_reported_one_per_line(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["integrations"][0].update({"frequency": 7, "history": "all"})
    path = tmp_path / "integrations.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert any("integration 'acme': frequency: 7" in line for line in lines)
    assert any("integration 'acme': history: 'all'" in line for line in lines)


SECRET = "3MVG9pRzvMkjMb6lZlt3YjDQwe_SECRET.value!"


@pytest.mark.parametrize(("auth", "expected"), [
    ({"method": "client_credentials", "client_id_env": "ACME_ID", "client_secret": SECRET},
     "auth.client_secret: inline secrets are not allowed: put the value in an environment variable and give "
     "its name as client_secret_env"),
    ({"method": "client_credentials", "client_id_env": "ACME_ID", "client_secret_env": SECRET},
     "auth.client_secret_env: does not look like an environment variable name"),
    ({"method": "password", "username_env": "U", "password": SECRET}, "auth.password: inline secrets are not allowed"),
    ({"method": "jwt_bearer", "client_id_env": "ID", "username": SECRET, "private_key_env": "KEY"},
     "auth.username: a Salesforce username looks like an email address"),
])
def test_inline_secrets_are_rejected_without_echoing_them(tmp_path: Path, auth: dict, expected: str) -> None:
    message = broken(tmp_path, auth=auth)
    assert message.startswith(f"integration 'acme': {expected}")
    assert SECRET not in message and "SECRET" not in message


@pytest.mark.parametrize(("auth", "expected"), [
    ({"method": "oauth"}, "auth.method: 'oauth' is not one of refresh_token, jwt_bearer, client_credentials, password"),
    ({"method": "refresh_token", "client_id_env": "ID"}, "auth.refresh_token_env: is required for method 'refresh_token'"),
    ({"method": "client_credentials", "client_id_env": "ID", "client_secret_env": "S", "refresh_token_env": "R"},
     "auth.refresh_token_env: is not used by method 'client_credentials' (it takes client_id_env, client_secret_env)"),
    ({"method": "jwt_bearer", "client_id_env": "ID", "username": "a@b.c"},
     "auth.private_key_env: method 'jwt_bearer' needs exactly one of private_key_env and private_key_file_env"),
    ({"method": "jwt_bearer", "client_id_env": "ID", "username": "a@b.c", "username_env": "U", "private_key_env": "K"},
     "auth.username: method 'jwt_bearer' needs exactly one of username and username_env"),
    ({"method": "password", "username_env": "U", "password_env": "P", "client_id_env": "ID"},
     "auth.client_secret_env: method 'password' takes client_id_env and client_secret_env together"),
    ({"client_id_env": "ID"}, "auth.method: is required"),
])
def test_auth_errors(tmp_path: Path, auth: dict, expected: str) -> None:
    assert broken(tmp_path, auth=auth).startswith(f"integration 'acme': {expected}")
