"""SOQL syntax tree + the org's schema -> SQLite SQL with bound parameters.

Storage contract (shared with the org store): one table per object named by its API name, one column
per stored field; datetimes as epoch milliseconds, dates as 'YYYY-MM-DD', booleans 0/1, ids 18-char,
empty text as NULL, soft-deleted rows flagged `IsDeleted = 1`.

SOQL has two-valued logic: a comparison with a null field is simply false, so `!=`, NOT IN and EXCLUDES
match nulls, and NOT turns SQL's unknown into false before negating.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from salesforce_sync.emulator.ids import canonical_id
from salesforce_sync.emulator.schema import FieldDef, ObjectDef, OrgSchema
from salesforce_sync.emulator.soql.errors import SoqlError, query_error
from salesforce_sync.emulator.soql.folding import FOLD_FUNCTION, LIKE_FUNCTION, may_fold_to
from salesforce_sync.emulator.soql.literals import (
    DateRange,
    decode_string,
    parse_date,
    parse_datetime_ms,
    relative_range,
)
from salesforce_sync.emulator.soql.syntax import (
    AggregateCall,
    Aliased,
    Comparison,
    Condition,
    CountCall,
    FieldPath,
    FieldsCall,
    Junction,
    Literal,
    Negation,
    ObjectRef,
    Query,
    SoqlProblem,
    parse,
)

MAX_SOQL_LENGTH = 100_000
MAX_SEMI_JOINS = 2
SEMI_JOIN_UNSUPPORTED_OBJECTS = ("Task", "Event")
MAX_OFFSET = 2000
MAX_RELATIONSHIP_LEVELS = 5
FIELDS_FUNCTION_MAX_LIMIT = 200
ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country")

_NO_SUCH_COLUMN = ("No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, "
                   "be sure to append the '__c' after the custom field name. Please reference your WSDL or "
                   "the describe call for the appropriate names.")
_NO_SUCH_RELATIONSHIP = ("Didn't understand relationship '{name}' in field path. If you are attempting to use a "
                         "custom relationship, be sure to append the '__r' after the custom relationship name. "
                         "Please reference your WSDL or the describe call for the appropriate names.")
_NO_SUCH_OBJECT = ("sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure "
                   "to append the '__c' after the entity name. Please reference your WSDL or the describe call "
                   "for the appropriate names.")
_SEMI_JOIN_NESTED = ("Semi join sub-selects are only allowed at the top level WHERE expressions and not in nested "
                     "WHERE expressions.")
_FILTER_TYPES = {"text": "string", "bool": "boolean", "int": "integer", "real": "double", "datetime": "dateTime",
                 "date": "date"}
_ID_TYPES = ("id", "reference")


@dataclass(frozen=True)
class SelectedColumn:
    """One selected field: its output name, definition, relationship path and slots in a page_sql row.

    An address has five slots (Street, City, State, PostalCode, Country; -1 where the org lacks one).
    """

    name: str
    field: FieldDef
    relationship_path: tuple[str, ...]
    slots: tuple[int, ...]


@dataclass(frozen=True)
class SelectedRelationship:
    """A parent record reached by a selected path: REST nests its fields under `path[-1]`."""

    path: tuple[str, ...]
    type_label: str  # the parent's object name, or "Name" for a polymorphic lookup
    id_slot: int  # slot of the referencing id in a page_sql row; NULL means an empty lookup


@dataclass(frozen=True)
class CompiledQuery:
    """A SOQL query ready to run against the org's SQLite database.

    `ids_sql` + `params` return matching rowids in result order; `page_sql` takes one parameter, a JSON
    array of rowids, and returns their rows in that order. `count_sql` + `count_params` return one row:
    the matching row count.

    An aggregate query (aggregate functions or GROUP BY) has its rows, one per group, from `aggregate_sql` +
    `aggregate_params`, `columns` naming their AggregateResult keys in order; it has no `ids_sql` or `page_sql`.
    """

    object_name: str
    count_only: bool
    aggregate: bool
    column_names: tuple[str, ...]
    columns: tuple[SelectedColumn, ...]
    relationships: tuple[SelectedRelationship, ...]
    id_slot: int
    ids_sql: str
    params: tuple[Any, ...]
    page_sql: str
    count_sql: str
    count_params: tuple[Any, ...]
    selects_compound: bool
    uses_offset: bool
    aggregate_sql: str = ""
    aggregate_params: tuple[Any, ...] = ()

    def bulk_unsupported_reason(self) -> str | None:
        """Why Bulk API 2.0 would refuse this query, in Salesforce's words; None if Bulk can run it."""
        if self.selects_compound:
            return "Selecting compound data not supported in Bulk Query"
        if self.count_only or self.aggregate:
            return "Aggregate queries are not supported in Bulk Query"
        if self.uses_offset:
            return "OFFSET clause is not supported in Bulk Query"
        return None


