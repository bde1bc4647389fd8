"""Load `integrations.yaml` and turn pydantic's errors into messages naming file, integration and field."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from salesforce_sync.config.errors import ConfigError, FieldProblem
from salesforce_sync.config.models import SyncConfig

CONFIG_ENV_VAR = "SALESFORCE_SYNC_CONFIG"
DEMO_CONFIG_PATH = Path(__file__).resolve().parent.parent / "demo" / "integrations.yaml"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file named by SALESFORCE_SYNC_CONFIG, else the packaged demo config."""
    env = os.environ if environ is None else environ
    value = env.get(CONFIG_ENV_VAR, "").strip()
    return Path(value) if value else DEMO_CONFIG_PATH


def load_config(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> SyncConfig:
    """Read and validate the config file (`path`, else `config_path(environ)`); raises ConfigError."""
    source = Path(path) if path is not None else config_path(environ)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f" (set by {CONFIG_ENV_VAR})" if path is None and source != DEMO_CONFIG_PATH else ""
        raise ConfigError(f"{source}: config file not found{hint}") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror}") from None
    return parse_config(text, source_name=str(source), base_dir=source.resolve().parent)


def parse_config(text: str, *, source_name: str, base_dir: Path | None = None) -> SyncConfig:
    """Validate YAML text; relative file paths in it are taken relative to `base_dir`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source_name}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source_name}: expected a mapping with 'projects' and 'integrations' at the top")
    try:
        return SyncConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        # `from None`: the pydantic error echoes inputs, which may include a pasted secret.
        lines = [format_problem(error, data, source_name) for error in exc.errors()]
        raise ConfigError("\n".join(dict.fromkeys(lines))) from None


def format_problem(error: Mapping[str, Any], data: Mapping[str, Any], source_name: str) -> str:
    """`<file>: integration '<id>': <dotted.field[index]>: <what is wrong>` for one pydantic error."""
    loc: list[str | int] = list(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        loc += cause.loc
        message = cause.message
    else:
        message = _describe(error, secret="auth" in loc)
    prefix = source_name
    if len(loc) >= 2 and loc[0] == "integrations" and isinstance(loc[1], int):
        prefix += f": {_integration_name(data, loc[1])}"
        loc = loc[2:]
    field = _render_loc(loc)
    return f"{prefix}: {field}: {message}" if field else f"{prefix}: {message}"


def _integration_name(data: Mapping[str, Any], index: int) -> str:
    integrations = data.get("integrations")
    entry = integrations[index] if isinstance(integrations, list) and index < len(integrations) else None
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return f"integration '{entry['id']}'"
    return f"integration #{index + 1} (no id)"


def _render_loc(loc: list[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "[key]":
            out += f".{part}" if out else part
    return out


def _describe(error: Mapping[str, Any], *, secret: bool) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        return f"{value!r} is not one of {', '.join(choices)}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    message = str(error["msg"])
    if not secret and isinstance(value, (str, int, float, bool)):
        message += f", got {value!r}"
    return message
