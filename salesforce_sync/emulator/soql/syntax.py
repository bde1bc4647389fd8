"""SOQL text to a syntax tree: a LALR grammar for the subset sync tools send, and its AST.

Names stay as written here; resolving them against the org's schema is the compiler's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

GRAMMAR = r"""
start: _SELECT select_list _FROM object where? group_by? having? order_by? limit? offset?

select_list: count_all | _select_item ("," _select_item)*
count_all: COUNT "(" ")"
_select_item: field_path | fields_call | aggregate_call | aliased
aliased: (field_path | aggregate_call) NAME
fields_call: FIELDS "(" NAME ")"
aggregate_call: (COUNT | COUNT_DISTINCT | MIN | MAX | SUM | AVG) "(" field_path ")"
field_path: NAME ("." NAME)*
_operand: field_path | aggregate_call
object: NAME

where: _WHERE _condition
_condition: _unary | or_ | and_
or_: _unary (_OR _unary)+
and_: _unary (_AND _unary)+
_unary: not_ | "(" _condition ")" | comparison
not_: NOT _unary
comparison: _operand OPERATOR value                            -> compare
          | _operand LIKE value                                -> like
          | _operand set_operator "(" value ("," value)* ")"   -> value_set
          | _operand set_operator "(" subquery ")"             -> semi_join
set_operator: IN | NOT IN | INCLUDES | EXCLUDES
subquery: _SELECT field_path _FROM object where?
value: STRING | DQ_STRING | NUMBER | DATE | DATETIME | TRUE | FALSE | NULL | RELATIVE_DATE | NAME

group_by: _GROUP _BY field_path ("," field_path)*
having: _HAVING _condition
order_by: _ORDER _BY order_item ("," order_item)*
order_item: _operand [ASC | DESC] [_NULLS (FIRST | LAST)]
limit: _LIMIT INTEGER
offset: _OFFSET INTEGER

_SELECT: "select"i
_FROM: "from"i
_WHERE: "where"i
_AND: "and"i
_OR: "or"i
_GROUP: "group"i
_HAVING: "having"i
_ORDER: "order"i
_BY: "by"i
_NULLS: "nulls"i
_LIMIT: "limit"i
_OFFSET: "offset"i
NOT: "not"i
LIKE: "like"i
IN: "in"i
INCLUDES: "includes"i
EXCLUDES: "excludes"i
ASC: "asc"i
DESC: "desc"i
FIRST: "first"i
LAST: "last"i
COUNT: "count"i
COUNT_DISTINCT: "count_distinct"i
MIN: "min"i
MAX: "max"i
SUM: "sum"i
AVG: "avg"i
FIELDS: "fields"i
TRUE: "true"i
FALSE: "false"i
NULL: "null"i

NAME: /[a-z_][a-z0-9_]*/i
OPERATOR: /!=|<>|<=|>=|=|<|>/
STRING: /'(?:[^'\\]|\\.)*'/s
DQ_STRING: /"(?:[^"\\]|\\.)*"/s
DATETIME.3: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})/i
DATE.2: /\d{4}-\d{2}-\d{2}/
RELATIVE_DATE.1: /[a-z_][a-z0-9_]*:\d+/i
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)/
INTEGER: /\d+/

%ignore /\s+/
"""


class SoqlProblem(Exception):
    """A rejected query before its echo block is built: error code, description and 1-based position."""

    def __init__(self, error_code: str, description: str, line: int, column: int) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.line = line
        self.column = column


@dataclass(frozen=True)
class FieldPath:
    """`Email` or `Owner.Email` as written, with where it starts."""

    names: tuple[str, ...]
    line: int
    column: int

    @property
    def text(self) -> str:
        return ".".join(self.names)


@dataclass(frozen=True)
class Literal:
    """A value as written; `kind` is the token type (STRING, NUMBER, DATE, DATETIME, TRUE, NULL, ...)."""

    kind: str
    text: str
    line: int
    column: int


@dataclass(frozen=True)
class ObjectRef:
    name: str
    line: int
    column: int


@dataclass(frozen=True)
class FieldsCall:
    """FIELDS(ALL | STANDARD | CUSTOM)."""

    scope: str
    line: int
    column: int


@dataclass(frozen=True)
class CountCall:
    """COUNT(): the number of matching rows, the query's only select item."""

    line: int
    column: int


@dataclass(frozen=True)
class AggregateCall:
    """COUNT(path), COUNT_DISTINCT, MIN, MAX, SUM or AVG of a field; `function` upper-cased."""

    function: str
    path: FieldPath
    line: int
    column: int

    @property
    def text(self) -> str:
        return f"{self.function}({self.path.text})"


@dataclass(frozen=True)
class Aliased:
    """A select item with an alias (`COUNT(Id) total`), which names its key in an AggregateResult."""

    item: FieldPath | AggregateCall
    alias: str
    line: int
    column: int


@dataclass(frozen=True)
class SubQuery:
    field: FieldPath
    object: ObjectRef
    where: Condition | None


@dataclass(frozen=True)
class Comparison:
    """`path operator value(s)`; operator normalised to = != < <= > >= LIKE IN NOT IN INCLUDES EXCLUDES.

    `path` is an aggregate only in HAVING."""

    path: FieldPath | AggregateCall
    operator: str
    values: tuple[Literal, ...]
    subquery: SubQuery | None = None


@dataclass(frozen=True)
class Junction:
    operator: str  # AND | OR
    terms: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    term: Condition


