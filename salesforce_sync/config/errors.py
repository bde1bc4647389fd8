"""Errors of the integrations config, worded so a data engineer can fix the YAML without reading code."""

from __future__ import annotations


class ConfigError(ValueError):
    """The integrations config cannot be used; the message names the file, integration and field."""


class SecretNotSetError(ConfigError):
    """A secret's environment variable is unset or empty when a sync needs it."""


class FieldProblem(ValueError):
    """Raised inside model validators to blame a sub-field rather than the whole model.

    The loader appends `loc` (a dotted name or a tuple of keys and list indexes) to pydantic's
    location, so the message reads `integration 'acme': auth.method: ...` although the check ran on
    the integration as a whole.
    """

    def __init__(self, loc: str | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc: tuple[str | int, ...] = tuple(loc.split(".")) if isinstance(loc, str) else loc
        self.message = message
