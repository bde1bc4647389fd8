"""Loading the integrations config: the demo file, env-var selection, environments and frequencies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from salesforce_sync.config import (
    CONFIG_ENV_VAR,
    DEMO_CONFIG_PATH,
    ConfigError,
    IntegrationConfig,
    integration_status,
    load_config,
    partition_cron,
)

FULL_CONFIG = """
projects:
  - id: marketing
    name: Marketing
  - sales
integrations:
  - id: acme_prod
    project: marketing
    environment: production
    auth: {method: refresh_token, client_id_env: ACME_CLIENT_ID, refresh_token_env: ACME_REFRESH}
    objects:
      Lead:
        sync_rules: {rules: []}
        field_mappings: []
    start: 2026-01-01
  - id: acme_uat
    project: sales
    environment: acme--uat.sandbox.my.salesforce.com
    auth: {method: client_credentials, client_id_env: UAT_ID, client_secret_env: UAT_SECRET}
    objects: {Contact: {sync_rules: {match: any, rules: [{field: Email, operator: is_set}]}, field_mappings: []}}
    frequency: manual
    history: forward_only
    start: 2026-02-01T06:30:00+02:00
    overlap_minutes: 5
    cursor_field: SystemModstamp
    bulk_threshold: 500
    active: false
  - id: local_emulator
    project: sales
    environment: https://127.0.0.1:8443/
    ca_file: certs/ca.pem
    auth:
      method: jwt_bearer
      client_id_env: EMU_ID
      username: integration@example.com
      private_key_file_env: EMU_KEY_FILE
    frequency: 15
    start: 2026-03-01
  - id: sandbox_pw
    project: sales
    environment: sandbox
    auth: {method: password, username_env: SB_USER, password_env: SB_PASS, security_token_env: SB_TOKEN}
    frequency: 240
    history: historical_only
    start: 2026-03-01
  - id: my_domain
    project: marketing
    environment: acme.my.salesforce.com
    frequency: 1440
    start: "2026-03-01T00:00:00"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "integrations.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_demo_config_is_complete_and_active() -> None:
    config = load_config(DEMO_CONFIG_PATH)
    assert [p.id for p in config.projects] == ["demo"]
    demo = config.integration("demo_org")
    assert demo.project == "demo"
    assert demo.environment_kind == "emulator" and demo.auth is None and demo.login_url is None
    assert (demo.emulator.seed, demo.emulator.leads, demo.emulator.contacts, demo.emulator.campaign_members) == (
        7, 2000, 1000, 500)
    assert (demo.emulator.accounts, demo.emulator.opportunities, demo.emulator.campaigns) == (200, 100, None)
    assert demo.emulator.counts() == {"Lead": 2000, "Contact": 1000, "CampaignMember": 500, "Account": 200,
                                      "Opportunity": 100}
    assert demo.object_types == ("Lead", "Contact", "CampaignMember", "Account", "Opportunity")
    assert demo.partition_cron() == "0 * * * *"
    assert demo.start == datetime(2026, 11, 20, tzinfo=timezone.utc)
    assert integration_status(demo, last_sync_failed=False) == ("Active", [])
    lead_properties = {m.property: m.type for m in demo.mappings("Lead")}
    assert lead_properties["lead_score"] == "number" and lead_properties["interests"] == "array"
    assert lead_properties["unsubscribed"] == "boolean"
    # Companies and deals have no person columns and no opt-out: their Name, mapped values and Account link.
    opportunity_properties = {m.property: m.type for m in demo.mappings("Opportunity")}
    assert opportunity_properties == {"name": "string", "account_id": "string", "stage": "string",
                                      "amount": "number", "close_date": "date", "company": "string"}
    assert {m.property for m in demo.mappings("Account")} == {"name", "industry", "annual_revenue", "tier"}


def test_env_var_selects_the_file_and_default_is_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, FULL_CONFIG)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert [i.id for i in load_config().integrations][0] == "acme_prod"
    monkeypatch.delenv(CONFIG_ENV_VAR)
    assert load_config().integrations[0].id == "demo_org"
    assert load_config(environ={CONFIG_ENV_VAR: str(path)}).integrations[0].id == "acme_prod"


def test_missing_file_named_by_env_var_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as error:
        load_config(environ={CONFIG_ENV_VAR: str(missing)})
    assert str(error.value) == f"{missing}: config file not found (set by {CONFIG_ENV_VAR})"


