"""The status badge of an integration, as the marketing tool shows it, and what blocks it from syncing."""

from __future__ import annotations

from typing import Literal

from salesforce_sync.config.models import OBJECT_TYPES, IntegrationConfig

Badge = Literal["Incomplete", "Inactive", "Error", "Active"]


def missing_settings(integration: IntegrationConfig) -> list[str]:
    """What still has to be configured before the integration can sync; empty when complete.

    Connection = environment plus auth (the emulator needs no auth). Every selected object needs its
    `sync_rules` key (`rules: []` means all records) and its `field_mappings` key (`[]` keeps the
    default mappings).
    """
    missing: list[str] = []
    if integration.environment is None:
        missing.append("connection: environment")
    if integration.auth is None and integration.environment_kind != "emulator":
        missing.append("connection: auth")
    if not integration.objects:
        missing.append(f"objects: select at least one of {', '.join(OBJECT_TYPES)}")
    for object_type in integration.object_types:
        settings = integration.objects[object_type]
        if settings.sync_rules is None:
            missing.append(f"objects.{object_type}.sync_rules")
        if settings.field_mappings is None:
            missing.append(f"objects.{object_type}.field_mappings")
    return missing


def integration_status(integration: IntegrationConfig, last_sync_failed: bool) -> tuple[Badge, list[str]]:
    """(badge, missing): Incomplete (and what is missing) > Inactive > Error (last sync failed) > Active."""
    missing = missing_settings(integration)
    if missing:
        return "Incomplete", missing
    if not integration.active:
        return "Inactive", []
    if last_sync_failed:
        return "Error", []
    return "Active", []