def compile_query(soql: str, schema: OrgSchema, *, include_deleted: bool, now: datetime) -> CompiledQuery:
    """Parse and compile `soql`; rejected queries raise SoqlError with Salesforce's code and echo block."""
    if len(soql) > MAX_SOQL_LENGTH:
        raise SoqlError("MALFORMED_QUERY", f"SOQL statements cannot be longer than {MAX_SOQL_LENGTH:,} characters; "
                                           f"this one has {len(soql):,}")
    try:
        return _Compiler(schema, include_deleted, now).compile(parse(soql))
    except SoqlProblem as problem:
        raise query_error(problem.error_code, problem.description, soql, problem.line, problem.column) from None


def quote(name: str) -> str:
    """A SQLite identifier for a schema name."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(eq=False)
class _Relationship:
    """A parent lookup joined into a query: one LEFT JOIN per emulated target object."""

    names: tuple[str, ...]
    targets: list[tuple[ObjectDef, str]]
    reference_sql: str
    polymorphic: bool
    parent: _Relationship | None
    join_sql: str

    @property
    def type_label(self) -> str:
        return "Name" if self.polymorphic else self.targets[0][0].name


@dataclass(frozen=True)
class _Resolved:
    """A field path resolved: its SQL, definition, output name, and the object (and alias) holding it."""

    sql: str
    field: FieldDef
    name: str
    relationship: _Relationship | None
    object: ObjectDef
    alias: str


class _Scope:
    """Name resolution for one FROM object (the query or a semi-join subquery) and the joins it needs."""

    def __init__(self, compiler: _Compiler, obj: ObjectDef) -> None:
        self.compiler = compiler
        self.object = obj
        self.alias = compiler.new_alias()
        self.relationships: dict[tuple[str, ...], _Relationship] = {}

    def resolve(self, path: FieldPath, used: set[_Relationship]) -> _Resolved:
        """The SQL expression and definition of `path`, adding the joins it needs to `used`."""
        if len(path.names) - 1 > MAX_RELATIONSHIP_LEVELS:
            raise SoqlProblem("MALFORMED_QUERY",
                              f"Cannot follow more than {MAX_RELATIONSHIP_LEVELS} levels of relationships: "
                              f"{path.text}", path.line, path.column)
        relationship = None
        for name in path.names[:-1]:
            relationship = self._join(relationship, name, path)
        *_, name = path.names
        if relationship is None:
            found = self.object.field(name)
            if found is None:
                raise SoqlProblem("INVALID_FIELD", _NO_SUCH_COLUMN.format(name=name, entity=self.object.name),
                                  path.line, path.column)
            return self.own_field(found, used)
        node: _Relationship | None = relationship
        while node is not None:
            used.add(node)
            node = node.parent
        having = [(obj, alias, obj.field(name)) for obj, alias in relationship.targets if obj.field(name)]
        if not having:
            raise SoqlProblem("INVALID_FIELD", _NO_SUCH_COLUMN.format(name=name, entity=relationship.type_label),
                              path.line, path.column)
        found = having[0][2]
        expressions = [f"{alias}.{quote(f.name)}" for _obj, alias, f in having]
        sql = expressions[0] if len(expressions) == 1 else f"COALESCE({', '.join(expressions)})"
        return _Resolved(sql, found, ".".join((*relationship.names, found.name)), relationship, having[0][0],
                         having[0][1])

    def own_field(self, f: FieldDef, used: set[_Relationship]) -> _Resolved:
        """A field of the FROM object; a formula reading a parent's field compiles to that field's join."""
        if f.formula_path is not None:
            source = self.resolve(FieldPath(f.formula_path, 0, 0), used)
            return _Resolved(source.sql, f, f.name, None, self.object, self.alias)
        return _Resolved(f"{self.alias}.{quote(f.name)}", f, f.name, None, self.object, self.alias)

    def _join(self, parent: _Relationship | None, name: str, path: FieldPath) -> _Relationship:
        owner, owner_alias = (self.object, self.alias) if parent is None else parent.targets[0]
        reference = None if parent is not None and parent.polymorphic else owner.relationship(name)
        targets = [self.compiler.schema.object(t) for t in reference.reference_to] if reference else []
        targets = [t for t in targets if t is not None]
        if reference is None or not targets:
            raise SoqlProblem("INVALID_FIELD", _NO_SUCH_RELATIONSHIP.format(name=name), path.line, path.column)
        names = (*(parent.names if parent else ()), reference.relationship_name or name)
        key = tuple(n.lower() for n in names)
        if key not in self.relationships:
            reference_sql = f"{owner_alias}.{quote(reference.name)}"
            aliased = [(target, self.compiler.new_alias()) for target in targets]
            join_sql = " ".join(f'LEFT JOIN {quote(t.name)} AS {a} ON {a}."Id" = {reference_sql} COLLATE NOCASE'
                                for t, a in aliased)
            self.relationships[key] = _Relationship(names, aliased, reference_sql, reference.polymorphic, parent,
                                                    join_sql)
        return self.relationships[key]

    def joins_sql(self, used: set[_Relationship]) -> str:
        return "".join(" " + r.join_sql for r in self.relationships.values() if r in used)

    def live_rows_sql(self) -> str | None:
        """The filter hiding soft-deleted rows, for objects that have a recycle bin."""
        if self.compiler.include_deleted or self.object.field("IsDeleted") is None:
            return None
        return f'{self.alias}."IsDeleted" = 0'


@dataclass
class _Compiler:
    schema: OrgSchema
    include_deleted: bool
    now: datetime
    aliases: int = 0
    params: list[Any] = field(default_factory=list)
    grouped: set[str] | None = None  # lower-cased grouped field names while compiling an aggregate query's
    # SELECT, HAVING and ORDER BY, where only these and aggregate functions may appear; None elsewhere

    def new_alias(self) -> str:
        self.aliases += 1
        return f"t{self.aliases - 1}"

    def object(self, ref: ObjectRef) -> ObjectDef:
        obj = self.schema.object(ref.name)
        if obj is None:
            raise SoqlProblem("INVALID_TYPE", _NO_SUCH_OBJECT.format(name=ref.name), ref.line, ref.column)
        return obj

    # ---- the query ---------------------------------------------------------------------------

    def compile(self, query: Query) -> CompiledQuery:
        scope = _Scope(self, self.object(query.object))
        limit = int(query.limit.text) if query.limit else None
        offset = int(query.offset.text) if query.offset else None
        if offset is not None and offset > MAX_OFFSET:
            raise SoqlProblem("NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                              query.offset.line, query.offset.column)
        if query.where is not None:
            _check_semi_join_positions(query.where)
        if query.group_by or any(isinstance(item, (AggregateCall, Aliased)) for item in query.select):
            return self.compile_aggregate(query, scope, limit, offset)

        selected = self.select_list(query, scope, limit)
        count_only = any(isinstance(item, CountCall) for item in query.select)

        filter_used: set[_Relationship] = set()
        where = self.condition(query.where, scope, filter_used) if query.where else None
        where_params = tuple(self.params)
        where_sql = self.where_sql(scope, where)
        order_sql = self.order_by(query, scope, filter_used)
        paging_sql, paging_params = _paging(limit, offset)
        from_sql = f"FROM {quote(scope.object.name)} AS {scope.alias}"

        filtered_sql = f"{from_sql}{scope.joins_sql(filter_used)}{where_sql}"
        ids_sql = f"SELECT {scope.alias}.rowid {filtered_sql} ORDER BY {order_sql}{paging_sql}"
        if paging_sql:
            count_sql = f"SELECT COUNT(*) FROM (SELECT 1 {filtered_sql}{paging_sql})"
            count_params = where_params + paging_params
        else:
            count_sql, count_params = f"SELECT COUNT(*) {filtered_sql}", where_params

        page_sql = (f"SELECT {', '.join(selected.slot_sql)} FROM json_each(?) AS page "
                    f"CROSS JOIN {quote(scope.object.name)} AS {scope.alias} ON {scope.alias}.rowid = page.value"
                    f"{scope.joins_sql(selected.used)} ORDER BY page.key")
        return CompiledQuery(
            object_name=scope.object.name,
            count_only=count_only,
            aggregate=False,
            column_names=tuple(c.name for c in selected.columns),
            columns=tuple(selected.columns),
            relationships=tuple(selected.relationships),
            id_slot=selected.id_slot,
            ids_sql=ids_sql,
            params=where_params + paging_params,
            page_sql=page_sql,
            count_sql=count_sql,
            count_params=count_params,
            selects_compound=any(c.field.type == "address" for c in selected.columns),
            uses_offset=offset is not None,
        )

    def where_sql(self, scope: _Scope, where: str | None) -> str:
        """The WHERE clause: the query's condition and, for query (not queryAll), live rows only."""
        conditions = [c for c in (scope.live_rows_sql(), where and f"({where})") if c]
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def compile_aggregate(self, query: Query, scope: _Scope, limit: int | None, offset: int | None) -> CompiledQuery:
        """GROUP BY and aggregate functions: one AggregateResult row per group, keyed by field name, alias or exprN."""
        used: set[_Relationship] = set()
        groups = [self.group(path, scope, used) for path in query.group_by]
        where = self.condition(query.where, scope, used) if query.where else None
        where_params = tuple(self.params)

        self.grouped = {g.name.lower() for g in groups}
        columns: list[SelectedColumn] = []
        select_sql: list[str] = []
        unnamed = 0
        for item in query.select:
            alias = item if isinstance(item, Aliased) else None
            expression = alias.item if alias else item
            if isinstance(expression, CountCall):
                raise SoqlProblem("MALFORMED_QUERY", "COUNT() can't be used with GROUP BY; use COUNT(fieldName)",
                                  expression.line, expression.column)
            if isinstance(expression, FieldsCall):
                raise SoqlProblem("MALFORMED_QUERY", "FIELDS() can't be used in an aggregate query",
                                  expression.line, expression.column)
            resolved = self.operand(expression, scope, used)
            if alias:
                name = alias.alias
            elif isinstance(expression, AggregateCall):
                name, unnamed = f"expr{unnamed}", unnamed + 1
            else:
                name = resolved.field.name
            if any(c.name.lower() == name.lower() for c in columns):
                named = alias or expression
                raise SoqlProblem("MALFORMED_QUERY", f"duplicate alias: {name}", named.line, named.column)
            columns.append(SelectedColumn(name, resolved.field, (), (len(select_sql),)))
            select_sql.append(resolved.sql)
        having = self.condition(query.having, scope, used) if query.having else None
        having_params = tuple(self.params[len(where_params):])
        order_sql = f" ORDER BY {self.order_by(query, scope, used, stable=False)}" if query.order_by else ""
        self.grouped = None

        paging_sql, paging_params = _paging(limit, offset)
        group_sql = f" GROUP BY {', '.join(g.sql + _collation(g.field) for g in groups)}" if groups else ""
        having_sql = f" HAVING {having}" if having else ""
        aggregate_sql = (f"SELECT {', '.join(select_sql)} FROM {quote(scope.object.name)} AS {scope.alias}"
                         f"{scope.joins_sql(used)}{self.where_sql(scope, where)}{group_sql}{having_sql}{order_sql}"
                         f"{paging_sql}")
        params = where_params + having_params + paging_params
        return CompiledQuery(
            object_name=scope.object.name,
            count_only=False,
            aggregate=True,
            column_names=tuple(c.name for c in columns),
            columns=tuple(columns),
            relationships=(),
            id_slot=-1,
            ids_sql="",
            params=(),
            page_sql="",
            count_sql=f"SELECT COUNT(*) FROM ({aggregate_sql})",
            count_params=params,
            selects_compound=False,
            uses_offset=offset is not None,
            aggregate_sql=aggregate_sql,
            aggregate_params=params,
        )

    def group(self, path: FieldPath, scope: _Scope, used: set[_Relationship]) -> _Resolved:
        resolved = scope.resolve(path, used)
        if resolved.field.storage is None or not resolved.field.describe()["groupable"]:
            raise SoqlProblem("INVALID_FIELD", f"field '{resolved.name}' can not be grouped in a query call",
                              path.line, path.column)
        return resolved

    def operand(self, item: FieldPath | AggregateCall, scope: _Scope, used: set[_Relationship]) -> _Resolved:
        """A field, or in an aggregate query's SELECT, HAVING and ORDER BY an aggregate function, resolved."""
        if isinstance(item, AggregateCall):
            if self.grouped is None:
                raise SoqlProblem("MALFORMED_QUERY", f"aggregate function {item.function} is not allowed here",
                                  item.line, item.column)
            return self.aggregate(item, scope, used)
        resolved = scope.resolve(item, used)
        if self.grouped is not None and resolved.name.lower() not in self.grouped:
            raise SoqlProblem("MALFORMED_QUERY", f"Field must be grouped or aggregated: {resolved.name}",
                              item.line, item.column)
        return resolved

    def aggregate(self, call: AggregateCall, scope: _Scope, used: set[_Relationship]) -> _Resolved:
        """COUNT, COUNT_DISTINCT, SUM, AVG (numbers), MIN and MAX as SQL, with the field type of their result."""
        resolved = scope.resolve(call.path, used)
        f, function = resolved.field, call.function
        numeric = f.storage in ("int", "real")
        if (f.storage is None or f.type == "multipicklist" or not f.filterable
                or (function in ("SUM", "AVG") and not numeric) or (function in ("MIN", "MAX") and f.storage == "bool")):
            raise SoqlProblem("MALFORMED_QUERY", f"field {resolved.name} does not support aggregate operator "
                              f"{function}", call.path.line, call.path.column)
        collate = _collation(f)
        if function == "COUNT":
            sql, result = f"COUNT({resolved.sql})", FieldDef(call.text, "int")
        elif function == "COUNT_DISTINCT":
            sql, result = f"COUNT(DISTINCT {resolved.sql}{collate})", FieldDef(call.text, "int")
        elif function in ("SUM", "AVG"):
            sql, result = f"{function}({resolved.sql})", FieldDef(call.text, "double")
        else:
            sql, result = f"{function}({resolved.sql}{collate})", f
        return _Resolved(sql, result, call.text, None, scope.object, scope.alias)

    def select_list(self, query: Query, scope: _Scope, limit: int | None) -> _Selection:
        selection = _Selection()
        for item in query.select:
            if isinstance(item, FieldsCall):
                if item.scope != "STANDARD" and (limit is None or limit > FIELDS_FUNCTION_MAX_LIMIT):
                    raise SoqlProblem("MALFORMED_QUERY", "The SOQL FIELDS function must have a LIMIT of at most "
                                      f"{FIELDS_FUNCTION_MAX_LIMIT}", item.line, item.column)
                for f in scope.object.fields:
                    if item.scope == "ALL" or f.custom == (item.scope == "CUSTOM"):
                        selection.add(scope.own_field(f, selection.used), None)
            elif isinstance(item, FieldPath):
                selection.add(scope.resolve(item, selection.used), item)
        selection.id_slot = selection.slot(f'{scope.alias}."Id"')
        for relationship in scope.relationships.values():
            if relationship in selection.used:
                selection.relationships.append(SelectedRelationship(
                    relationship.names, relationship.type_label, selection.slot(relationship.reference_sql)))
        return selection

    def order_by(self, query: Query, scope: _Scope, used: set[_Relationship], *, stable: bool = True) -> str:
        """ORDER BY terms; `stable` adds rowid (in the last term's direction, so an index can serve both) so pages
        of a plain query follow one order."""
        terms = []
        for item in query.order_by:
            resolved = self.operand(item.path, scope, used)
            if not resolved.field.sortable or resolved.field.storage is None:
                raise SoqlProblem("INVALID_FIELD", f"field '{resolved.field.name}' can not be sorted in a query call",
                                  item.path.line, item.path.column)
            term = resolved.sql + _collation(resolved.field)
            term += " DESC" if item.descending else ""
            if item.nulls_last is not None and item.nulls_last != item.descending:
                term += " NULLS LAST" if item.nulls_last else " NULLS FIRST"
            terms.append(term)
        if stable:
            tiebreak = " DESC" if query.order_by and query.order_by[-1].descending else ""
            terms.append(f"{scope.alias}.rowid{tiebreak}")
        return ", ".join(terms)

    # ---- WHERE and HAVING --------------------------------------------------------------------

    def condition(self, node: Condition, scope: _Scope, used: set[_Relationship]) -> str:
        if isinstance(node, Junction):
            return _balanced(node.operator, [self.condition(t, scope, used) for t in node.terms])
        if isinstance(node, Negation):
            return f"NOT IFNULL(({self.condition(node.term, scope, used)}), 0)"
        return self.comparison(node, scope, used)

    def comparison(self, node: Comparison, scope: _Scope, used: set[_Relationship]) -> str:
        target = self.operand(node.path, scope, used)
        f = target.field
        if not f.filterable or f.storage is None:
            raise SoqlProblem("INVALID_FIELD", f"field '{f.name}' can not be filtered in a query call",
                              node.path.line, node.path.column)
        operator = node.operator
        if node.subquery is not None:
            if self.grouped is not None:
                raise SoqlProblem("MALFORMED_QUERY", _SEMI_JOIN_NESTED, node.path.line, node.path.column)
            return self.semi_join(node, target)
        if operator in ("INCLUDES", "EXCLUDES"):
            if f.type != "multipicklist":
                raise SoqlProblem("INVALID_QUERY_FILTER_OPERATOR", "includes or excludes operator only valid on "
                                  f"multipicklist field: '{target.name}'", node.path.line, node.path.column)
            includes = " OR ".join(self.has_all(target.sql, self.text_value(v, target)) for v in node.values)
            return includes if operator == "INCLUDES" else f"NOT IFNULL(({includes}), 0)"
        if operator == "LIKE":
            if f.storage != "text" or f.type in _ID_TYPES or f.type == "multipicklist":
                raise SoqlProblem("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on field '{target.name}': LIKE "
                                  "only applies to string fields", node.path.line, node.path.column)
            (value,) = node.values
            if value.kind != "STRING":
                raise _type_mismatch(target, value)
            return self.text_like(target.sql, decode_string(value, like=True))
        if operator in ("IN", "NOT IN"):
            matches = self.member_of(target, node.values)
            return matches if operator == "IN" else f"NOT IFNULL(({matches}), 0)"
        return self.compare(target, operator, self.value(target, node.values[0]), node.values[0])

    def compare(self, target: _Resolved, operator: str, value: Any, literal: Literal) -> str:
        column = target.sql
        if value is None:
            if operator not in ("=", "!="):
                raise SoqlProblem("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator '{operator}' for a null "
                                  f"value on field '{target.name}'", literal.line, literal.column)
            return f"{column} IS NULL" if operator == "=" else f"{column} IS NOT NULL"
        if isinstance(value, DateRange):
            start, end = ((value.start_ms, value.end_ms) if target.field.storage == "datetime"
                          else (value.first_day.isoformat(), value.end_day.isoformat()))
            sql, params = {
                "=": (f"{column} >= ? AND {column} < ?", [start, end]),
                "!=": (f"{column} IS NULL OR {column} < ? OR {column} >= ?", [start, end]),
                "<": (f"{column} < ?", [start]), "<=": (f"{column} < ?", [end]),
                ">": (f"{column} >= ?", [end]), ">=": (f"{column} >= ?", [start]),
            }[operator]
            self.params.extend(params)
            return sql
        if target.field.type == "multipicklist" and operator in ("=", "!="):
            same_set = self.same_set(column, value)
            return same_set if operator == "=" else f"NOT IFNULL(({same_set}), 0)"
        if _folds_case(target.field) and operator in ("=", "!="):
            equal = self.text_in(column, [value])
            return equal if operator == "=" else f"NOT IFNULL(({equal}), 0)"
        self.params.append(value)
        collate = _collation(target.field)
        if operator == "!=":
            return f"{column} IS NOT ?{collate}"
        return f"{column} {operator} ?{collate}"

    def member_of(self, target: _Resolved, literals: tuple[Literal, ...]) -> str:
        """IN: one bound JSON array however long the list (SQLite's variable and expression-depth limits stay
        out of reach), matched through an index where the field has one."""
        values = [self.value(target, v) for v in literals]
        if target.field.type == "multipicklist" or any(isinstance(v, DateRange) for v in values):
            return _balanced("OR", [self.compare(target, "=", v, lit) for v, lit in zip(values, literals)])
        present = [v for v in values if v is not None]
        terms = []
        if present and _folds_case(target.field):
            terms.append(self.text_in(target.sql, present))
        elif present:
            self.params.append(json.dumps(present))
            terms.append(f"{target.sql}{_collation(target.field)} IN (SELECT value FROM json_each(?))")
        if len(present) < len(values):
            terms.append(f"{target.sql} IS NULL")
        return " OR ".join(terms)

    def text_in(self, column: str, values: list[str]) -> str:
        """True when `column` equals one of `values` ignoring case across Unicode (see folding.py): ASCII rows by
        NOCASE, others through their casefold."""
        folded = [v.casefold() for v in values]
        ascii_folded = [v for v in folded if v.isascii()]
        others = f"{may_fold_to(column, folded)} AND {FOLD_FUNCTION}({column})"
        if len(folded) == 1:
            self.params.extend([*ascii_folded, folded[0]])
            unicode_match = f"({others} = ?)"
            return f"({column} = ? COLLATE NOCASE OR {unicode_match})" if ascii_folded else unicode_match
        self.params.extend([json.dumps(ascii_folded)] if ascii_folded else [])
        self.params.append(json.dumps(folded))
        unicode_match = f"({others} IN (SELECT value FROM json_each(?)))"
        if not ascii_folded:
            return unicode_match
        return f"({column} COLLATE NOCASE IN (SELECT value FROM json_each(?)) OR {unicode_match})"

    def text_like(self, column: str, pattern: str) -> str:
        """`column LIKE pattern` (a SQLite pattern escaped by `\\`) ignoring case across Unicode: ASCII patterns
        by SQLite's LIKE (where `_` takes one character even if it folds to two), others through casefold."""
        folded = pattern.casefold()
        unicode_match = f"({may_fold_to(column, [folded], like=True)} AND {LIKE_FUNCTION}({column}, ?))"
        if not folded.isascii():
            self.params.append(folded)
            return unicode_match
        self.params.extend([folded, folded])
        return f"({column} LIKE ? ESCAPE '\\' OR {unicode_match})"

    def semi_join(self, node: Comparison, target: _Resolved) -> str:
        """`Id IN (SELECT LeadId FROM CampaignMember ...)` and its NOT IN form, honouring deleted rows, with
        Salesforce's restrictions: an unrelated Id or reference on the left, one Id or reference of the same
        object type selected, no nesting, no Task or Event inside."""
        subquery = node.subquery
        if node.operator not in ("IN", "NOT IN") or target.field.type not in _ID_TYPES:
            raise SoqlProblem("INVALID_QUERY_FILTER_OPERATOR", f"semi-join on field '{target.name}' needs an id "
                              "or reference field and IN or NOT IN", node.path.line, node.path.column)
        if target.relationship is not None:
            raise SoqlProblem("MALFORMED_QUERY", f"the left operand of a semi join sub-select can't traverse a "
                              f"relationship: {target.name}", node.path.line, node.path.column)
        inner = self.object(subquery.object)
        if inner.name in SEMI_JOIN_UNSUPPORTED_OBJECTS:
            raise SoqlProblem("MALFORMED_QUERY", f"Entity '{inner.name}' is not supported for semi join inner "
                              "selects", subquery.object.line, subquery.object.column)
        nested = next(_semi_joins(subquery.where), None) if subquery.where is not None else None
        if nested is not None:
            raise SoqlProblem("MALFORMED_QUERY", "Nesting of semi join sub-selects is not supported",
                              nested.path.line, nested.path.column)
        scope = _Scope(self, inner)
        used: set[_Relationship] = set()
        selected = scope.resolve(subquery.field, used)
        if selected.field.type not in _ID_TYPES or selected.relationship is not None:
            raise SoqlProblem("INVALID_FIELD", "a semi join sub-select must select an Id or reference field of its "
                              f"own object, not '{selected.name}'", subquery.field.line, subquery.field.column)
        if not _id_targets(target) & _id_targets(selected):
            raise SoqlProblem("INVALID_FIELD", f"The selected field '{selected.name}' in the subquery and the left "
                              f"operand field '{target.name}' in the where expression in the outer query must "
                              "point to the same object type", subquery.field.line, subquery.field.column)
        conditions = [f"{selected.sql} IS NOT NULL"]
        live = scope.live_rows_sql()
        if live:
            conditions.append(live)
        if subquery.where is not None:
            conditions.append(f"({self.condition(subquery.where, scope, used)})")
        inner_sql = (f"SELECT {selected.sql} FROM {quote(scope.object.name)} AS {scope.alias}"
                     f"{scope.joins_sql(used)} WHERE {' AND '.join(conditions)}")
        member = f"{target.sql}{_collation(target.field)} IN ({inner_sql})"
        return member if node.operator == "IN" else f"{target.sql} IS NULL OR NOT {member}"

    def has_all(self, column: str, value: str | None) -> str:
        """True when a multipicklist holds every ';'-separated item of `value` (INCLUDES semantics)."""
        items = _picklist_items(value)
        if not items:
            return "0"
        return "(" + " AND ".join(self.text_like(f"(';' || {column} || ';')", f"%;{_like_escape(item)};%")
                                  for item in items) + ")"

    def same_set(self, column: str, value: str) -> str:
        """True when a multipicklist holds exactly the items of `value`, in any order."""
        holds_all = self.has_all(column, value)
        self.params.append(len(_picklist_items(value)) - 1)
        return f"{holds_all} AND length({column}) - length(replace({column}, ';', '')) = ?"

    # ---- values ------------------------------------------------------------------------------

    def value(self, target: _Resolved, literal: Literal) -> Any:
        """A literal converted to the field's storage, a DateRange, or None for null."""
        if literal.kind == "NULL":
            return None
        storage = target.field.storage
        if storage == "text":
            return self.text_value(literal, target)
        if storage == "bool" and literal.kind in ("TRUE", "FALSE"):
            return 1 if literal.kind == "TRUE" else 0
        if storage in ("int", "real") and literal.kind == "NUMBER":
            number = float(literal.text)
            return int(number) if storage == "int" and number.is_integer() else number
        if storage == "datetime" and literal.kind == "DATETIME":
            return parse_datetime_ms(literal)
        if storage == "date" and literal.kind == "DATE":
            return parse_date(literal).isoformat()
        if storage in ("datetime", "date") and literal.kind == "RELATIVE_DATE":
            return relative_range(literal, self.now)
        raise _type_mismatch(target, literal)

    def text_value(self, literal: Literal, target: _Resolved) -> str | None:
        """A string literal for a text field; '' means null (the org never stores empty text)."""
        if literal.kind == "NULL":
            return None
        if literal.kind != "STRING":
            raise _type_mismatch(target, literal)
        text = decode_string(literal, like=False)
        if text == "":
            return None
        if target.field.type in _ID_TYPES:
            canonical = canonical_id(text)
            if canonical is None:
                raise SoqlProblem("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {text}", literal.line,
                                  literal.column)
            return canonical
        return text


