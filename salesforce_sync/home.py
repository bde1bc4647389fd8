"""Where salesforce-sync keeps local state: embedded emulator orgs, the default SQLite store, a local
Dagster home. SALESFORCE_SYNC_HOME, default `.salesforce-sync` in the working directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME_ENV_VAR = "SALESFORCE_SYNC_HOME"


def sync_home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(HOME_ENV_VAR) or ".salesforce-sync").resolve()
