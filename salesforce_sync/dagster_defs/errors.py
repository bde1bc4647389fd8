"""The error a person can act on inside the error Dagster records for a failed step."""

from __future__ import annotations

from dagster._utils.error import SerializableErrorInfo

DAGSTER_WRAPPER_ERRORS = frozenset({"DagsterExecutionStepExecutionError", "DagsterExecutionHandleOutputError",
                                    "DagsterExecutionLoadInputError", "DagsterResourceFunctionError"})


def user_error_text(error: SerializableErrorInfo) -> str:
    """The exception's own text, without its class name and without Dagster's wrapper around errors
    raised in asset, IO manager or resource code (the original is the wrapper's cause)."""
    while error.cls_name in DAGSTER_WRAPPER_ERRORS and error.cause is not None:
        error = error.cause
    text = error.message.strip()
    qualified_name, separator, rest = text.partition(": ")
    return rest if separator and qualified_name.rsplit(".", 1)[-1] == error.cls_name else text
