"""How the offline model decides to call a tool, and with which arguments.

Tools are seen as OpenAI-format schemas (what ``bind_tools`` hands every provider), so arguments are
built from the JSON schema and validate against the tool's args schema. Tools may register a matcher
(text -> args) and a formatter (args, result -> answer) with :func:`register_offline_matcher`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "OfflineFormatter",
    "OfflineMatcher",
    "PlannedCall",
    "ToolChoiceMode",
    "ToolSpec",
    "fill_args",
    "format_tool_result",
    "normalize_tool_choice",
    "plan_tool_calls",
    "register_offline_matcher",
    "tool_directive",
    "unregister_offline_matcher",
]

OfflineMatcher = Callable[[str], dict[str, Any] | None]
"""Maps the user's text to the tool's arguments, or ``None`` when the text does not ask for the tool."""
OfflineFormatter = Callable[[dict[str, Any], str], str]
"""Turns the tool's arguments and its (successful) result into the model's final answer."""
ToolChoiceMode = Literal["auto", "none", "any"]


@dataclass(frozen=True)
class _Registration:
    matcher: OfflineMatcher
    formatter: OfflineFormatter | None


# Written at import time of the tool modules, read by every model call; dict operations are atomic.
_REGISTRY: dict[str, _Registration] = {}


def register_offline_matcher(
    tool_name: str, matcher: OfflineMatcher, *, formatter: OfflineFormatter | None = None
) -> None:
    """Teach the offline model when to call ``tool_name`` (``matcher``) and how to phrase its result."""
    _REGISTRY[tool_name] = _Registration(matcher, formatter)


def unregister_offline_matcher(tool_name: str) -> None:
    """Forget the matcher and formatter of ``tool_name`` (no error if none was registered)."""
    _REGISTRY.pop(tool_name, None)


@dataclass(frozen=True)
class ToolSpec:
    """A bound tool as the model sees it: name, description and JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_openai(cls, tool: Mapping[str, Any]) -> ToolSpec:
        function = tool.get("function", tool)
        return cls(str(function["name"]), str(function.get("description") or ""), function.get("parameters") or {})


@dataclass(frozen=True)
class PlannedCall:
    name: str
    args: dict[str, Any]


def normalize_tool_choice(choice: Any, tool_names: Sequence[str]) -> tuple[ToolChoiceMode, str | None]:
    """Map LangChain/OpenAI ``tool_choice`` spellings to a mode and an optional forced tool name."""
    if choice is None or choice is False or choice == "auto":
        return "auto", None
    if choice == "none":
        return "none", None
    if choice is True or choice in ("any", "required"):
        return "any", None
    name = choice
    if isinstance(choice, Mapping):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
    if not isinstance(name, str) or name not in tool_names:
        raise ValueError(f"tool_choice {choice!r} names no bound tool; bound tools: {sorted(tool_names)}")
    return "any", name


_EXPLICIT_RE = re.compile(r"\buse\s+(?:the\s+)?([A-Za-z_][\w.-]*)(?:\s+tool)?(?:\s+with)?\s*:?\s*", re.I)
_GENERIC_WORDS = frozenset(
    {"get", "set", "run", "call", "make", "create", "fetch", "find", "tool", "tools", "function", "func", "value"}
)


def tool_directive(text: str, tools: Sequence[ToolSpec]) -> PlannedCall | None:
    """An explicit ``use <tool> {json}`` request with JSON arguments (how tool results may ask for more)."""
    calls = _explicit_calls(text, {t.name: t for t in tools}, require_json=True)
    return calls[0] if calls else None


def plan_tool_calls(
    text: str, tools: Sequence[ToolSpec], *, forced: bool, forced_name: str | None
) -> list[PlannedCall]:
    """The tool calls a user message asks for, in order of precedence; empty means answer in text.

    Precedence: explicit ``use <tool> {json}``; call syntax ``tool(arg, ...)``; registered matchers;
    a mention of the tool's name; finally, when a call is forced, the forced (or first) tool.
    """
    candidates = [t for t in tools if forced_name is None or t.name == forced_name]
    by_name = {t.name: t for t in candidates}
    if calls := _explicit_calls(text, by_name, require_json=False):
        return calls
    for spec in sorted(candidates, key=lambda t: -len(t.name)):
        if (args := _call_syntax_args(text, spec)) is not None:
            return [PlannedCall(spec.name, fill_args(spec.parameters, text, args))]
    for spec in candidates:
        registration = _REGISTRY.get(spec.name)
        if registration and (args := registration.matcher(text)) is not None:
            return [PlannedCall(spec.name, fill_args(spec.parameters, text, args))]
    for spec in candidates:
        if _mentions(text, spec.name):
            return [PlannedCall(spec.name, fill_args(spec.parameters, text))]
    if forced and candidates:
        return [PlannedCall(candidates[0].name, fill_args(candidates[0].parameters, text))]
    return []


