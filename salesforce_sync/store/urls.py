"""Turn a user-supplied store URL into the exact SQLAlchemy URL the store connects with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from salesforce_sync.home import sync_home
from salesforce_sync.store.errors import StoreInputError

_POSTGRES_DRIVER = "postgresql+psycopg2"
STORE_URL_ENV_VAR = "AUDIENCE_STORE_URL"


def configured_store_url(environ: Mapping[str, str] | None = None) -> str:
    """AUDIENCE_STORE_URL, else the embedded SQLite file `audience.db` under the sync home."""
    env = os.environ if environ is None else environ
    return env.get(STORE_URL_ENV_VAR) or f"sqlite:///{sync_home(env) / 'audience.db'}"


def normalize_store_url(raw_url: str) -> URL:
    """Accept sqlite:///path.db (relative or absolute, ~ expanded) or a PostgreSQL URL.

    A bare postgresql:// (or postgres://) gets the psycopg2 driver spelled out, because SQLAlchemy 2.1
    would otherwise pick psycopg 3, and the store's bulk load uses psycopg2's COPY support.
    """
    cleaned = raw_url.strip()
    if not cleaned:
        raise StoreInputError("audience store URL is empty; give sqlite:///path/to/store.db or postgresql://...")
    if cleaned.startswith("postgres://"):
        cleaned = "postgresql://" + cleaned.removeprefix("postgres://")
    try:
        url = make_url(cleaned)
    except ArgumentError as error:
        raise StoreInputError(f"audience store URL {_redacted(cleaned)!r} is not a database URL: {error}") from error

    if url.get_backend_name() == "postgresql":
        if url.drivername not in ("postgresql", _POSTGRES_DRIVER):
            raise StoreInputError(
                f"audience store URL uses driver {url.drivername!r}; the store needs psycopg2 ({_POSTGRES_DRIVER}://)"
            )
        return url.set(drivername=_POSTGRES_DRIVER)

    if url.get_backend_name() == "sqlite":
        if url.drivername != "sqlite":
            raise StoreInputError(f"audience store URL uses driver {url.drivername!r}; use plain sqlite:///path.db")
        if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
            raise StoreInputError(
                f"audience store URL {cleaned!r} has no database file; an in-memory store would lose every sync, "
                "give sqlite:///path/to/store.db"
            )
        return url.set(database=str(Path(url.database).expanduser().absolute()))

    raise StoreInputError(
        f"audience store URL scheme {url.drivername!r} is not supported; use sqlite:///path.db or postgresql://..."
    )


def _redacted(raw_url: str) -> str:
    """Hide a password before a URL goes into an error message."""
    try:
        return make_url(raw_url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"
