"""Definitions built from the integrations config (SALESFORCE_SYNC_CONFIG, default: the packaged demo)."""

from __future__ import annotations

import os

import dagster as dg

from salesforce_sync.config.loader import load_config
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.config.status import missing_settings
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, build_integration_assets, sync_job_name
from salesforce_sync.dagster_defs.checks import build_integration_checks, build_preview_job
from salesforce_sync.dagster_defs.io_manager import AudienceStoreIOManager
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.dagster_defs.sensors import build_run_status_sensors, build_schedule_sensor
from salesforce_sync.store.urls import STORE_URL_ENV_VAR, configured_store_url


def store_resource() -> AudienceStoreResource:
    """PostgreSQL (or any URL) from AUDIENCE_STORE_URL, read at run time so it never lands in run
    config; the embedded SQLite file when the variable is not set."""
    if os.environ.get(STORE_URL_ENV_VAR):
        return AudienceStoreResource(url=dg.EnvVar(STORE_URL_ENV_VAR))
    return AudienceStoreResource(url=configured_store_url())


HEALTH_CRON = "*/30 * * * *"


def health_job_name(integration_id: str) -> str:
    return f"health_{integration_id}"


def build_definitions(config: SyncConfig) -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    jobs = []
    schedules = []
    sensors = []
    sync_jobs = []
    store = store_resource()
    for integration in config.integrations:
        integration_assets = build_integration_assets(integration)
        if not integration_assets:
            continue
        assets.extend(integration_assets)
        checks.append(build_integration_checks(integration))
        sync_job = dg.define_asset_job(
            name=sync_job_name(integration.id), selection=dg.AssetSelection.assets(*integration_assets),
            tags={INTEGRATION_TAG: integration.id},
            description=f"Sync every object of integration {integration.id!r} for the selected windows.")
        sync_jobs.append(sync_job)
        if integration.scheduled and not missing_settings(integration):
            sensors.append(build_schedule_sensor(integration, sync_job, integration_assets[0].partitions_def))
        health_job = dg.define_asset_job(
            name=health_job_name(integration.id),
            selection=dg.AssetSelection.checks_for_assets(*integration_assets),
            tags={INTEGRATION_TAG: integration.id},
            description=f"Health checks of integration {integration.id!r}, without syncing.")
        jobs.extend([health_job, build_preview_job(integration)])
        schedules.append(dg.ScheduleDefinition(
            name=f"health_{integration.id}_schedule", job=health_job, cron_schedule=HEALTH_CRON,
            default_status=dg.DefaultScheduleStatus.RUNNING if integration.active else dg.DefaultScheduleStatus.STOPPED))
    jobs.extend(sync_jobs)
    sensors.extend(build_run_status_sensors({i.id: i for i in config.integrations}))
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "salesforce": SalesforceResource(),
            "audience_store": store,
            "audience_store_io": AudienceStoreIOManager(store=store),
        },
    )


defs = build_definitions(load_config())
