"""`salesforce-sync push`: write the audience's new and changed rows to Salesforce (or, with --dry-run, print what
would be written), and `salesforce-sync rejected`: the rows Salesforce (or our pre-check) refused, and why."""

from __future__ import annotations

import json
import uuid
from typing import Any

from salesforce_sync.commands.common import (
    NOTHING,
    find_integration,
    iso_utc,
    open_store,
    render_table,
    shorten,
)
from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import (
    ACTIVITY,
    ACTIVITY_OBJECTS,
    WRITE_BACK_EXTRAS,
    WRITE_BACK_OBJECTS,
    IntegrationConfig,
    SyncConfig,
)
from salesforce_sync.demo.prospects import ensure_demo_source
from salesforce_sync.runs.lease import cli_holder
from salesforce_sync.runs.push import PushResult
from salesforce_sync.runs.write_back import push_integration
from salesforce_sync.store.write_back import StoredOutcome
from salesforce_sync.sync.write_back import RowPlan


def run_push(config: SyncConfig, integration_id: str | None, *, object_type: str | None, dry_run: bool,
             full: bool) -> int:
    integrations = _write_back_integrations(config, integration_id)
    objects = None if object_type is None else [_object_name(object_type)]
    store = open_store()
    try:
        for integration in integrations:
            ensure_demo_source(store, integration)
            planned: list[tuple[str, RowPlan]] = []
            results = push_integration(store, integration, holder=cli_holder(), objects=objects, full=full,
                                       dry_run=dry_run, run_id=f"push-{uuid.uuid4().hex[:12]}", report=lambda name, plan: planned.append((name, plan)))
            if dry_run:
                _print_plans(integration, planned)
            _print_results(integration, results, dry_run=dry_run)
    finally:
        store.close()
    return 0


def run_rejected(config: SyncConfig, integration_id: str | None, *, object_type: str | None, limit: int,
                 as_json: bool) -> int:
    if integration_id is not None:
        find_integration(config, integration_id)
    store = open_store()
    try:
        stored = None if object_type is None else _object_name(object_type)
        rows = store.write_back.outcomes(integration_id, ACTIVITY if stored in ACTIVITY_OBJECTS else stored,
                                         outcome="rejected", limit=limit)
    finally:
        store.close()
    if as_json:
        print(json.dumps([_rejection_json(row) for row in rows], indent=2))
    elif not rows:
        print("no rejected rows")
    else:
        print(format_rejections(rows))
    return 0


def format_rejections(rows: list[StoredOutcome]) -> str:
    """One line per refused row: where, Salesforce's code and fields, when it is tried again, the message."""
    headers = ("INTEGRATION", "OBJECT", "KEY", "SALESFORCE ID", "CODE", "FIELDS", "RETRIED", "AT (UTC)", "MESSAGE")
    return render_table(headers, [(
        row.integration_id, row.object_type, row.source_key, row.salesforce_id or NOTHING, row.status_code or NOTHING,
        ",".join(row.fields) or NOTHING, _retried(row), iso_utc(row.at),
        " ".join((row.message or "").splitlines()),  # a pre-check's message says "found before sending"
    ) for row in rows])


def _retried(row: StoredOutcome) -> str:
    return "next push" if row.retryable else "when changed"


def _rejection_json(row: StoredOutcome) -> dict[str, Any]:
    return {"integration": row.integration_id, "object": row.object_type, "key": row.source_key,
            "salesforce_id": row.salesforce_id, "status_code": row.status_code, "message": row.message,
            "fields": list(row.fields), "found_before_sending": row.found_before_sending,
            "retryable": row.retryable, "attempts": row.attempts, "run_id": row.run_id, "at": iso_utc(row.at)}


def _print_plans(integration: IntegrationConfig, planned: list[tuple[str, RowPlan]]) -> None:
    print(f"integration {integration.id}: dry run, nothing is written")
    if not planned:
        print("no new or changed rows")
        return
    print(render_table(("OBJECT", "ACTION", "KEY", "SALESFORCE ID", "DETAIL"), [
        (name, plan.action, plan.key, plan.salesforce_id or NOTHING, _detail(plan))
        for name, plan in planned]))


def _detail(plan: RowPlan) -> str:
    if plan.action in ("skip", "reject"):
        return " ".join(part for part in (plan.status_code, plan.message) if part)
    values = {name: value for name, value in plan.values.items() if name != "Id"}
    matched = f"matched by {plan.matched_by}; " if plan.matched_by else ""
    return matched + (", ".join(f"{name}={shorten(str(value), 40) if value is not None else 'null'}"
                                for name, value in values.items()) or NOTHING)


def _print_results(integration: IntegrationConfig, results: list[PushResult], *, dry_run: bool) -> None:
    verb = "would push" if dry_run else "pushed"
    rows = [(r.object_type, *(str(r.counts[k]) for k in ("created", "updated", "unchanged", "skipped", "rejected")),
             str(r.api_calls), f"{r.duration_seconds:.1f}") for r in results]
    print(f"integration {integration.id} (project {integration.project}): {verb}")
    print(render_table(("OBJECT", "CREATED", "UPDATED", "UNCHANGED", "SKIPPED", "REJECTED", "API CALLS", "SECONDS"),
                       rows))
    if not dry_run and any(r.counts["rejected"] for r in results):
        print(f"rejected rows and why: salesforce-sync rejected {integration.id}")


def _write_back_integrations(config: SyncConfig, integration_id: str | None) -> list[IntegrationConfig]:
    if integration_id is not None:
        integration = find_integration(config, integration_id)
        if integration.write_back is None:
            raise ConfigError(f"integration '{integration.id}': write_back is not configured, so there is nothing "
                              "to push")
        return [integration]
    found = [i for i in config.integrations if i.write_back is not None and i.active]
    if not found:
        raise ConfigError("no active integration has a write_back section")
    return found


def _object_name(name: str) -> str:
    names = (*WRITE_BACK_OBJECTS, *WRITE_BACK_EXTRAS, ACTIVITY, *ACTIVITY_OBJECTS)
    for known in names:
        if known.lower() == name.lower():
            return known
    raise ConfigError(f"--object {name!r} is not one of {', '.join(names)}")
