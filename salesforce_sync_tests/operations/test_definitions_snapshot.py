"""What the README promises to run in Dagster for the demo config, by name: every asset key, check, job, sensor
and schedule. An accidental rename (or a definition added or lost) fails here; change EXPECTED together with the
README."""

from __future__ import annotations

from pathlib import Path


import salesforce_sync
from salesforce_sync.config.loader import load_config
from salesforce_sync.config.models import ChangeCaptureConfig
from salesforce_sync.dagster_defs.definitions import build_definitions

DEMO_CONFIG = Path(salesforce_sync.__file__).parent / "demo" / "integrations.yaml"
OBJECTS = ("Account", "CampaignMember", "Contact", "Lead", "Opportunity")
WRITE_BACK = ("Activity", "CampaignMember", "Lead", "LeadConversion")
HEALTH_CHECKS = ("api_limits", "clock_skew", "credentials", "field_mappings", "formula_freshness", "schema_drift",
                 "staleness")
EXPECTED = {
    "assets": ["audience/demo/audience_activities", "audience/demo/audience_prospects", "audience/demo/people", *(f"salesforce/demo_org/{o}" for o in OBJECTS),
               *(f"salesforce/demo_org/write_back/{o}" for o in WRITE_BACK)],
    "checks": sorted([*(f"salesforce/demo_org/{o}:{c}" for o in OBJECTS for c in (*HEALTH_CHECKS, "freshness_check")),
                      *(f"salesforce/demo_org/write_back/{o}:write_back_rejections" for o in WRITE_BACK)]),
    "jobs": ["formula_refresh_demo_org", "health_demo_org", "preview_demo_org", "sync_demo_org",
             "write_back_demo_org"],
    "sensors": ["freshness_demo_org", "people_automation", "refresh_demo_org_formulas", "sync_demo_org_windows",
                "sync_failure_log", "sync_success_status"],
    "schedules": ["health_demo_org_schedule"],
}


def test_the_demo_config_defines_exactly_what_the_readme_promises() -> None:
    repository = build_definitions(load_config(DEMO_CONFIG)).get_repository_def()
    found = {
        "assets": sorted(key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()),
        "checks": sorted(f"{key.asset_key.to_user_string()}:{key.name}"
                         for key in repository.asset_graph.asset_check_keys),
        "jobs": sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")),
        "sensors": sorted(sensor.name for sensor in repository.sensor_defs),
        "schedules": sorted(schedule.name for schedule in repository.schedule_defs),
    }
    assert found == EXPECTED


def test_change_capture_adds_its_sensor_job_and_check() -> None:
    config = load_config(DEMO_CONFIG)
    enabled = config.integrations[0].model_copy(update={"change_capture": ChangeCaptureConfig(enabled=True)})
    repository = build_definitions(config.model_copy(update={"integrations": (enabled,)})).get_repository_def()
    assert sorted(sensor.name for sensor in repository.sensor_defs) == sorted(
        [*EXPECTED["sensors"], "change_capture_demo_org"])
    assert sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")) == sorted(
        [*EXPECTED["jobs"], "micro_sync_demo_org"])
    checks = {f"{key.asset_key.to_user_string()}:{key.name}" for key in repository.asset_graph.asset_check_keys}
    assert checks - set(EXPECTED["checks"]) == {f"salesforce/demo_org/{o}:change_capture" for o in OBJECTS}


def test_change_capture_in_listener_mode_keeps_its_check_but_defines_no_sensor_or_job() -> None:
    config = load_config(DEMO_CONFIG)
    listener = ChangeCaptureConfig(enabled=True, mode="listener")
    enabled = config.integrations[0].model_copy(update={"change_capture": listener})
    repository = build_definitions(config.model_copy(update={"integrations": (enabled,)})).get_repository_def()
    assert sorted(sensor.name for sensor in repository.sensor_defs) == EXPECTED["sensors"]
    assert sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")) == EXPECTED["jobs"]
    checks = {f"{key.asset_key.to_user_string()}:{key.name}" for key in repository.asset_graph.asset_check_keys}
    assert checks - set(EXPECTED["checks"]) == {f"salesforce/demo_org/{o}:change_capture" for o in OBJECTS}


def test_the_readme_names_every_check_job_sensor_and_schedule_pattern() -> None:
    readme = (Path(salesforce_sync.__file__).parent.parent / "README.md").read_text()
    for name in (*HEALTH_CHECKS, "freshness_check", "health_<integration>", "preview_<integration>",
                 "sync_<integration>", "sync_<integration>_windows", "freshness_<integration>", "sync_failure_log",
                 "sync_success_status", "health_<integration>_schedule", "salesforce/<integration>/<object>",
                 "audience/<project>/people", "people_automation", "salesforce/<integration>/write_back/<Object>",
                 "salesforce/<integration>/write_back/Activity",
                 "write_back_rejections", "write_back_<integration>", "formula_refresh_<integration>",
                 "refresh_<integration>_formulas", "change_capture", "change_capture_<integration>",
                 "micro_sync_<integration>"):
        assert f"`{name}`" in readme, name
