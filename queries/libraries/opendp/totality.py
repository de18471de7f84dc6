"""Polars plans admitted only when their evaluation cannot fail on any value of the data.

A release must not fail because of the private values it reads: a failure that depends on
them is an oracle (`2 ** x` raises on integers when x < 0, a strict cast raises on one
unparsable string, adding a filtered column to an unfiltered one raises when their lengths
differ). This module walks a plan in polars' JSON form and admits only the plan nodes and
expression kinds listed here, each total on every value of every column type (null,
extreme integers, NaN, infinities, empty and long strings), as
tests/privacy/test_opendp_totality.py shows by evaluating each of them on such values.
Arguments that would make a kind partial must be literals (a power's exponent, a clip's
bounds, a pattern), casts are admitted only between types where every value converts,
and the length of each expression is tracked so that expressions of data-dependent
lengths (filtered ones) are never combined with others.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lomas.errors import InvalidQuery

if TYPE_CHECKING:
    import polars as pl

# Plan nodes, and the fields each may have.
PLAN_NODES: dict[str, frozenset[str]] = {
    "DataFrameScan": frozenset({"df", "schema"}),
    "Select": frozenset({"expr", "input", "options"}),
    "HStack": frozenset({"exprs", "input", "options"}),
    "Filter": frozenset({"input", "predicate"}),
    "GroupBy": frozenset({"input", "keys", "aggs", "predicates", "maintain_order", "options", "apply"}),
}
_BINARY_OPERATORS = ("Eq", "NotEq", "Lt", "LtEq", "Gt", "GtEq", "EqValidity", "NotEqValidity", "And", "Or", "Xor",
                     "Plus", "Minus", "Multiply", "TrueDivide", "FloorDivide",
                     "Modulus")  # fmt: skip
_AGGREGATES = ("First", "Last", "Sum", "Mean", "Min", "Max", "Median", "Count", "NUnique", "Std", "Var")
_BOOLEAN = (
    "IsNull",
    "IsNotNull",
    "Not",
    "IsNan",
    "IsNotNan",
    "IsFinite",
    "IsInfinite",
    "IsIn",
    "IsBetween",
    "Any",
    "All",
)
_STRING = ("LenChars", "LenBytes", "Lowercase", "Uppercase", "StartsWith", "EndsWith", "Contains")
_TEMPORAL = ("Year", "Quarter", "Month", "Week", "WeekDay", "Day", "OrdinalDay", "Hour", "Minute", "Second")
_FUNCTIONS = ("FillNull", "Clip", "Abs", "Negate", "Round", "Floor", "Ceil", "Sign", "Exp", "Log", "Pow.Sqrt",
              "Pow.Generic", "Cut", "NullCount", "Replace", "FfiPlugin",
              *(f"Boolean.{name}" for name in _BOOLEAN), *(f"StringExpr.{name}" for name in _STRING),
              *(f"TemporalExpr.{name}" for name in _TEMPORAL))  # fmt: skip

# Every expression kind the guard admits (names as `expression_kind` gives them).
ADMITTED_EXPRESSIONS: frozenset[str] = frozenset({
    "Column", "Literal.Dyn", "Literal.Scalar", "Literal.Series", "Len", "Alias", "Filter", "Ternary",
    "Cast.Strict", "Cast.NonStrict",
    *(f"BinaryExpr.{op}" for op in _BINARY_OPERATORS), *(f"Agg.{name}" for name in _AGGREGATES),
    *(f"Function.{name}" for name in _FUNCTIONS),
})  # fmt: skip

# Functions that reduce their input to one value, and argument positions that must be literals.
_REDUCING = frozenset({"Function.Boolean.Any", "Function.Boolean.All", "Function.NullCount"})
_LITERAL_ARGUMENTS: dict[str, tuple[int, ...]] = {
    "Function.Clip": (1, 2),
    "Function.Log": (1,),
    "Function.Pow.Generic": (1,),
    "Function.Boolean.IsIn": (1,),
    "Function.Replace": (1, 2),
    "Function.StringExpr.Contains": (1,),
}

# Casts that convert every value (to a value or, when not strict, to null): source group → target groups.
TOTAL_CASTS: dict[str, dict[str, frozenset[str]]] = {
    "NonStrict": {
        "int": frozenset({"int", "float", "bool", "string"}),
        "float": frozenset({"int", "float", "bool", "string"}),
        "bool": frozenset({"int", "float", "bool", "string"}),
        "string": frozenset({"int", "float", "string"}),
        "temporal": frozenset({"string"}),
    },
    "Strict": {
        "int": frozenset({"float", "string"}),
        "float": frozenset({"float", "string"}),
        "bool": frozenset({"int", "float", "bool", "string"}),
        "string": frozenset({"string"}),
        "temporal": frozenset({"string"}),
    },
}

# How long an expression's result is: one value, one per row (or group row), a data-dependent
# number (a filtered expression), or a literal series of its own length.
SCALAR, ROW, FILTERED, SERIES = "scalar", "row", "filtered", "series"
_REFUSED = (
    "The plan uses {what}, which can fail on some values of the data; the server admits only "
    "expressions that evaluate on every value{hint}."
)
_HINTS = {
    "Cast": " (casts must convert every value: use strict=False, to a type every value converts to)",
    "Function.Pow.Generic": " (a power's exponent must be a literal number, and not a negative integer)",
    "Function.StringExpr.Slice": " (string slices are not admitted)",
}
_FILTER_MIXED = (
    "The plan combines a filtered expression with another column or filter: their lengths depend on "
    "the data. Filter the frame instead (`.filter(...)` before `.select`), or aggregate each filtered "
    "expression on its own."
)


class PartialPlan(InvalidQuery):
    """The plan holds an expression whose evaluation can fail on some values of the data."""


def expression_kind(node: Any) -> str:
    """The kind of an expression node of polars' JSON form, e.g. "Function.Boolean.IsNull" or "Cast.Strict"."""
    if not isinstance(node, dict) or len(node) != 1:
        return node if isinstance(node, str) else "?"
    (tag, value), *_ = node.items()
    match tag:
        case "Function":
            return "Function." + _function_name(value["function"])
        case "BinaryExpr":
            return f"BinaryExpr.{value['op']}"
        case "Cast":
            return f"Cast.{value['options']}"
        case "Agg" | "Literal":
            return f"{tag}.{next(iter(value))}"
    return tag


