"""`salesforce-sync preview`: prints the records each object's sync rules select now, and the SOQL."""

from __future__ import annotations

from salesforce_sync.commands.common import find_integration, render_table
from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import OBJECT_TYPES, IntegrationConfig, ObjectType, SyncConfig
from salesforce_sync.runs.preview import not_configured, preview_counts
from salesforce_sync.runs.connection import connect


def run_preview(config: SyncConfig, integration_id: str, object_type: str | None) -> int:
    integration = find_integration(config, integration_id)
    if integration.environment is None:
        raise ConfigError(f"integration '{integration.id}': connection: environment is not configured, "
                          "so there is no org to count records in")
    objects = integration.object_types if object_type is None else (_object_type(integration, object_type),)
    if not objects:
        raise ConfigError(f"integration '{integration.id}': no objects are selected (objects: "
                          f"{', '.join(OBJECT_TYPES)})")
    with connect(integration) as client:
        results = preview_counts(client, integration, objects)
    print(f"integration {integration.id} (project {integration.project}): records the sync rules select now")
    print(render_table(("OBJECT", "RECORDS", "SOQL"), [(r.object_type, str(r.count), r.soql) for r in results]))
    return 0


def _object_type(integration: IntegrationConfig, name: str) -> ObjectType:
    for object_type in integration.object_types:
        if object_type.lower() == name.lower():
            return object_type
    raise not_configured(integration, name)
