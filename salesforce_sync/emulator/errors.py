"""The one error type the emulator raises for anything Salesforce answers with an error body."""

from __future__ import annotations

from typing import Any


class SalesforceApiError(Exception):
    """An error Salesforce would return: HTTP status, errorCode, message, (for DML) fields, and any further
    keys of the error entry (a duplicate rule's `duplicateResut`)."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields or []
        self.extra = extra or {}

    def body(self) -> list[dict]:
        """The REST error body: always a JSON array."""
        entry: dict = {**self.extra, "message": self.message, "errorCode": self.error_code}
        if self.fields:
            entry["fields"] = self.fields
        return [entry]

    def record_error(self) -> dict:
        """The per-record error of sObject Collections, which says `statusCode`, not `errorCode`."""
        return {**self.extra, "statusCode": self.error_code, "message": self.message, "fields": self.fields}


def bulk_error_cell(error: dict[str, Any]) -> str:
    """A per-record error as Bulk 2.0's `sf__Error` cell: `CODE:message:Field1,Field2 --`, or `CODE:message:--`."""
    fields = ",".join(error.get("fields") or [])
    return f"{error['statusCode']}:{error['message']}:{fields + ' ' if fields else ''}--"


def not_found() -> SalesforceApiError:
    return SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_type(name: str) -> SalesforceApiError:
    return SalesforceApiError(
        400, "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )
