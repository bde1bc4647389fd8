"""Preview counts: how many records each object's sync rules select right now, and the SOQL.

The count is what a full sync would store as live people: the same compiled rules, `query` (not
`queryAll`, so records in the recycle bin are not counted), and no window bounds, except that a
`forward_only` integration never reads records modified before its start (less the overlap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import IntegrationConfig, ObjectType
from salesforce_sync.runs.health import describe_for, require_budget
from salesforce_sync.runs.window import rules_where
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.sync.budget import describe_calls
from salesforce_sync.sync.soql import soql_datetime
from salesforce_sync.sync.windows import HISTORICAL_MODES


class PreviewCount(NamedTuple):
    object_type: ObjectType
    soql: str
    count: int


def preview_soql(integration: IntegrationConfig, object_type: ObjectType, rules_where: str | None) -> str:
    """`SELECT COUNT() FROM <object>` with the compiled rules and, for forward_only, the start bound."""
    conditions = []
    if integration.history not in HISTORICAL_MODES:
        start = integration.start - integration.overlap
        conditions.append(f"{integration.cursor_field} >= {soql_datetime(start)}")
    if rules_where:
        conditions.append(f"({rules_where})" if conditions else rules_where)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT COUNT() FROM {object_type}{where}"


def preview_counts(client: SalesforceClient, integration: IntegrationConfig,
                   objects: Sequence[ObjectType]) -> list[PreviewCount]:
    """Count the records the sync rules select, per object; the rule fields are typed from the org's describes.
    Within the integration's API budget: a preview that would pass it raises SyncDeferred before its calls."""
    results = []
    for object_type in objects:
        if object_type not in integration.object_types:
            raise not_configured(integration, object_type)
        rule_paths = integration.rule_fields(object_type)
        require_budget(client, integration, describe_calls(rule_paths) + 1, f"the {object_type} preview")
        where = rules_where(integration, object_type, describe_for(client, object_type, rule_paths))
        soql = preview_soql(integration, object_type, where)
        results.append(PreviewCount(object_type, soql, client.count(soql, include_deleted=False)))
    return results


def not_configured(integration: IntegrationConfig, name: str) -> ConfigError:
    return ConfigError(f"integration '{integration.id}': object '{name}' is not configured "
                       f"(configured: {', '.join(integration.object_types) or 'none'})")