def format_tool_result(name: str, args: dict[str, Any], content: str, *, is_error: bool) -> str:
    """One sentence (or paragraph) of the final answer for one tool result."""
    if is_error:
        return f"The {name} tool could not complete the request: {_clip(content, 400)}"
    registration = _REGISTRY.get(name)
    if registration and registration.formatter:
        try:
            return registration.formatter(args, content)
        except Exception:  # a formatter bug must not break the conversation; fall back to plain text
            pass
    return f"The {name} tool returned: {_clip(content, 1000)}"


def fill_args(schema: Mapping[str, Any], text: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``given`` completed with values for every missing required property, coerced to the schema's types."""
    numbers = _numbers(text)
    return _fill_object(schema, schema, text, dict(given or {}), numbers)


def _fill_object(
    root: Mapping[str, Any], schema: Mapping[str, Any], text: str, given: dict[str, Any], numbers: Iterator[float]
) -> dict[str, Any]:
    schema = _resolve(root, schema)
    properties: Mapping[str, Any] = schema.get("properties") or {}
    result: dict[str, Any] = {}
    for key, value in given.items():
        result[key] = _coerce(root, properties[key], value) if key in properties else value
    for key in schema.get("required") or ():
        if key not in result and key in properties:
            result[key] = _value_for(root, properties[key], text, numbers)
    return result


def _value_for(root: Mapping[str, Any], schema: Mapping[str, Any], text: str, numbers: Iterator[float]) -> Any:
    schema = _resolve(root, schema)
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = _type_of(root, schema)
    if kind == "string":
        limit = schema.get("maxLength")
        value = text if text.strip() else "input"
        return value[:limit] if isinstance(limit, int) else value
    if kind in ("integer", "number"):
        return _bounded(schema, next(numbers, 0.0), integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    if kind == "object":
        return _fill_object(root, schema, text, {}, numbers)
    return text


def _coerce(root: Mapping[str, Any], schema: Mapping[str, Any], value: Any) -> Any:
    kind = _type_of(root, _resolve(root, schema))
    try:
        if kind == "integer" and isinstance(value, (str, float)) and float(value) == int(float(value)):
            return int(float(value))
        if kind == "number" and isinstance(value, str):
            return float(value)
        if kind == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    except ValueError:
        pass
    return value


def _type_of(root: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None:
        for option in schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf") or ():
            option = _resolve(root, option)
            if option.get("type") != "null":
                return _type_of(root, option)
    return kind if isinstance(kind, str) else None


def _resolve(root: Mapping[str, Any], schema: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return target if isinstance(target, Mapping) else schema
    return schema


def _bounded(schema: Mapping[str, Any], value: float, *, integer: bool) -> float | int:
    step = 1 if integer else 1e-9
    low = schema.get("minimum", schema["exclusiveMinimum"] + step if "exclusiveMinimum" in schema else None)
    high = schema.get("maximum", schema["exclusiveMaximum"] - step if "exclusiveMaximum" in schema else None)
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return int(value) if integer else float(value)


def _numbers(text: str) -> Iterator[float]:
    return (float(m) for m in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?", text))


def _explicit_calls(text: str, by_name: Mapping[str, ToolSpec], *, require_json: bool) -> list[PlannedCall]:
    calls: list[PlannedCall] = []
    decoder = json.JSONDecoder()
    for match in _EXPLICIT_RE.finditer(text):
        spec = by_name.get(match.group(1))
        if spec is None or any(c.name == spec.name for c in calls):  # one call per tool and message
            continue
        args: Any = None
        if text[match.end() : match.end() + 1] == "{":
            try:
                args, _ = decoder.raw_decode(text, match.end())
            except ValueError:
                args = None
        if not isinstance(args, dict):
            if require_json:
                continue
            registration = _REGISTRY.get(spec.name)
            args = (registration.matcher(text) if registration else None) or {}
        calls.append(PlannedCall(spec.name, fill_args(spec.parameters, text, args)))
    return calls


def _call_syntax_args(text: str, spec: ToolSpec) -> dict[str, Any] | None:
    match = re.search(rf"(?<![\w.]){re.escape(spec.name)}\s*\(([^()]*)\)", text)
    if match is None:
        return None
    inner = match.group(1).strip()
    if not inner:
        return {}
    names = list((spec.parameters.get("properties") or {}).keys())
    try:
        call = ast.parse(f"f({inner})", mode="eval").body
        assert isinstance(call, ast.Call)
        positional = [ast.literal_eval(a) for a in call.args]
        keywords = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (SyntaxError, ValueError, AssertionError):
        positional, keywords = [inner], {}
    return {**dict(zip(names, positional, strict=False)), **keywords}


def _mentions(text: str, name: str) -> bool:
    lowered = text.lower()
    if re.search(rf"(?<!\w){re.escape(name.lower())}(?!\w)", lowered):
        return True
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ").lower()
    if " " in spaced and spaced in lowered:
        return True
    words = [w for w in spaced.split() if len(w) >= 4 and w not in _GENERIC_WORDS]
    return any(re.search(rf"\b{re.escape(w)}\b", lowered) for w in words)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
