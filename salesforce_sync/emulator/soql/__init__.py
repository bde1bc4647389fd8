"""The emulator's SOQL engine: parse a query, check it against the org's schema, compile it to SQLite."""

from salesforce_sync.emulator.soql.compiler import (
    CompiledQuery,
    SelectedColumn,
    SelectedRelationship,
    compile_query,
)
from salesforce_sync.emulator.soql.errors import SoqlError
from salesforce_sync.emulator.soql.folding import register_functions

__all__ = ["CompiledQuery", "SelectedColumn", "SelectedRelationship", "SoqlError", "compile_query",
           "register_functions"]