def test_full_config_resolves_environments_and_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL_CONFIG))
    assert [(p.id, p.name) for p in config.projects] == [("marketing", "Marketing"), ("sales", None)]
    prod, uat, local, sandbox, my_domain = config.integrations

    assert (prod.environment_kind, prod.login_url, prod.allows_client_credentials) == (
        "production", "https://login.salesforce.com", False)
    assert (prod.frequency, prod.history, prod.active, prod.overlap, prod.cursor_field, prod.bulk_threshold) == (
        60, "historical_and_forward", True, timedelta(minutes=10), "LastModifiedDate", 10_000)
    assert prod.objects["Lead"].sync_rules.rules == ()

    assert (uat.environment_kind, uat.login_url, uat.allows_client_credentials) == (
        "my_domain", "https://acme--uat.sandbox.my.salesforce.com", True)
    assert uat.start == datetime(2026, 2, 1, 4, 30, tzinfo=timezone.utc)
    assert (uat.window_minutes, uat.partition_cron(), uat.scheduled) == (1440, "0 0 * * *", False)
    assert (uat.overlap_minutes, uat.cursor_field, uat.bulk_threshold, uat.active) == (5, "SystemModstamp", 500, False)

    assert (local.environment_kind, local.login_url, local.allows_client_credentials) == (
        "url", "https://127.0.0.1:8443", True)
    assert local.ca_file == tmp_path / "certs" / "ca.pem"
    assert local.auth.username == "integration@example.com"
    assert local.partition_cron() == "*/15 * * * *"

    # historical_only still has a sensor: it requests the initial import, then nothing.
    assert (sandbox.login_url, sandbox.partition_cron(), sandbox.scheduled) == (
        "https://test.salesforce.com", "0 */4 * * *", True)
    assert my_domain.login_url == "https://acme.my.salesforce.com"
    assert my_domain.start == datetime(2026, 3, 1, tzinfo=timezone.utc)


def test_emulator_gets_default_options_and_relative_state_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
projects: [demo]
integrations:
  - {id: a, project: demo, environment: emulator, start: 2026-01-01}
  - {id: b, project: demo, environment: emulator, start: 2026-01-01,
     emulator: {seed: 3, leads: 10, contacts: 0, campaign_members: 0, state_file: state/org.db}}
"""))
    first, second = config.integrations
    assert (first.emulator.seed, first.emulator.leads, first.emulator.state_file) == (7, 2000, None)
    assert (second.emulator.seed, second.emulator.leads) == (3, 10)
    assert second.emulator.state_file == tmp_path / "state" / "org.db"


def test_a_projects_api_budget_caps_every_integration_of_it(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, """
projects:
  - {id: shared_org, api_budget_percent: 60}
  - free
integrations:
  - {id: eager, project: shared_org, environment: emulator, start: 2026-01-01}
  - {id: modest, project: shared_org, environment: emulator, start: 2026-01-01, api_budget_percent: 40}
  - {id: alone, project: free, environment: emulator, start: 2026-01-01}
"""))
    assert {i.id: i.api_budget_percent for i in config.integrations} == {"eager": 60, "modest": 40, "alone": 90}
    with pytest.raises(ConfigError, match="api_budget_percent"):
        load_config(write(tmp_path, "projects: [{id: p, api_budget_percent: 0}]\n"))


@pytest.mark.parametrize(("frequency", "cron"), [
    (1, "* * * * *"), (5, "*/5 * * * *"), (30, "*/30 * * * *"), (60, "0 * * * *"),
    (120, "0 */2 * * *"), (720, "0 */12 * * *"), (1440, "0 0 * * *"), ("manual", "0 0 * * *"),
])
def test_partition_cron(frequency: int | str, cron: str) -> None:
    assert partition_cron(frequency) == cron


@pytest.mark.parametrize("frequency", [0, 7, 45, 90, 300, 2880, -5])
def test_partition_cron_refuses_frequencies_without_whole_windows(frequency: int) -> None:
    with pytest.raises(ValueError, match="cut a day into whole windows"):
        partition_cron(frequency)


def test_incomplete_integration_still_loads() -> None:
    integration = IntegrationConfig.model_validate({"id": "draft", "project": "demo", "start": "2026-01-01"})
    assert integration.environment is None and integration.objects == {} and integration.auth is None
    assert integration.login_url is None and integration.environment_kind is None
