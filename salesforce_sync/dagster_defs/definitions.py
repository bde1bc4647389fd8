"""Definitions built from the integrations config (SALESFORCE_SYNC_CONFIG, default: the packaged demo)."""

from __future__ import annotations

import os

import dagster as dg

from salesforce_sync.config.loader import load_config
from salesforce_sync.config.models import SyncConfig
from salesforce_sync.dagster_defs.assets import INTEGRATION_TAG, build_integration_assets
from salesforce_sync.dagster_defs.io_manager import AudienceStoreIOManager
from salesforce_sync.dagster_defs.resources import AudienceStoreResource, SalesforceResource
from salesforce_sync.salesforce.connection import sync_home

STORE_URL_ENV_VAR = "AUDIENCE_STORE_URL"


def default_store_url() -> str:
    return f"sqlite:///{sync_home() / 'audience.db'}"


def store_resource() -> AudienceStoreResource:
    """PostgreSQL (or any URL) from AUDIENCE_STORE_URL, read at run time so it never lands in run
    config; the embedded SQLite file when the variable is not set."""
    if os.environ.get(STORE_URL_ENV_VAR):
        return AudienceStoreResource(url=dg.EnvVar(STORE_URL_ENV_VAR))
    return AudienceStoreResource(url=default_store_url())


def sync_job_name(integration_id: str) -> str:
    return f"sync_{integration_id}"


def build_definitions(config: SyncConfig) -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    jobs = []
    for integration in config.integrations:
        integration_assets = build_integration_assets(integration)
        if not integration_assets:
            continue
        assets.extend(integration_assets)
        jobs.append(dg.define_asset_job(
            name=sync_job_name(integration.id), selection=dg.AssetSelection.assets(*integration_assets),
            tags={INTEGRATION_TAG: integration.id},
            description=f"Sync every object of integration {integration.id!r} for the selected windows."))
    store = store_resource()
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        resources={
            "salesforce": SalesforceResource(),
            "audience_store": store,
            "audience_store_io": AudienceStoreIOManager(store=store),
        },
    )


defs = build_definitions(load_config())
