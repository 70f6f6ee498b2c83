"""Eligibility expressions over baseline covariates, evaluated on arrays.

An expression is a restricted Python expression: numbers, strings, covariate names,
comparisons (``<``, ``<=``, ``==``, ``!=``, ``>=``, ``>``, chained as ``18 <= age <= 80``),
``and`` / ``or`` / ``not``, ``+ - * / **``, ``in`` / ``not in`` with a list of
constants, and the functions ``abs``, ``log`` and ``exp``. A categorical covariate is
compared with its level names (``region == 'europe'``, ``region in ['europe', 'asia']``);
a binary covariate takes the values 0 and 1. Nothing else is allowed: no attributes,
calls of other functions, subscripts or lambdas, so an expression cannot run code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from array_api_compat import device

from trials.arrays import namespace

_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.GtE: operator.ge,
    ast.Gt: operator.gt,
}
_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_FUNCTIONS = ("abs", "log", "exp")  # of the array namespace
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.BinOp,
    ast.Compare,
    ast.List,
    ast.Tuple,
    ast.Load,
    ast.In,
    ast.NotIn,
    *_COMPARE,
    *_BINARY,
)


@dataclass(frozen=True)
class Expression:
    """A checked eligibility expression.

    Parameters
    ----------
    text : str
        The expression as written.
    levels : mapping
        For each categorical covariate, its level names in code order.
    """

    text: str
    tree: ast.Expression
    levels: Mapping[str, Sequence[str]]

    @property
    def names(self) -> set[str]:
        """The covariate names the expression uses."""
        return {
            node.id
            for node in ast.walk(self.tree)
            if isinstance(node, ast.Name) and node.id not in _FUNCTIONS
        }

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Evaluate on covariate arrays (categorical ones as integer codes; numpy arrays
        or torch tensors) → bool array."""
        xp = namespace(*columns.values()) if columns else np
        with np.errstate(all="ignore"):
            value = _Evaluator(columns, self.levels, xp).visit(self.tree.body)
        shape = np.broadcast_shapes(*(tuple(c.shape) for c in columns.values()))
        if xp is np:
            value = np.asarray(value)
        elif np.isscalar(value):
            value = xp.asarray(value, device=device(next(iter(columns.values()))))
        if value.dtype != xp.bool:
            raise ValueError(f"expression {self.text!r} is not a condition (true/false)")
        return xp.broadcast_to(value, shape)