@dataclass
class _Selection:
    """The page_sql slots being built for a SELECT list."""

    columns: list[SelectedColumn] = field(default_factory=list)
    relationships: list[SelectedRelationship] = field(default_factory=list)
    slot_sql: list[str] = field(default_factory=list)
    used: set[_Relationship] = field(default_factory=set)
    id_slot: int = -1

    def slot(self, sql: str) -> int:
        """The position of `sql` in the page row, adding it unless already there (e.g. Id, selected FKs)."""
        if sql not in self.slot_sql:
            self.slot_sql.append(sql)
        return self.slot_sql.index(sql)

    def add(self, resolved: _Resolved, written: FieldPath | None) -> None:
        """Add a selected field; a repeated explicit field is an error, FIELDS() overlaps are skipped."""
        if any(c.name.lower() == resolved.name.lower() for c in self.columns):
            if written is None:
                return
            raise SoqlProblem("MALFORMED_QUERY", f"duplicate field selected: {resolved.name}", written.line,
                              written.column)
        f = resolved.field
        if f.type == "address":
            prefix = f.name.removesuffix("Address")
            parts = [resolved.object.field(prefix + part) for part in ADDRESS_PARTS]
            slots = tuple(self.slot(f"{resolved.alias}.{quote(p.name)}") if p is not None else -1 for p in parts)
        else:
            slots = (self.slot(resolved.sql),)
        path = resolved.relationship.names if resolved.relationship else ()
        self.columns.append(SelectedColumn(resolved.name, f, path, slots))


