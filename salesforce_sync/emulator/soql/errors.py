"""The one exception SOQL handling raises, carrying Salesforce's error code and message."""

from __future__ import annotations


class SoqlError(Exception):
    """A query Salesforce would reject: `error_code` (e.g. MALFORMED_QUERY) and its message."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


def query_error(error_code: str, description: str, soql: str, line: int, column: int) -> SoqlError:
    """A SoqlError whose message is Salesforce's echo block: the SOQL line, a caret, the position, the text."""
    lines = soql.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    caret = " " * max(column - 1, 0) + "^"
    return SoqlError(error_code, f"\n{text}\n{caret}\nERROR at Row:{line}:Column:{column}\n{description}")