def parse_expression(
    text: str,
    numeric: Sequence[str],
    levels: Mapping[str, Sequence[str]],
) -> Expression:
    """Parse and check an expression against the covariates it may use.

    Parameters
    ----------
    text : str
        The expression.
    numeric : sequence of str
        Names of numeric covariates (normal, log-normal, binary).
    levels : mapping
        Categorical covariates and their level names.

    Raises
    ------
    ValueError
        With a message saying what is not allowed or not known.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not a valid expression: {text!r} ({exc.msg})") from None
    known = set(numeric) | set(levels)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in known and node.id not in _FUNCTIONS:
                choices = ", ".join(sorted(known)) or "none"
                raise ValueError(f"unknown covariate {node.id!r} (covariates: {choices})")
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS):
                raise ValueError("only the functions abs, log and exp may be called")
            if len(node.args) != 1 or node.keywords:
                raise ValueError(f"{node.func.id}() takes exactly one argument")
        elif isinstance(node, ast.Constant):
            if not isinstance(node.value, int | float | str) or isinstance(node.value, bool):
                raise ValueError(f"constant {node.value!r} is not allowed")
            if not isinstance(node.value, str) and not _finite_number(node.value):
                raise ValueError(f"number {str(node.value)[:20]} is too large")
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, right in zip(node.ops, operands[1:], strict=True):
                if isinstance(op, ast.In | ast.NotIn) and not isinstance(
                    right, ast.List | ast.Tuple
                ):
                    raise ValueError("'in' takes a list of values, e.g. region in ['a', 'b']")
        elif not isinstance(node, _ALLOWED):
            raise ValueError(f"{type(node).__name__} is not allowed in an expression")
    _check_levels(tree, levels)
    return Expression(text=text, tree=tree, levels=dict(levels))


def _finite_number(value: int | float) -> bool:
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False


def _check_levels(tree: ast.Expression, levels: Mapping[str, Sequence[str]]) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        for left, right in zip(operands, operands[1:], strict=False):
            for name, other in ((left, right), (right, left)):
                if isinstance(name, ast.Name) and name.id in levels:
                    constants = other.elts if isinstance(other, ast.List | ast.Tuple) else [other]
                    for const in constants:
                        if not (isinstance(const, ast.Constant) and isinstance(const.value, str)):
                            raise ValueError(
                                f"categorical covariate {name.id!r} is compared with level "
                                f"names in quotes (levels: {', '.join(levels[name.id])})"
                            )
                        if const.value not in levels[name.id]:
                            raise ValueError(
                                f"{const.value!r} is not a level of {name.id!r} "
                                f"(levels: {', '.join(levels[name.id])})"
                            )


class _Evaluator(ast.NodeVisitor):
    def __init__(self, columns: Mapping[str, np.ndarray], levels: Mapping[str, Sequence[str]], xp):
        self.columns = columns
        self.levels = levels
        self.xp = xp

    def visit_Name(self, node: ast.Name):
        return self.columns[node.id]

    def visit_Constant(self, node: ast.Constant):
        if isinstance(node.value, str):
            raise ValueError(f"text {node.value!r} may only be compared with a categorical")
        # float arithmetic: no huge integers, no exceptions (a numpy scalar with numpy
        # arrays; a Python float with tensors, which a numpy scalar would turn into arrays)
        return np.float64(node.value) if self.xp is np else float(node.value)

    def visit_BoolOp(self, node: ast.BoolOp):
        values = [self._condition(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = (result & value) if isinstance(node.op, ast.And) else (result | value)
        return result

    def visit_UnaryOp(self, node: ast.UnaryOp):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            operand = self._as_bool(operand)
            return (not operand) if isinstance(operand, bool) else ~operand
        return -operand if isinstance(node.op, ast.USub) else +operand

    def visit_BinOp(self, node: ast.BinOp):
        return _BINARY[type(node.op)](self.visit(node.left), self.visit(node.right))

    def visit_Call(self, node: ast.Call):
        return getattr(self.xp, node.func.id)(self.visit(node.args[0]))

    def visit_Compare(self, node: ast.Compare):
        operands = [node.left, *node.comparators]
        result = None
        for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
            part = self._compare(op, left, right)
            result = part if result is None else result & part
        return result

    def _compare(self, op: ast.cmpop, left: ast.expr, right: ast.expr):
        if isinstance(op, ast.In | ast.NotIn):
            value = self.visit(left)
            members = [self._constant(left, e) for e in right.elts]
            inside = self.xp.zeros(value.shape, dtype=self.xp.bool, device=device(value))
            for member in members:
                inside = inside | (value == member)
            return inside if isinstance(op, ast.In) else ~inside
        a = self._constant(right, left) if isinstance(left, ast.Constant) else self.visit(left)
        b = self._constant(left, right) if isinstance(right, ast.Constant) else self.visit(right)
        return _COMPARE[type(op)](a, b)

    def _constant(self, name: ast.expr, const: ast.expr):
        """A constant as a number, or as a level code when compared with a categorical."""
        if isinstance(const, ast.Constant) and isinstance(const.value, str):
            if isinstance(name, ast.Name) and name.id in self.levels:
                return list(self.levels[name.id]).index(const.value)
            raise ValueError(f"text {const.value!r} may only be compared with a categorical")
        return self.visit(const)

    def _condition(self, node: ast.expr):
        return self._as_bool(self.visit(node))

    def _as_bool(self, value):
        if self.xp is np:
            value = np.asarray(value)
            ok = value.dtype == bool
        else:
            ok = isinstance(value, bool) or getattr(value, "dtype", None) == self.xp.bool
        if not ok:
            raise ValueError("'and', 'or' and 'not' take conditions (true/false)")
        return value

    def generic_visit(self, node: ast.AST):
        raise ValueError(f"{type(node).__name__} is not allowed in an expression")