def check_total(tree: dict[str, Any]) -> None:
    """Refuse (PartialPlan) a plan unless every node and expression in it is admitted and total."""
    _plan(tree)


def _function_name(function: Any) -> str:
    """ "FillNull", {"Boolean": "IsNull"} → "Boolean.IsNull", {"Clip": {"has_min": …}} → "Clip"."""
    parts = []
    while True:
        if isinstance(function, str):
            return ".".join([*parts, function])
        if not isinstance(function, dict) or len(function) != 1:
            return ".".join(parts) or "?"
        (key, function), *_ = function.items()
        if not key[:1].isupper():
            return ".".join(parts) or key
        parts.append(key)
        if key == "FfiPlugin":
            return ".".join(parts)


def _refuse(kind: str) -> PartialPlan:
    hint = next((text for prefix, text in _HINTS.items() if kind.startswith(prefix)), "")
    return PartialPlan(_REFUSED.format(what=kind, hint=hint))


def _plan(node: Any) -> None:
    if not isinstance(node, dict) or len(node) != 1:
        raise PartialPlan("The plan has a node the server does not know.")
    (kind, fields), *_ = node.items()
    allowed = PLAN_NODES.get(kind)
    if allowed is None or not isinstance(fields, dict) or not set(fields) <= allowed:
        raise PartialPlan(f"The plan uses a {kind} step, which the server does not admit.")
    if kind == "DataFrameScan":
        return
    _plan(fields["input"])
    schema = _Schema(fields["input"])
    match kind:
        case "Select":
            _combine([_expression(expr, schema) for expr in fields["expr"]])
        case "HStack":
            _combine([ROW, *(_expression(expr, schema) for expr in fields["exprs"])])
        case "Filter":
            _combine([ROW, _expression(fields["predicate"], schema)])
        case "GroupBy":
            options = fields.get("options") or {}
            if fields.get("apply") is not None or any(options.get(name) for name in ("dynamic", "rolling", "slice")):
                raise PartialPlan(
                    "The plan uses a dynamic, rolling or sliced group_by, which the server does not admit."
                )
            _combine([ROW, *(_expression(key, schema) for key in fields["keys"])])
            for expr in [*fields["aggs"], *(fields.get("predicates") or [])]:
                _combine([_expression(expr, schema)])


def _expression(node: Any, schema: _Schema) -> str:  # noqa: PLR0911 (one return per length rule)
    """The length class of an admitted expression; PartialPlan for anything else."""
    kind = expression_kind(node)
    if kind not in ADMITTED_EXPRESSIONS:
        raise _refuse(kind)
    (tag, value), *_ = node.items() if isinstance(node, dict) else [(node, None)]
    match tag:
        case "Column":
            return ROW
        case "Literal":
            return SERIES if kind == "Literal.Series" else SCALAR
        case "Len":
            return SCALAR
        case "Alias":
            return _expression(value[0], schema)
        case "Filter":
            if _combine([_expression(value["input"], schema), _expression(value["by"], schema)]) == FILTERED:
                raise PartialPlan(_FILTER_MIXED)
            return FILTERED
        case "Ternary":
            return _combine([_expression(value[name], schema) for name in ("predicate", "truthy", "falsy")])
        case "BinaryExpr":
            return _combine([_expression(value["left"], schema), _expression(value["right"], schema)])
        case "Cast":
            _check_cast(node, schema)
            return _combine([_expression(value["expr"], schema)])
        case "Agg":
            payload = value[next(iter(value))]
            operand = payload["input"] if isinstance(payload, dict) and "input" in payload else payload
            _combine([_expression(operand[0] if isinstance(operand, list) else operand, schema)])
            return SCALAR
    return _function(kind, value, schema)


