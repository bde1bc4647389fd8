"""Definitions built from the integrations config (SALESFORCE_SYNC_CONFIG, default: the packaged demo)."""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

from salesforce_sync.config.loader import load_config
from salesforce_sync.config.models import IntegrationConfig, SyncConfig
from salesforce_sync.config.status import missing_settings
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, build_integration_assets, sync_job_name
from salesforce_sync.dagster_defs.change_capture import build_change_capture_sensor, build_micro_sync_job
from salesforce_sync.dagster_defs.checks import build_integration_checks, build_preview_job
from salesforce_sync.dagster_defs.formulas import build_formula_refresh_job, build_formula_refresh_sensor
from salesforce_sync.dagster_defs.io_manager import AudienceStoreIOManager
from salesforce_sync.dagster_defs.people import build_people_definitions
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.dagster_defs.sensors import build_run_status_sensors, build_windows_sensor
from salesforce_sync.dagster_defs.write_back import build_write_back_definitions, source_specs
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


def freshness_sensor_name(integration_id: str) -> str:
    return f"freshness_{integration_id}"


def build_integration_definitions(integration: IntegrationConfig) -> dg.Definitions:
    """Everything one integration contributes, as one unit: its object assets and their health checks, the
    sync, health, preview and formula refresh jobs and the health schedule; with change capture in sensor mode its
    micro-sync job and change_capture sensor (in listener mode a standing `salesforce-sync listen` applies the
    events instead); when it syncs on a schedule also its windows sensor, its formula refresh sensor (unless
    formula_refresh_minutes is 0 or it is historical_only) and Dagster freshness checks (a materialization within
    twice the frequency) with the sensor that evaluates them. Empty for an integration with no objects.
    Resources are shared and added by build_definitions."""
    integration_assets = build_integration_assets(integration)
    if not integration_assets:
        return dg.Definitions()
    scheduled = integration.scheduled and not missing_settings(integration)
    # Only an integration synced on a schedule is expected to stay fresh.
    freshness = dg.build_last_update_freshness_checks(
        assets=integration_assets, lower_bound_delta=timedelta(minutes=2 * integration.window_minutes)
    ) if scheduled else []
    # Dagster's freshness sensor evaluates these; the jobs run only the integration's own health checks.
    freshness_selection = dg.AssetSelection.checks(*freshness)
    sync_job = dg.define_asset_job(
        name=sync_job_name(integration.id),
        selection=dg.AssetSelection.assets(*integration_assets) - freshness_selection,
        tags={INTEGRATION_TAG: integration.id},
        description=f"Sync every object of integration {integration.id!r} for the selected windows.")
    health_job = dg.define_asset_job(
        name=health_job_name(integration.id),
        selection=dg.AssetSelection.checks_for_assets(*integration_assets) - freshness_selection,
        tags={INTEGRATION_TAG: integration.id},
        description=f"Health checks of integration {integration.id!r}, without syncing.")
    formula_job = build_formula_refresh_job(integration)
    sensors, jobs = [], [health_job, build_preview_job(integration), sync_job, formula_job]
    if (integration.change_capture.enabled and integration.change_capture.mode == "sensor" and integration.active
            and not missing_settings(integration)):
        jobs.append(micro_sync := build_micro_sync_job(integration))
        sensors.append(build_change_capture_sensor(integration, micro_sync))
    if scheduled:
        sensors += [build_windows_sensor(integration, sync_job, integration_assets[0].partitions_def),
                    dg.build_sensor_for_freshness_checks(freshness_checks=freshness,
                                                         name=freshness_sensor_name(integration.id),
                                                         default_status=dg.DefaultSensorStatus.RUNNING)]
        if integration.formula_refresh_every is not None and integration.history != "historical_only":
            sensors.append(build_formula_refresh_sensor(integration, formula_job))
    return dg.Definitions(
        assets=integration_assets,
        asset_checks=[build_integration_checks(integration), *freshness],
        jobs=jobs,
        schedules=[dg.ScheduleDefinition(
            name=f"health_{integration.id}_schedule", job=health_job, cron_schedule=HEALTH_CRON,
            default_status=dg.DefaultScheduleStatus.RUNNING if integration.active else dg.DefaultScheduleStatus.STOPPED)],
        sensors=sensors,
    )


def build_definitions(config: SyncConfig) -> dg.Definitions:
    """Every integration's definitions merged, plus each project's people, the run-status sensors and the
    shared resources."""
    store = store_resource()
    shared = dg.Definitions(
        sensors=build_run_status_sensors({i.id: i for i in config.integrations}),
        resources={
            "salesforce": SalesforceResource(),
            "audience_store": store,
            "audience_store_io": AudienceStoreIOManager(store=store),
        },
    )
    merged = dg.Definitions.merge(*(build_integration_definitions(i) for i in config.integrations),
                                  *(build_write_back_definitions(i) for i in config.integrations),
                                  build_people_definitions(config), shared)
    defined = [key for asset in merged.assets or () for key in getattr(asset, "keys", ())]
    return dg.Definitions.merge(merged, dg.Definitions(assets=source_specs(config, defined)))


defs = build_definitions(load_config())
