"""Rebuild a project's people from its live synced records: read them in key order, group them
(sync.identity), replace the project's people in one transaction."""

from __future__ import annotations

from salesforce_sync.store import AudienceStore
from salesforce_sync.store.people import PeopleCounts
from salesforce_sync.sync.identity import group_people, identity_record, link_properties


def rebuild_people(store: AudienceStore, project: str, *,
                   dotless_domains: frozenset[str] = frozenset()) -> PeopleCounts:
    """The project's people rebuilt from scratch; returns how many people and member records it now has."""
    names = link_properties()
    records = (identity_record(r.external_id, r.integration_id, r.object_type, r.email, r.unsubscribed,
                               r.modified_at, r.links, dotless_domains=dotless_domains) for r in store.people.live_records(project, names))
    return store.people.replace(project, group_people(records))
