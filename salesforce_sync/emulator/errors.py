"""The one error type the emulator raises for anything Salesforce answers with an error body."""

from __future__ import annotations


class SalesforceApiError(Exception):
    """An error Salesforce would return: HTTP status, errorCode, message and (for DML) fields."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields or []

    def body(self) -> list[dict]:
        """The REST error body: always a JSON array."""
        entry: dict = {"message": self.message, "errorCode": self.error_code}
        if self.fields:
            entry["fields"] = self.fields
        return [entry]

    def record_error(self) -> dict:
        """The per-record error of sObject Collections, which says `statusCode`, not `errorCode`."""
        return {"statusCode": self.error_code, "message": self.message, "fields": self.fields}


def not_found() -> SalesforceApiError:
    return SalesforceApiError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_type(name: str) -> SalesforceApiError:
    return SalesforceApiError(
        400, "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure to "
        "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    )
