"""A safe arithmetic and statistics tool: a whitelist walker over Python's AST, never ``eval``.

Only numbers, ``+ - * / // % **``, parentheses, unary signs, lists and a fixed set of functions are
accepted; expression length, node count, exponents and result size are bounded so that no input can
exhaust CPU or memory. Errors become a :class:`ToolException` that the agent sees as a tool error.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.tools import StructuredTool, ToolException
from pydantic import BaseModel, Field

from agent_runtime.models.offline import register_offline_matcher

__all__ = ["MAX_EXPRESSION_CHARS", "CalculatorInput", "calculator", "evaluate_expression", "format_number"]

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 300
MAX_EXPONENT = 1000
MAX_RESULT_BITS = 4096
MAX_LIST_ITEMS = 10_000

Number = int | float
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
_SYMBOLS = str.maketrans({"\u00d7": "*", "\u00f7": "/"})  # multiplication and division signs


def _normalize(expression: str) -> str:
    return expression.translate(_SYMBOLS).replace("^", "**")


def _aggregate(fn: Callable[[list[Number]], Any], *, min_items: int = 1) -> Callable[..., Number]:
    def apply(*args: Any) -> Number:
        values = _flatten(args)
        if len(values) < min_items:
            raise ToolException(f"needs at least {min_items} number(s), got {len(values)}")
        result: Number = fn(values)
        return result

    return apply


def _round(value: Number, digits: int = 0) -> Number:
    if not isinstance(digits, int) or abs(digits) > 15:
        raise ToolException("round() takes a whole number of digits between -15 and 15")
    return round(value, digits) if digits else round(value)


def _sqrt(value: Number) -> float:
    if value < 0:
        raise ToolException("sqrt() of a negative number")
    return math.sqrt(value)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "mean": _aggregate(statistics.fmean),
    "average": _aggregate(statistics.fmean),
    "median": _aggregate(statistics.median),
    "stdev": _aggregate(statistics.stdev, min_items=2),
    "pstdev": _aggregate(statistics.pstdev),
    "variance": _aggregate(statistics.variance, min_items=2),
    "pvariance": _aggregate(statistics.pvariance),
    "min": _aggregate(min),
    "max": _aggregate(max),
    "sum": _aggregate(lambda v: sum(v), min_items=0),
    "round": _round,
    "abs": abs,
    "sqrt": _sqrt,
}


def evaluate_expression(expression: str) -> Number:
    """Evaluate ``expression`` safely.

    Raises:
        ToolException: empty, too long, malformed or unsupported input, division by zero, or a result
            beyond the size bounds; the message says which.
    """
    text = _normalize(expression.strip())
    if not text:
        raise ToolException("The expression is empty; pass arithmetic such as '17*23+4' or 'mean(3, 5, 10)'.")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ToolException(
            f"The expression is too long ({len(text)} characters; the limit is {MAX_EXPRESSION_CHARS})."
        )
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ToolException(f"Cannot parse {expression!r}: {getattr(exc, 'msg', exc)}.") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolException(f"The expression is too complex (more than {MAX_NODES} parts).")
    try:
        value = _eval(tree.body)
    except ToolException as exc:
        raise ToolException(f"Cannot evaluate {expression!r}: {exc}") from None
    except ZeroDivisionError:
        raise ToolException(f"Cannot evaluate {expression!r}: division by zero.") from None
    except (OverflowError, MemoryError, RecursionError):
        raise ToolException(f"Cannot evaluate {expression!r}: the result is too large.") from None
    except (ValueError, TypeError, statistics.StatisticsError) as exc:
        raise ToolException(f"Cannot evaluate {expression!r}: {exc}.") from None
    if isinstance(value, list):
        raise ToolException(f"Cannot evaluate {expression!r}: the result is a list, not a number.")
    return value


def format_number(value: Number) -> str:
    """Integers exactly; floats with up to 12 significant digits, without a trailing ``.0``."""
    if isinstance(value, int):
        return str(int(value))
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"


def _eval(node: ast.AST) -> Number | list[Number]:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolException(f"only numbers are allowed, not {node.value!r}")
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _number(_eval(node.operand))
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _number(_eval(node.left)), _number(_eval(node.right))
        if isinstance(node.op, ast.Pow):
            return _checked(_power(left, right))
        op = _BINARY.get(type(node.op))
        if op is None:
            raise ToolException(f"the operator {type(node.op).__name__} is not supported")
        return _checked(op(left, right))
    if isinstance(node, (ast.List, ast.Tuple)):
        return _flatten([_eval(item) for item in node.elts])
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolException(f"unknown name {node.id!r}; allowed constants: {', '.join(sorted(_CONSTANTS))}")
    if isinstance(node, ast.Call):
        return _call(node)
    raise ToolException(f"{type(node).__name__} is not allowed in an expression")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name):
        raise ToolException("only plain function calls such as mean(1, 2) are allowed")
    fn = _FUNCTIONS.get(node.func.id)
    if fn is None:
        raise ToolException(f"unknown function {node.func.id!r}; allowed: {', '.join(sorted(_FUNCTIONS))}")
    if node.keywords:
        raise ToolException(f"{node.func.id}() takes no keyword arguments")
    args = [_eval(arg) for arg in node.args]
    if node.func.id in ("round", "abs", "sqrt"):
        if not 1 <= len(args) <= (2 if node.func.id == "round" else 1):
            raise ToolException(f"wrong number of arguments to {node.func.id}()")
        return _checked(fn(*(_number(a) for a in args)))
    return _checked(fn(*args))


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolException(f"the exponent {format_number(exponent)} is too large (limit {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and base.bit_length() * exponent > MAX_RESULT_BITS:
        raise ToolException("the result is too large")
    result = base**exponent
    if isinstance(result, complex):
        raise ToolException("the result is not a real number")
    return result


def _checked(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_RESULT_BITS:
        raise ToolException("the result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolException("the result is too large" if math.isinf(value) else "the result is not a number")
    return value


def _number(value: Number | list[Number]) -> Number:
    if isinstance(value, list):
        raise ToolException("a list can only be passed to a function such as mean([1, 2, 3])")
    return value


def _flatten(values: Sequence[Any]) -> list[Number]:
    flat: list[Number] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    if len(flat) > MAX_LIST_ITEMS:
        raise ToolException(f"too many numbers (limit {MAX_LIST_ITEMS})")
    return flat


class CalculatorInput(BaseModel):
    expression: str = Field(
        description="Arithmetic with + - * / // % ** and parentheses, or statistics such as mean(3, 5, 10), "
        "median, stdev, variance, min, max, sum, round, abs, sqrt.",
    )


def _calculate(expression: str) -> str:
    return format_number(evaluate_expression(expression))


async def _acalculate(expression: str) -> str:
    return _calculate(expression)  # microseconds of CPU: not worth a thread hop


calculator = StructuredTool.from_function(
    func=_calculate,
    coroutine=_acalculate,
    name="calculator",
    description="Evaluate an arithmetic or statistics expression exactly and return the number. "
    "Use it for any calculation instead of doing arithmetic in your head.",
    args_schema=CalculatorInput,
    handle_tool_error=True,
)


_STATS_WORDS = {
    "mean": "mean",
    "average": "mean",
    "avg": "mean",
    "median": "median",
    "standard deviation": "stdev",
    "stdev": "stdev",
    "std dev": "stdev",
    "variance": "variance",
    "minimum": "min",
    "min": "min",
    "maximum": "max",
    "max": "max",
    "sum": "sum",
    "total": "sum",
    "square root": "sqrt",
    "sqrt": "sqrt",
}
_STATS_RE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, _STATS_WORDS), key=len, reverse=True)) + r")\s+of\s+(?:the\s+)?"
    r"(?:numbers\s+|values\s+)?(-?\d+(?:\.\d+)?(?:(?:\s*(?:,\s*and|,|and)\s*|\s+)-?\d+(?:\.\d+)?)*)",
    re.I,
)
_EXPR_SPAN_RE = re.compile(
    r"(?:\b(?:"
    + "|".join(sorted(_FUNCTIONS, key=len, reverse=True))
    + r"|pi)\b|\d+(?:\.\d+)?|[-+*/%^(),\s\u00d7\u00f7\[\]])+"
)
_BINARY_RE = re.compile(
    r"[\d)\]]\s*(?:\*\*|//|[-+*/%^\u00d7\u00f7])\s*[-+(\[\d]|\b(?:" + "|".join(_FUNCTIONS) + r")\s*\("
)


def match_calculation(text: str) -> dict[str, Any] | None:
    """The offline model's matcher: an arithmetic expression or a statistics request in ``text``."""
    if match := _STATS_RE.search(text):
        numbers = re.findall(r"-?\d+(?:\.\d+)?", match.group(2))
        if numbers:
            return {"expression": f"{_STATS_WORDS[match.group(1).lower()]}({', '.join(numbers)})"}
    best: str | None = None
    for span in _EXPR_SPAN_RE.finditer(text):
        candidate = span.group(0).strip(" ,")
        if len(candidate) > len(best or "") and _BINARY_RE.search(candidate) and _parses(candidate):
            best = candidate
    return {"expression": best} if best else None


def _parses(candidate: str) -> bool:
    try:
        ast.parse(_normalize(candidate), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def _format_answer(args: dict[str, Any], result: str) -> str:
    return f"{args.get('expression', '').strip()} = {result}."


register_offline_matcher("calculator", match_calculation, formatter=_format_answer)
