"""The Google Ads Query Language subset the sandbox understands: parse, validate, filter, sort.

Grammar (https://developers.google.com/google-ads/api/docs/query/grammar)::

    Query     -> SELECT FieldName (, FieldName)* FROM ResourceName [WHERE Condition (AND Condition)*]
                 [ORDER BY FieldName [ASC|DESC] (, ...)*] [LIMIT PositiveInteger] [PARAMETERS name = value, ...]
    Condition -> FieldName (= | != | > | >= | < | <=) Value | FieldName [NOT] IN (v, ...)
               | FieldName [NOT] LIKE String | FieldName [NOT] REGEXP_MATCH String
               | FieldName IS [NOT] NULL | FieldName BETWEEN Value AND Value | FieldName DURING Function

Keywords are case-insensitive, strings take single or double quotes (the same at both ends).
Clause rules from https://developers.google.com/google-ads/api/docs/query/structure and
.../query/date-ranges: a query selecting ``segments.date`` needs a finite date range in WHERE
(else ``EXPECTED_FILTERS_ON_DATE_RANGE``), dates are ``'YYYY-MM-DD'``, ``DURING`` takes the
predefined ranges (``LAST_7_DAYS`` … excluding today). Errors are ``QueryError`` values
(https://developers.google.com/google-ads/api/reference/rpc/v26/QueryErrorEnum.QueryError).
The field catalog is the few resources and fields the syncs use (``campaign``, ``customer``,
``segments.date``, ``metrics.*``); anything else is ``UNRECOGNIZED_FIELD``, as the real API says of
a misspelt field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any


class GaqlError(Exception):
    """A QueryError enum value and its message (and the offending text as ``trigger``)."""

    def __init__(self, code: str, message: str, trigger: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.trigger = code, message, trigger


@dataclass(frozen=True)
class FieldSpec:
    category: str  # ATTRIBUTE | SEGMENT | METRIC
    kind: str  # INT64 | DOUBLE | STRING | ENUM | DATE | BOOLEAN
    enum: tuple[str, ...] = ()


_CAMPAIGN_STATUS = ("UNSPECIFIED", "UNKNOWN", "ENABLED", "PAUSED", "REMOVED")
_CHANNEL_TYPE = ("UNSPECIFIED", "UNKNOWN", "SEARCH", "DISPLAY", "SHOPPING", "VIDEO", "PERFORMANCE_MAX",
                 "DEMAND_GEN", "MULTI_CHANNEL", "LOCAL", "SMART", "HOTEL", "LOCAL_SERVICES", "TRAVEL")
FIELDS: dict[str, FieldSpec] = {
    "campaign.resource_name": FieldSpec("ATTRIBUTE", "STRING"),
    "campaign.id": FieldSpec("ATTRIBUTE", "INT64"),
    "campaign.name": FieldSpec("ATTRIBUTE", "STRING"),
    "campaign.status": FieldSpec("ATTRIBUTE", "ENUM", _CAMPAIGN_STATUS),
    "campaign.advertising_channel_type": FieldSpec("ATTRIBUTE", "ENUM", _CHANNEL_TYPE),
    "customer.resource_name": FieldSpec("ATTRIBUTE", "STRING"),
    "customer.id": FieldSpec("ATTRIBUTE", "INT64"),
    "customer.descriptive_name": FieldSpec("ATTRIBUTE", "STRING"),
    "customer.currency_code": FieldSpec("ATTRIBUTE", "STRING"),
    "customer.time_zone": FieldSpec("ATTRIBUTE", "STRING"),
    "customer.manager": FieldSpec("ATTRIBUTE", "BOOLEAN"),
    "segments.date": FieldSpec("SEGMENT", "DATE"),
    "metrics.impressions": FieldSpec("METRIC", "INT64"),
    "metrics.clicks": FieldSpec("METRIC", "INT64"),
    "metrics.cost_micros": FieldSpec("METRIC", "INT64"),
    "metrics.conversions": FieldSpec("METRIC", "DOUBLE"),
    "metrics.conversions_value": FieldSpec("METRIC", "DOUBLE"),
    "metrics.ctr": FieldSpec("METRIC", "DOUBLE"),
    "metrics.average_cpc": FieldSpec("METRIC", "DOUBLE"),
}
# FROM resource -> the resources whose attribute fields it may select (itself + attributed ones).
RESOURCES: dict[str, frozenset[str]] = {"campaign": frozenset({"campaign", "customer"}),
                                        "customer": frozenset({"customer"})}
# Resource types that exist in the API but that the sandbox does not serve.
_KNOWN_ELSEWHERE = {"ad_group", "ad_group_ad", "keyword_view", "campaign_budget", "customer_client",
                    "search_term_view", "ad_group_criterion", "bidding_strategy", "asset", "geographic_view"}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op>>=|<=|!=|=|>|<)
  | (?P<punct>[(),])
""", re.VERBOSE)
_FIELD_NAME = re.compile(r"[a-z][a-zA-Z0-9._]*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
DURING_FUNCTIONS = ("TODAY", "YESTERDAY", "LAST_7_DAYS", "LAST_14_DAYS", "LAST_30_DAYS", "THIS_MONTH",
                    "LAST_MONTH", "THIS_WEEK_SUN_TODAY", "THIS_WEEK_MON_TODAY", "LAST_WEEK_SUN_SAT",
                    "LAST_WEEK_MON_SUN", "LAST_BUSINESS_WEEK")
_PARAMETERS = ("include_drafts", "omit_unselected_resource_names")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any = None


@dataclass
class Condition:
    field: str
    op: str  # =, !=, >, >=, <, <=, IN, NOT IN, LIKE, NOT LIKE, REGEXP_MATCH, NOT REGEXP_MATCH,
    #          IS NULL, IS NOT NULL, BETWEEN, DURING
    value: Any = None  # a scalar, a list, a (low, high) pair for BETWEEN, a function name for DURING


@dataclass
class Query:
    select: list[str]
    resource: str
    where: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    limit: int | None = None
    parameters: dict[str, bool] = field(default_factory=dict)

    def selects(self, category: str) -> bool:
        return any(FIELDS[f].category == category for f in self.select)

    def date_range(self, today: date) -> tuple[date | None, date | None]:
        """The tightest [low, high] the WHERE clause puts on ``segments.date`` (None: open)."""
        low: date | None = None
        high: date | None = None

        def narrow(lo: date | None, hi: date | None) -> None:
            nonlocal low, high
            if lo is not None:
                low = lo if low is None else max(low, lo)
            if hi is not None:
                high = hi if high is None else min(high, hi)

        for cond in self.where:
            if cond.field != "segments.date":
                continue
            v = cond.value
            if cond.op == "BETWEEN":
                narrow(_as_date(v[0]), _as_date(v[1]))
            elif cond.op == "=":
                narrow(_as_date(v), _as_date(v))
            elif cond.op in (">=", ">"):
                narrow(_as_date(v) + timedelta(days=cond.op == ">"), None)
            elif cond.op in ("<=", "<"):
                narrow(None, _as_date(v) - timedelta(days=cond.op == "<"))
            elif cond.op == "IN":
                days = [_as_date(x) for x in v]
                narrow(min(days), max(days))
            elif cond.op == "DURING":
                narrow(*during(v, today))
        return low, high

    def matches(self, values: dict[str, Any]) -> bool:
        return all(_holds(c, values.get(c.field)) for c in self.where)


def _as_date(text: str) -> date:
    return date.fromisoformat(text)


def during(function: str, today: date) -> tuple[date, date]:
    """The days a predefined range covers, in the account's own calendar (``today`` is its day)."""
    if function == "TODAY":
        return today, today
    if function == "YESTERDAY":
        return today - timedelta(days=1), today - timedelta(days=1)
    if function.startswith("LAST_") and function.endswith("_DAYS"):
        n = int(function[5:-5])
        return today - timedelta(days=n), today - timedelta(days=1)
    if function == "THIS_MONTH":
        return today.replace(day=1), today
    if function == "LAST_MONTH":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if function == "THIS_WEEK_MON_TODAY":
        return today - timedelta(days=today.weekday()), today
    if function == "THIS_WEEK_SUN_TODAY":
        return today - timedelta(days=(today.weekday() + 1) % 7), today
    if function == "LAST_WEEK_MON_SUN":
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if function == "LAST_WEEK_SUN_SAT":
        sunday = today - timedelta(days=(today.weekday() + 1) % 7 + 7)
        return sunday, sunday + timedelta(days=6)
    # LAST_BUSINESS_WEEK: Monday to Friday of the previous week
    monday = today - timedelta(days=today.weekday() + 7)
    return monday, monday + timedelta(days=4)


def _like(pattern: str) -> re.Pattern[str]:
    """GAQL LIKE: ``%`` any run, ``_`` one character, ``[x]`` a literal x."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[" and i + 2 < len(pattern) and pattern[i + 2] == "]":
            out.append(re.escape(pattern[i + 1]))
            i += 3
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _holds(cond: Condition, actual: Any) -> bool:
    op, v = cond.op, cond.value
    if op == "IS NULL":
        return actual is None
    if op == "IS NOT NULL":
        return actual is not None
    if actual is None:
        return False
    if op == "DURING":
        return True  # already applied as the date range
    if op == "BETWEEN":
        return v[0] <= actual <= v[1]
    if op in ("IN", "NOT IN"):
        return (actual in v) == (op == "IN")
    if op in ("LIKE", "NOT LIKE"):
        return bool(_like(v).fullmatch(str(actual))) == (op == "LIKE")
    if op in ("REGEXP_MATCH", "NOT REGEXP_MATCH"):
        return bool(re.fullmatch(v, str(actual))) == (op == "REGEXP_MATCH")
    return {"=": actual == v, "!=": actual != v, ">": actual > v, ">=": actual >= v,
            "<": actual < v, "<=": actual <= v}[op]


# ------------------------------------------------------------------------ parsing
def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            if ch in "'\"":
                rest = text[pos + 1:]
                if "\n" in rest.split(ch, 1)[0]:
                    raise GaqlError("PROHIBITED_NEWLINE_IN_STRING", "Newline characters are not allowed in strings.")
                raise GaqlError("STRING_NOT_TERMINATED", "String is not terminated.", text[pos:pos + 20])
            if not ch.isascii():
                raise GaqlError("BAD_SYMBOL", f"Non-ASCII symbol encountered outside of strings: '{ch}'.", ch)
            raise GaqlError("UNEXPECTED_INPUT", f"Unexpected input {ch}.", ch)
        kind = m.lastgroup or ""
        raw = m.group()
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token("string", raw, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif kind == "number":
            tokens.append(Token("number", raw, float(raw) if "." in raw else int(raw)))
        else:
            tokens.append(Token(kind, raw))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    # -- helpers
    def peek(self, offset: int = 0) -> Token | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        """Whether the next tokens are these keywords (case-insensitive); consumes them if so."""
        for i, word in enumerate(words):
            tok = self.peek(i)
            if tok is None or tok.kind != "ident" or tok.text.upper() != word:
                return False
        self.pos += len(words)
        return True

    def next(self, what: str) -> Token:
        tok = self.peek()
        if tok is None:
            raise GaqlError("UNEXPECTED_END_OF_QUERY", f"Unexpected end of query, expected {what}.")
        self.pos += 1
        return tok

    def field_name(self) -> str:
        tok = self.next("a field name")
        if tok.kind != "ident" or not _FIELD_NAME.fullmatch(tok.text) or "." not in tok.text:
            raise GaqlError("BAD_FIELD_NAME", f"Field name is invalid: '{tok.text}'.", tok.text)
        return tok.text

    # -- clauses
    def parse(self) -> Query:
        if not self.keyword("SELECT"):
            raise GaqlError("EXPECTED_SELECT", "SELECT is missing at the beginning of query.")
        select = [self.field_name()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.pos += 1
            select.append(self.field_name())
        if not self.keyword("FROM"):
            tok = self.peek()
            if tok is None:
                raise GaqlError("EXPECTED_FROM", "Missing FROM clause.")
            raise GaqlError("UNEXPECTED_INPUT", f"Unexpected input {tok.text}.", tok.text)
        resource_tok = self.next("a resource name")
        query = Query(select=select, resource=resource_tok.text)
        if self.keyword("WHERE"):
            query.where.append(self.condition())
            while self.keyword("AND"):
                query.where.append(self.condition())
        if self.keyword("ORDER"):
            if not self.keyword("BY"):
                raise GaqlError("EXPECTED_BY", "Expecting ORDER BY to have BY.")
            query.order_by.append(self.ordering())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.pos += 1
                query.order_by.append(self.ordering())
        if self.keyword("LIMIT"):
            tok = self.next("a limit")
            if tok.kind != "number" or not isinstance(tok.value, int):
                raise GaqlError("BAD_LIMIT_VALUE", f"Limit value is invalid: '{tok.text}'.", tok.text)
            if tok.value < 1:
                raise GaqlError("LIMIT_VALUE_TOO_LOW", "Limit value is too low.", tok.text)
            query.limit = tok.value
        if self.keyword("PARAMETERS"):
            self.parameter(query)
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.pos += 1
                self.parameter(query)
        tok = self.peek()
        if tok is not None:
            raise GaqlError("UNEXPECTED_INPUT", f"Unexpected input {tok.text}.", tok.text)
        return query

    def ordering(self) -> tuple[str, bool]:
        name = self.field_name()
        if self.keyword("DESC"):
            return name, True
        self.keyword("ASC")
        return name, False

    def parameter(self, query: Query) -> None:
        name = self.next("a parameter name")
        if name.text not in _PARAMETERS:
            raise GaqlError("BAD_PARAMETER_NAME", f"Parameter unknown or not supported: '{name.text}'.", name.text)
        if self.next("=").text != "=":
            raise GaqlError("BAD_OPERATOR", "Expected '=' after the parameter name.")
        value = self.next("a parameter value")
        if value.text.lower() not in ("true", "false"):
            raise GaqlError("BAD_PARAMETER_VALUE", f"Parameter have invalid value: '{value.text}'.", value.text)
        query.parameters[name.text] = value.text.lower() == "true"

    def condition(self) -> Condition:
        name = self.field_name()
        if self.keyword("IS", "NOT", "NULL"):
            return Condition(name, "IS NOT NULL")
        if self.keyword("IS", "NULL"):
            return Condition(name, "IS NULL")
        for words in (("NOT", "IN"), ("IN",), ("NOT", "LIKE"), ("LIKE",), ("NOT", "REGEXP_MATCH"),
                      ("REGEXP_MATCH",), ("DURING",), ("BETWEEN",)):
            if self.keyword(*words):
                op = " ".join(words)
                break
        else:
            tok = self.next("an operator")
            if tok.kind != "op":
                raise GaqlError("BAD_OPERATOR", f"Invalid operator encountered: '{tok.text}'.", tok.text)
            op = tok.text
        if op == "BETWEEN":
            low = self.value()
            if not self.keyword("AND"):
                raise GaqlError("EXPECTED_AND", "Expected AND between values with BETWEEN operator.")
            return Condition(name, op, (low, self.value()))
        if op in ("IN", "NOT IN"):
            return Condition(name, op, self.value_list())
        if op == "DURING":
            tok = self.next("a date function")
            if tok.kind != "ident" or tok.text not in DURING_FUNCTIONS:
                raise GaqlError("INVALID_VALUE_WITH_DURING_OPERATOR",
                                f"Invalid value with DURING operator: '{tok.text}'.", tok.text)
            return Condition(name, op, tok.text)
        value = self.value()
        if isinstance(value, list):
            raise GaqlError("EXPECTED_SINGLE_VALUE", "A list was passed as a value to a condition whose operator "
                            "expects a single value.")
        return Condition(name, op, value)

    def value(self) -> Any:
        tok = self.next("a value")
        if tok.text == "(":
            self.pos -= 1
            return self.value_list()
        if tok.kind in ("string", "number"):
            return tok.value
        if tok.kind == "ident":
            return tok.text  # a literal, e.g. an enum constant written without quotes
        raise GaqlError("BAD_VALUE", f"Value is invalid: '{tok.text}'.", tok.text)

    def value_list(self) -> list[Any]:
        if self.next("(").text != "(":
            raise GaqlError("EXPECTED_LIST", "The operator used in the conditions requires the value to be a list.")
        items = []
        while True:
            tok = self.next("a value")
            if tok.text == ")" and not items:
                raise GaqlError("PROHIBITED_EMPTY_LIST_IN_CONDITION", "Empty list is not allowed in a condition.")
            if tok.kind not in ("string", "number", "ident"):
                raise GaqlError("BAD_VALUE", f"Value is invalid: '{tok.text}'.", tok.text)
            items.append(tok.value if tok.kind != "ident" else tok.text)
            sep = self.next("',' or ')'")
            if sep.text == ")":
                return items
            if sep.text != ",":
                raise GaqlError("UNEXPECTED_INPUT", f"Unexpected input {sep.text}.", sep.text)


def parse(text: str, today: date) -> Query:
    """A validated query, or GaqlError. ``today`` (the account's own day) resolves DURING."""
    if not isinstance(text, str) or not text.strip():
        raise GaqlError("UNEXPECTED_END_OF_QUERY", "Query is empty.")
    query = _Parser(text).parse()
    _validate(query, today)
    return query


def _validate(query: Query, today: date) -> None:
    if query.resource not in RESOURCES:
        code = ("PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE" if query.resource in _KNOWN_ELSEWHERE
                else "BAD_RESOURCE_TYPE_IN_FROM_CLAUSE")
        raise GaqlError(code, f"Invalid resource type was specified in the FROM clause: '{query.resource}'.",
                        query.resource)
    allowed = RESOURCES[query.resource]
    for name in [*query.select, *(c.field for c in query.where), *(f for f, _ in query.order_by)]:
        spec = FIELDS.get(name)
        if spec is None:
            raise GaqlError("UNRECOGNIZED_FIELD", f"Unrecognized field in the query: '{name}'.", name)
        prefix = name.split(".", 1)[0]
        if spec.category == "ATTRIBUTE" and prefix not in allowed:
            raise GaqlError("PROHIBITED_RESOURCE_TYPE_IN_SELECT_CLAUSE",
                            f"Cannot select or filter on the following fields from '{query.resource}': "
                            f"'{name}'.", name)
    for cond in query.where:
        _check_values(cond)
    low, high = query.date_range(today)
    if "segments.date" in query.select and (low is None or high is None):
        raise GaqlError("EXPECTED_FILTERS_ON_DATE_RANGE",
                        "Filters on date range are expected when segments.date is selected.", "segments.date")
    if low is not None and high is not None and low > high:
        raise GaqlError("DATE_RANGE_TOO_NARROW", "Filters on date have a start date after end date.")


def _check_values(cond: Condition) -> None:
    spec = FIELDS[cond.field]
    if cond.op in ("IS NULL", "IS NOT NULL"):
        return
    if cond.op == "DURING":
        if spec.kind != "DATE":
            raise GaqlError("OPERATOR_FIELD_MISMATCH", f"DURING is only valid on date fields, not '{cond.field}'.")
        return
    values = list(cond.value) if isinstance(cond.value, (list, tuple)) else [cond.value]
    for v in values:
        if spec.kind == "DATE":
            if not isinstance(v, str) or not _DATE.fullmatch(v):
                raise GaqlError("INVALID_DATE_FORMAT" if isinstance(v, str) else "BAD_VALUE",
                                f"Invalid date format. Expected 'YYYY-MM-DD', got '{v}'.", str(v))
            try:
                date.fromisoformat(v)
            except ValueError:
                raise GaqlError("BAD_VALUE", f"Value is invalid: '{v}'.", v) from None
        elif spec.kind == "ENUM" and v not in spec.enum:
            raise GaqlError("BAD_ENUM_CONSTANT", f"A condition used in the query references an invalid enum "
                            f"constant: '{v}'.", str(v))
        elif spec.kind in ("INT64", "DOUBLE") and not isinstance(v, (int, float)):
            if not (isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v)):
                raise GaqlError("BAD_NUMBER", f"Encountered number can not be parsed: '{v}'.", str(v))
    if spec.kind in ("INT64", "DOUBLE"):  # numbers may be written as strings: compare as numbers
        cast = int if spec.kind == "INT64" else float
        if isinstance(cond.value, tuple):
            cond.value = tuple(cast(v) for v in cond.value)
        elif isinstance(cond.value, list):
            cond.value = [cast(v) for v in cond.value]
        elif cond.op not in ("LIKE", "NOT LIKE", "REGEXP_MATCH", "NOT REGEXP_MATCH"):
            cond.value = cast(cond.value)
