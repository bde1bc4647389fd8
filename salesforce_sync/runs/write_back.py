"""An integration's whole write-back, in order: each object's push (runs/push.py), the Lead conversions, the
campaign membership and the activities, under the integration's lease; what the CLI and the Dagster assets call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import (
    ACTIVITY,
    ACTIVITY_OBJECTS,
    IntegrationConfig,
    WriteBackConfig,
)
from salesforce_sync.runs.connection import connect
from salesforce_sync.runs.convert_leads import convert_leads
from salesforce_sync.runs.lease import acquire_lease
from salesforce_sync.runs.push import PushResult, Report, push_object
from salesforce_sync.runs.push_activities import push_activities
from salesforce_sync.runs.push_campaign_members import push_campaign_members
from salesforce_sync.salesforce.client import SalesforceClient
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.lease import LeaseHolder


def check_pushable(integration: IntegrationConfig) -> WriteBackConfig:
    """The integration's write_back, or a ConfigError saying why it cannot push."""
    if integration.write_back is None:
        raise ConfigError(f"integration '{integration.id}': write_back is not configured")
    if integration.environment is None:
        raise ConfigError(f"integration '{integration.id}': connection: environment is not configured, so there is "
                          "no org to push to")
    return integration.write_back


def push_integration(store: AudienceStore, integration: IntegrationConfig, *, holder: LeaseHolder | None,
                     objects: Sequence[str] | None = None, full: bool = False, dry_run: bool = False,
                     run_id: str | None = None, report: Report | None = None) -> list[PushResult]:
    """Push the integration's write-back objects (all, or `objects`), holding its lease unless a dry run (which
    writes nothing, so never waits for a sync)."""
    write_back = check_pushable(integration)
    activities = activity_objects(objects) if write_back.activities is not None else ()
    chosen = [o for o in write_back.pushed if o != ACTIVITY and (objects is None or o in objects)]
    for name in objects or ():
        if name not in write_back.pushed and not (activities and name in (ACTIVITY, *ACTIVITY_OBJECTS)):
            setting = {"LeadConversion": "objects.Lead.convert", "CampaignMember": "campaign_members",
                       ACTIVITY: "activities", **{o: "activities" for o in ACTIVITY_OBJECTS}}.get(name)
            missing = f"write_back.{setting} is not configured" if setting else f"write_back.objects has no {name}"
            raise ConfigError(f"integration '{integration.id}': {missing} (configured: {', '.join(write_back.pushed)})")
    lease = None if dry_run or holder is None else acquire_lease(store, integration.id, holder,
                                                                 wait=integration.lease_wait)
    try:
        with connect(integration) as client:
            options: dict[str, Any] = dict(full=full, dry_run=dry_run, run_id=run_id, report=report,
                                           confirm=lease.confirm if lease else None)
            results = [push_one(store, client, integration, name, **options) for name in chosen]
            if activities:
                results.append(push_one(store, client, integration, ACTIVITY, objects=activities, **options))
            return results
    finally:
        if lease is not None:
            lease.release()


def push_one(store: AudienceStore, client: SalesforceClient, integration: IntegrationConfig, name: str,
             **options: Any) -> PushResult:
    """Push one of `write_back.pushed`: an object's source, the Lead conversions, the campaign membership or the
    activities (`objects` in `options` then picks Task, Event or both)."""
    if name == ACTIVITY:
        return push_activities(store, client, integration, **options)
    if name == "LeadConversion":
        return convert_leads(store, client, integration, **options)
    if name == "CampaignMember":
        return push_campaign_members(store, client, integration, **options)
    return push_object(store, client, integration, name, **options)  # type: ignore[arg-type]


def activity_objects(objects: Sequence[str] | None) -> tuple[str, ...]:
    """The activity objects (Task, Event) a push of `objects` (all when None; `Activity` is both) writes."""
    if objects is None or ACTIVITY in objects:
        return ACTIVITY_OBJECTS
    return tuple(o for o in ACTIVITY_OBJECTS if o in objects)
