"""Errors of the pure sync logic; messages name the integration, object, field and value."""

from __future__ import annotations


class SyncRuleError(ValueError):
    """A sync rule cannot become SOQL: unknown field, wrong operator for the field, or a bad value."""


class MappingError(ValueError):
    """A raw chunk cannot be mapped at all (a missing column, a record without Id or timestamp)."""
