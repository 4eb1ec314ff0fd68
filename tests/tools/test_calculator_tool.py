"""The safe calculator: arithmetic and statistics, bounded, with clear tool errors and an offline matcher."""

from __future__ import annotations

import operator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import ToolMessage
from langchain_core.tools import ToolException

from agent_runtime.tools import calculator, evaluate_expression, format_number, match_calculation


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("17*23+4", "395"),
        ("2**10", "1024"),
        ("2^10", "1024"),
        ("-3 + 5", "2"),
        ("--3", "3"),
        ("7 // 2", "3"),
        ("7 % 3", "1"),
        ("(1 + 2) * 3", "9"),
        ("10 / 4", "2.5"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** -2", "0.25"),
        ("6 \u00d7 7", "42"),
        ("mean(3, 5, 10)", "6"),
        ("mean([1, 2, 3, 4])", "2.5"),
        ("median([1, 3, 2])", "2"),
        ("stdev(2, 4, 4, 4, 5, 5, 7, 9)", "2.1380899353"),
        ("variance(1, 2, 3, 4)", "1.66666666667"),
        ("min(4, -1, 7)", "-1"),
        ("max([4, -1], 7)", "7"),
        ("sum(1, 2, 3)", "6"),
        ("sum([])", "0"),
        ("round(2.567, 2)", "2.57"),
        ("round(2.5)", "2"),
        ("abs(-4)", "4"),
        ("sqrt(16) + 1", "5"),
        ("2 * pi", "6.28318530718"),
        ("10**999 // 10**998", "10"),
    ],
)
def test_evaluates(expression: str, expected: str) -> None:
    assert format_number(evaluate_expression(expression)) == expected
    assert calculator.invoke({"expression": expression}) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1+" * 300 + "1", "too long"),
        ("2**100000", "exponent"),
        ("9**9**9", "exponent"),
        ("10**999 * 10**999", "too large"),
        ("1e308 * 10", "too large"),
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("foo(1)", "unknown function 'foo'"),
        ("x + 1", "unknown name 'x'"),
        ("__import__('os').system('true')", "only plain function calls"),
        ("(1).__class__", "not allowed"),
        ("'a' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("lambda: 1", "not allowed"),
        ("[i for i in (1, 2)]", "not allowed"),
        ("round(1.5, ndigits=1)", "keyword"),
        ("sqrt(1, 2)", "wrong number of arguments"),
        ("stdev(5)", "at least 2"),
        ("sqrt(-1)", "negative"),
        ("(-8) ** 0.5", "not a real number"),
        ("[1, 2] + 1", "list"),
        ("[1, 2]", "a list"),
        ("1 +", "Cannot parse"),
        ("3 < 4", "not allowed"),
        ("1 & 2", "not supported"),
    ],
)
def test_bad_expressions_raise_clear_tool_errors(expression: str, message: str) -> None:
    with pytest.raises(ToolException, match=message):
        evaluate_expression(expression)


def test_tool_errors_go_back_to_the_model_instead_of_raising() -> None:
    assert "division by zero" in calculator.invoke({"expression": "1/0"})
    call = {"name": "calculator", "args": {"expression": "2**100000"}, "id": "c1", "type": "tool_call"}
    message = calculator.invoke(call)
    assert isinstance(message, ToolMessage)
    assert message.status == "error" and "exponent" in message.text


async def test_async_invocation() -> None:
    assert await calculator.ainvoke({"expression": "17*23+4"}) == "395"
    assert "empty" in await calculator.ainvoke({"expression": ""})


@given(st.integers(-(10**6), 10**6), st.sampled_from(["+", "-", "*", "//", "%"]), st.integers(-(10**6), 10**6))
@settings(max_examples=200, deadline=None)
def test_integer_arithmetic_matches_python(a: int, op: str, b: int) -> None:
    fn = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}[op]
    if op in ("//", "%") and b == 0:
        with pytest.raises(ToolException):
            evaluate_expression(f"{a} {op} ({b})")
    else:
        assert evaluate_expression(f"{a} {op} ({b})") == fn(a, b)


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_number_or_a_tool_exception(text: str) -> None:
    try:
        value = evaluate_expression(text)
    except ToolException:
        return
    assert isinstance(value, (int, float))


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("what is 17*23+4?", "17*23+4"),
        ("compute (3+4)*2 please", "(3+4)*2"),
        ("what is the mean of 3, 5 and 10?", "mean(3, 5, 10)"),
        ("average of the numbers 2 4 6", "mean(2, 4, 6)"),
        ("standard deviation of 1, 2, 3", "stdev(1, 2, 3)"),
        ("square root of 16", "sqrt(16)"),
        ("max of -3, 7", "max(-3, 7)"),
        ("sqrt(16) + 1", "sqrt(16) + 1"),
        ("what is 2^10", "2^10"),
    ],
)
def test_offline_matcher_finds_calculations(text: str, expression: str) -> None:
    assert match_calculation(text) == {"expression": expression}


@pytest.mark.parametrize("text", ["what is 42?", "COVID-19 cases rose", "in 2024 we had 5 cases", "hello", ""])
def test_offline_matcher_ignores_non_calculations(text: str) -> None:
    assert match_calculation(text) is None