def _paging(limit: int | None, offset: int | None) -> tuple[str, tuple[int, ...]]:
    if limit is None and offset is None:
        return "", ()
    if offset is None:
        return " LIMIT ?", (limit,)
    return " LIMIT ? OFFSET ?", (-1 if limit is None else limit, offset)


def _balanced(operator: str, terms: list[str]) -> str:
    """Terms joined by AND or OR as a balanced tree, so thousands of them stay far inside SQLite's expression
    depth limit (a flat `a OR b OR c ...` nests one level per term)."""
    if len(terms) == 1:
        return terms[0]
    middle = len(terms) // 2
    return f"({_balanced(operator, terms[:middle])}) {operator} ({_balanced(operator, terms[middle:])})"


def _semi_joins(node: Condition) -> Iterator[Comparison]:
    """The semi- and anti-joins of a condition, in the order written."""
    if isinstance(node, Junction):
        for term in node.terms:
            yield from _semi_joins(term)
    elif isinstance(node, Negation):
        yield from _semi_joins(node.term)
    elif node.subquery is not None:
        yield node


def _check_semi_join_positions(where: Condition) -> None:
    """Salesforce takes at most two semi-joins, each the whole WHERE or a term of its top-level AND."""
    top_level = where.terms if isinstance(where, Junction) else (where,)
    for count, node in enumerate(_semi_joins(where), start=1):
        line, column = node.path.line, node.path.column
        if not any(node is term for term in top_level):
            raise SoqlProblem("MALFORMED_QUERY", _SEMI_JOIN_NESTED, line, column)
        if isinstance(where, Junction) and where.operator == "OR":
            raise SoqlProblem("MALFORMED_QUERY", "Semi join sub-selects are not allowed with the 'OR' operator",
                              line, column)
        if count > MAX_SEMI_JOINS:
            raise SoqlProblem("MALFORMED_QUERY", f"Maximum {MAX_SEMI_JOINS} semi join sub-selects are allowed",
                              line, column)


