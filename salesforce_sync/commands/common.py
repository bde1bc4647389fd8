"""What the operator commands share: the audience store, integration lookup, UTC dates, aligned tables."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from salesforce_sync.config.errors import ConfigError
from salesforce_sync.config.models import IntegrationConfig, SyncConfig
from salesforce_sync.config.status import missing_settings
from salesforce_sync.store import AudienceStore
from salesforce_sync.store.urls import configured_store_url

NOTHING = "-"


def open_store() -> AudienceStore:
    """The store the sync writes: AUDIENCE_STORE_URL, else the SQLite file under the sync home."""
    store = AudienceStore(configured_store_url())
    try:
        store.create_schema()
    except Exception:
        store.close()
        raise
    return store


def find_integration(config: SyncConfig, integration_id: str) -> IntegrationConfig:
    """The configured integration, or a ConfigError naming it and listing the configured ones."""
    try:
        return config.integration(integration_id)
    except KeyError as missing:
        raise ConfigError(str(missing.args[0])) from None


def runnable_integrations(config: SyncConfig, integration_ids: Sequence[str], not_done: str
                          ) -> Iterator[IntegrationConfig]:
    """The named integrations (all when none are named) that can run; each Incomplete or Inactive one is named
    with why and `not_done` ("not synced") instead."""
    chosen = [find_integration(config, i) for i in integration_ids] if integration_ids else list(config.integrations)
    for integration in chosen:
        missing = missing_settings(integration)
        if missing:
            print(f"{integration.id}: Incomplete, {not_done}: {'; '.join(missing)}")
        elif not integration.active:
            print(f"{integration.id}: Inactive (active: false), {not_done}")
        else:
            yield integration


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception under `err` (socket, DNS or TLS error under urllib3's and requests' wrappers)."""
    seen = {id(err)}
    while True:
        inner = err.__cause__ or getattr(err, "reason", None) or (None if err.__suppress_context__ else err.__context__)
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return err
        seen.add(id(inner))
        err = inner


def first_line(text: str) -> str:
    """The first non-blank line, stripped."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


def iso_utc(moment: datetime | None) -> str:
    """`2026-11-23T09:22:03Z`; NOTHING for no date. Naive datetimes are taken as UTC."""
    if moment is None:
        return NOTHING
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec="seconds").replace("+00:00", "Z")


def shorten(text: str | None, width: int = 60) -> str:
    """One line of at most `width` characters: line breaks become spaces, the tail becomes `...`."""
    if not text:
        return NOTHING
    line = " ".join(text.splitlines())
    return line if len(line) <= width else line[: width - 3] + "..."


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last column is not padded, so long text can run on."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        lines.append("  ".join([*cells, str(row[-1])]).rstrip())
    return "\n".join(lines)