Condition = Union[Comparison, Junction, Negation]
SelectItem = Union[FieldPath, FieldsCall, CountCall, AggregateCall, Aliased]


@dataclass(frozen=True)
class OrderItem:
    path: FieldPath | AggregateCall
    descending: bool
    nulls_last: bool | None  # None: the default for the direction


@dataclass(frozen=True)
class Query:
    select: tuple[SelectItem, ...]
    object: ObjectRef
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: Literal | None
    offset: Literal | None
    group_by: tuple[FieldPath, ...] = ()
    having: Condition | None = None


class _ToAst(Transformer):
    """Builds the AST while LALR parses, keeping token positions for error carets."""

    def start(self, items: list) -> Query:
        select, obj, *clauses = items
        tagged = dict(clauses)
        return Query(tuple(select), obj, tagged.get("where"), tagged.get("order_by", ()), tagged.get("limit"),
                     tagged.get("offset"), tagged.get("group_by", ()), tagged.get("having"))

    def select_list(self, items: list) -> list:
        return items

    def count_all(self, items: list) -> CountCall:
        return CountCall(items[0].line, items[0].column)

    def aggregate_call(self, items: list) -> AggregateCall:
        function, path = items
        return AggregateCall(function.upper(), path, function.line, function.column)

    def aliased(self, items: list) -> Aliased:
        item, alias = items
        return Aliased(item, str(alias), alias.line, alias.column)

    def fields_call(self, items: list) -> FieldsCall:
        keyword, scope = items
        if scope.upper() not in ("ALL", "STANDARD", "CUSTOM"):
            raise SoqlProblem("MALFORMED_QUERY", f"unexpected token: '{scope}'", scope.line, scope.column)
        return FieldsCall(scope.upper(), keyword.line, keyword.column)

    def field_path(self, names: list[Token]) -> FieldPath:
        return FieldPath(tuple(str(n) for n in names), names[0].line, names[0].column)

    def object(self, items: list[Token]) -> ObjectRef:
        return ObjectRef(str(items[0]), items[0].line, items[0].column)

    def where(self, items: list) -> tuple[str, Condition]:
        return ("where", items[0])

    def or_(self, terms: list) -> Junction:
        return Junction("OR", tuple(terms))

    def and_(self, terms: list) -> Junction:
        return Junction("AND", tuple(terms))

    def not_(self, items: list) -> Negation:
        return Negation(items[1])

    def compare(self, items: list) -> Comparison:
        path, operator, value = items
        return Comparison(path, "!=" if operator == "<>" else str(operator), (value,))

    def like(self, items: list) -> Comparison:
        return Comparison(items[0], "LIKE", (items[2],))

    def value_set(self, items: list) -> Comparison:
        path, operator, *values = items
        return Comparison(path, operator, tuple(values))

    def semi_join(self, items: list) -> Comparison:
        path, operator, subquery = items
        return Comparison(path, operator, (), subquery)

    def set_operator(self, tokens: list[Token]) -> str:
        return " ".join(t.upper() for t in tokens)

    def subquery(self, items: list) -> SubQuery:
        return SubQuery(items[0], items[1], items[2][1] if len(items) > 2 else None)

    def value(self, items: list[Token]) -> Literal:
        token = items[0]
        if token.type == "DQ_STRING":
            raise SoqlProblem("MALFORMED_QUERY", f"unexpected token: '{token}' (SOQL strings take single quotes)",
                              token.line, token.column)
        kind = "RELATIVE_DATE" if token.type == "NAME" else token.type
        return Literal(kind, str(token), token.line, token.column)

    def group_by(self, items: list) -> tuple:
        return ("group_by", tuple(items))

    def having(self, items: list) -> tuple:
        return ("having", items[0])

    def order_by(self, items: list) -> tuple:
        return ("order_by", tuple(items))

    def order_item(self, items: list) -> OrderItem:
        path, direction, nulls = items
        descending = direction is not None and direction.upper() == "DESC"
        return OrderItem(path, descending, None if nulls is None else nulls.upper() == "LAST")

    def limit(self, items: list[Token]) -> tuple:
        return ("limit", Literal("INTEGER", str(items[0]), items[0].line, items[0].column))

    def offset(self, items: list[Token]) -> tuple:
        return ("offset", Literal("INTEGER", str(items[0]), items[0].line, items[0].column))


_PARSER = Lark(GRAMMAR, parser="lalr", transformer=_ToAst(), maybe_placeholders=True)


def parse(soql: str) -> Query:
    """Parse SOQL text; syntax errors raise SoqlProblem(MALFORMED_QUERY) at the offending token."""
    try:
        return _PARSER.parse(soql)
    except UnexpectedToken as error:
        token = error.token
        if token.type == "$END":
            line, column = _end_position(soql)
            raise SoqlProblem("MALFORMED_QUERY", "unexpected token: <EOF>", line, column) from None
        raise SoqlProblem("MALFORMED_QUERY", f"unexpected token: '{token}'", token.line, token.column) from None
    except UnexpectedCharacters as error:
        word = _word_at(soql, error.pos_in_stream)
        raise SoqlProblem("MALFORMED_QUERY", f"unexpected token: '{word}'", error.line, error.column) from None


def _end_position(soql: str) -> tuple[int, int]:
    text = soql.rstrip()
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _word_at(soql: str, pos: int) -> str:
    """The run of characters from `pos` up to the next space or bracket, to name in the error."""
    end = pos + 1
    while end < len(soql) and not soql[end].isspace() and soql[end] not in "(),":
        end += 1
    return soql[pos:end]