def _function(kind: str, value: dict[str, Any], schema: _Schema) -> str:
    inputs = value["input"]
    if kind == "Function.FfiPlugin":  # OpenDP's own aggregates: the data first, then their parameters
        classes = [_expression(argument, schema) for argument in inputs]
        flags = str(value["function"]["FfiPlugin"].get("flags", {}).get("flags", ""))
        return SCALAR if "RETURNS_SCALAR" in flags or not classes else _combine([classes[0]])
    literal_positions = _LITERAL_ARGUMENTS.get(kind, ())
    for position in literal_positions:
        if position < len(inputs) and not (isinstance(inputs[position], dict) and "Literal" in inputs[position]):
            raise _refuse(kind)
    if kind == "Function.Pow.Generic" and not _is_admitted_exponent(inputs[1]):
        raise _refuse(kind)
    classes = [_expression(argument, schema) for position, argument in enumerate(inputs)
               if position not in literal_positions]  # fmt: skip
    for position in literal_positions:
        if position < len(inputs):
            _expression(inputs[position], schema)
    combined = _combine(classes)
    return SCALAR if kind in _REDUCING else combined


def _combine(classes: list[str]) -> str:
    """The length class of expressions evaluated together; PartialPlan when it depends on the data."""
    if SERIES in classes:
        raise PartialPlan(
            "The plan combines a literal series with the data: their lengths may differ. "
            "Series literals are admitted only as parameters (is_in, replace, OpenDP's candidates)."
        )
    shaped = [length for length in classes if length != SCALAR]
    if not shaped:
        return SCALAR
    if all(length == ROW for length in shaped):
        return ROW
    if shaped == [FILTERED]:
        return FILTERED
    raise PartialPlan(_FILTER_MIXED)


def _is_admitted_exponent(node: dict[str, Any]) -> bool:
    """A literal float, or a literal integer at least 0 (a negative integer exponent raises on integers)."""
    literal = node.get("Literal", {})
    number = (literal.get("Dyn") or literal.get("Scalar") or {}) if isinstance(literal, dict) else {}
    if not isinstance(number, dict) or len(number) != 1:
        return False
    (kind, amount), *_ = number.items()
    if kind == "Float" or kind.startswith("Float"):
        return isinstance(amount, int | float)
    return (kind == "Int" or kind.startswith(("Int", "UInt"))) and isinstance(amount, int) and amount >= 0


def _check_cast(node: dict[str, Any], schema: _Schema) -> None:
    """A cast is admitted when every value of its input's type converts (strictly: to a value)."""
    import polars as pl

    options = node["Cast"]["options"]
    source, target = schema.dtype(node["Cast"]["expr"]), schema.dtype(node)
    if source is not None and source in (target, pl.Null):  # a null converts to any type
        return
    allowed = TOTAL_CASTS[options].get(_dtype_group(source), frozenset())
    if source is None or target is None or _dtype_group(target) not in allowed:
        raise _refuse(f"Cast.{options}")


def _dtype_group(dtype: Any) -> str | None:
    """ "int", "float", "bool", "string" or "temporal", or None for other types."""
    import polars as pl

    if dtype is None:
        return None
    groups: list[tuple[Callable[[Any], bool], str]] = [
        (lambda d: d.is_integer(), "int"), (lambda d: d.is_float(), "float"), (lambda d: d == pl.Boolean, "bool"),
        (lambda d: d == pl.String, "string"), (lambda d: d.is_temporal(), "temporal"),
    ]  # fmt: skip
    return next((group for test, group in groups if test(dtype)), None)


def _typable(tree: Any) -> Any:
    """The tree with float literals JSON could not hold (NaN, ±inf are written null) set to 0: same types."""
    if isinstance(tree, dict):
        return {key: 0.0 if value is None and str(key).startswith("Float") else _typable(value)
                for key, value in tree.items()}  # fmt: skip
    if isinstance(tree, list):
        return [_typable(value) for value in tree]
    return tree


class _Schema:
    """The columns a plan node's expressions read, resolved by polars from the node's input plan."""

    def __init__(self, input_plan: dict[str, Any]) -> None:
        self._input_plan = input_plan
        self._schema: pl.Schema | None = None

    def dtype(self, expression: dict[str, Any]) -> pl.DataType | None:
        """The type of an expression's values, or None when polars cannot tell it on its own."""
        import polars as pl

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # polars deprecates the JSON form, which is only read here
                expr = pl.Expr.deserialize(io.StringIO(json.dumps(_typable(expression))), format="json")
                return pl.LazyFrame(schema=self.schema()).select(expr.alias("value")).collect_schema()["value"]
        except Exception:  # an expression polars cannot type on its own: not admitted as a cast
            return None

    def schema(self) -> pl.Schema:
        import polars as pl

        if self._schema is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = pl.LazyFrame.deserialize(io.StringIO(json.dumps(_typable(self._input_plan))), format="json")
                self._schema = frame.collect_schema()
        return self._schema
