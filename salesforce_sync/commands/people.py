"""`salesforce-sync people`: how many people each project has, or one person (by email) and their records."""

from __future__ import annotations

from salesforce_sync.commands.common import NOTHING, open_store, render_table
from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import SyncConfig


def run_people(config: SyncConfig, project: str | None, *, email: str | None) -> int:
    projects = [p.id for p in config.projects]
    if project is not None and project not in projects:
        raise ConfigError(f"no project '{project}' (configured: {', '.join(projects)})")
    chosen = [project] if project else projects
    store = open_store()
    try:
        if email is None:
            rows = []
            for name in chosen:
                counts = store.people.counts(name)
                rows.append((name, str(counts.people), str(counts.records), str(counts.merged)))
            print(render_table(("PROJECT", "PEOPLE", "RECORDS", "MERGED"), rows))
            return 0
        for name in chosen:
            match = store.people.by_email(name, [email]).get(email)
            if match is None:
                continue
            print(f"person {match.person_id} in project {name}: {match.email or NOTHING}, "
                  f"{'unsubscribed' if match.unsubscribed else 'subscribed'}")
            rows = [(m.object_type, m.integration_id, m.salesforce_id, m.email or NOTHING,
                     ", ".join(flag for flag, on in (("primary", m.primary), ("converted", m.converted)) if on)
                     or NOTHING) for m in store.people.members(name, match.person_id)]
            print(render_table(("OBJECT", "INTEGRATION", "SALESFORCE ID", "EMAIL", "NOTE"), rows))
            return 0
    finally:
        store.close()
    where = f"project '{project}'" if project else "any project"
    print(f"no person in {where} has the email {email!r} (people are rebuilt by the audience/<project>/people asset)")
    return 1