def _id_targets(resolved: _Resolved) -> set[str]:
    """The objects an Id or reference field points at."""
    if resolved.field.type == "id":
        return {resolved.object.name}
    return set(resolved.field.reference_to)


def _folds_case(f: FieldDef) -> bool:
    """Text compared ignoring case across Unicode; ids and references hold canonical ids compared as stored."""
    return f.storage == "text" and f.type not in _ID_TYPES


def _collation(f: FieldDef) -> str:
    """How a field compares and sorts: text case-insensitively; ids and references hold canonical 18-char ids.

    Any collation is correct for canonical ids; `Id` takes NOCASE to match the org's unique index on
    ("Id" COLLATE NOCASE), references stay binary to match their plain indexes.
    """
    if f.storage == "text" and (f.type not in _ID_TYPES or f.type == "id"):
        return " COLLATE NOCASE"
    return ""


def _type_mismatch(target: _Resolved, literal: Literal) -> SoqlProblem:
    storage = target.field.storage
    quoted = "should be enclosed in quotes" if storage == "text" else "should not be enclosed in quotes"
    return SoqlProblem("INVALID_FIELD", f"value of filter criterion for field '{target.name}' must be of type "
                       f"{_FILTER_TYPES[storage]} and {quoted}", literal.line, literal.column)


def _picklist_items(value: str | None) -> list[str]:
    return sorted({item.strip().casefold() for item in (value or "").split(";") if item.strip()})


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
