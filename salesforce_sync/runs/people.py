"""Rebuild a project's people from its live synced person records (Leads, Contacts, CampaignMembers; never
Accounts, Opportunities or Campaigns): read them in key order, group them (sync.identity), replace the
project's people in one transaction; skipped when no person record changed since the last build."""

from __future__ import annotations

from salesforce_sync.config.models import PERSON_OBJECTS
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.people import PeopleCounts
from salesforce_sync.sync.identity import IDENTITY_VERSION, group_people, identity_record, link_properties


def rebuild_people(store: AudienceStore, project: str, *, force: bool = False,
                   dotless_domains: frozenset[str] = frozenset()) -> PeopleCounts:
    """The project's people rebuilt from scratch, unless the records, the grouping rules and the options are
    those of the last build (then its counts, `rebuilt` False) and `force` is not set."""
    # Taken before the records are read: a write racing the read moves it past the stamp, so it is rebuilt again.
    stamp = store.people.records_stamp(project, PERSON_OBJECTS)
    source = f"{stamp}|{IDENTITY_VERSION}|{','.join(sorted(dotless_domains))}"
    last = store.people.last_build(project)
    if last is not None and last[0] == source and not force:
        return last[1]
    names = link_properties()
    records = (identity_record(r.external_id, r.integration_id, r.object_type, r.email, r.unsubscribed,
                               r.modified_at, r.links, dotless_domains=dotless_domains) for r in
               store.people.live_records(project, PERSON_OBJECTS, names))
    return store.people.replace(project, group_people(records), source=source)
