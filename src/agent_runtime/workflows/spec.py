"""The declarative workflow model: steps that are templates, wired by sequence, branches and fan-out/fan-in.

A workflow is a list of steps. Each step runs one template's agent on a text built from the workflow's
input and earlier steps' outputs (``input``). Wiring, in order of precedence:

- ``after: [a, b]``: the step runs once its dependencies ran (``join: all``, the default, waits for every
  one of them: fan-in; ``join: any`` runs after whichever ran, for the alternatives of a branch);
- a step named as a ``branch`` target runs only when its brancher's output picks it;
- otherwise a step runs after the step listed before it (a plain sequence); the first step is the root.

Several steps after the same step run in parallel (fan-out). Workflows are acyclic: loops are not
declarable (register a compiled LangGraph graph for those), and a step cannot run another workflow.

In ``input``, ``{input}`` and ``{steps.NAME}`` are the only placeholders: any other ``{word}`` is an
error (a typo would otherwise reach the model verbatim). ``{{`` and ``}}`` are a literal ``{`` and ``}``
(as in ``str.format``); other braces, e.g. of JSON examples, are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent_runtime.agents.templates import check_name, validate_config

__all__ = [
    "END_STEP",
    "BranchRule",
    "BranchSpec",
    "StepSpec",
    "WorkflowSpec",
    "placeholders",
    "render_input",
    "unknown_placeholders",
]

END_STEP = "end"
"""Branch target that ends the workflow."""

_TOKEN = re.compile(r"\{\{|\}\}|\{\s*[A-Za-z_][\w.\-]*\s*\}")
"""What an input mapping interprets: the ``{{`` / ``}}`` escapes and anything shaped like a placeholder."""
_PLACEHOLDER = re.compile(r"\{(input|previous|steps\.([a-z][a-z0-9_\-]{0,63}))\}")
_ESCAPES = {"{{": "{", "}}": "}"}
_RESERVED = frozenset({END_STEP, "input", "previous", "steps", "__start__", "__end__"})


class BranchRule(BaseModel):
    """One test of a step's output (exactly one of ``contains``, ``regex``, ``equals``) and where it leads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contains: str | None = None
    regex: str | None = None
    equals: str | None = None
    ignore_case: bool = True
    goto: str
    """The step to run when the test matches, or ``end``."""

    @model_validator(mode="after")
    def _one_test(self) -> BranchRule:
        given = [k for k in ("contains", "regex", "equals") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a branch rule needs exactly one of contains, regex or equals")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"invalid regex {self.regex!r}: {exc}") from exc
        return self

    def matches(self, text: str) -> bool:
        flags = re.I if self.ignore_case else 0
        if self.regex is not None:
            return re.search(self.regex, text, flags) is not None
        if self.contains is not None:
            return self.contains.lower() in text.lower() if self.ignore_case else self.contains in text
        assert self.equals is not None
        return text.strip().lower() == self.equals.lower() if self.ignore_case else text.strip() == self.equals


class BranchSpec(BaseModel):
    """Conditional routing on the step's own output: the first matching rule wins, else ``default``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[BranchRule] = Field(min_length=1)
    default: str = END_STEP

    def route(self, output: str) -> str:
        return next((rule.goto for rule in self.rules if rule.matches(output)), self.default)

    def targets(self) -> list[str]:
        seen = [rule.goto for rule in self.rules] + [self.default]
        return list(dict.fromkeys(seen))


class StepSpec(BaseModel):
    """One step: a template run on a mapped input, with its own timeout and retries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    template: str
    input: str | None = None
    """Text for the step's agent: ``{input}`` is the workflow input, ``{steps.NAME}`` a previous step's
    output, ``{{`` / ``}}`` a literal brace; any other ``{word}`` is an error. Default: ``{input}`` for a
    root step, the output of its one dependency otherwise."""
    after: list[str] | None = None
    join: Literal["all", "any"] = "all"
    branch: BranchSpec | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    retries: int = Field(default=0, ge=0, le=10)
    """Extra attempts after a retriable failure (provider rate limit or outage, timeout)."""

    @field_validator("input")
    @classmethod
    def _check_input(cls, value: str | None) -> str | None:
        unknown = unknown_placeholders(value or "")
        if unknown:
            raise ValueError(
                f"unknown placeholder {unknown[0]!r}: use {{input}} or {{steps.NAME}} "
                "(write {{ and }} for a literal brace)"
            )
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        check_name(value)
        if value in _RESERVED:
            raise ValueError(f"{value!r} is reserved")
        return value


class WorkflowSpec(BaseModel):
    """A named declarative workflow; registering it also registers a template of the same name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    steps: list[StepSpec] = Field(min_length=1, max_length=64)
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    """Timeout of the whole run (default: the runtime's run timeout)."""
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_name(value)

    @classmethod
    def parse(cls, data: WorkflowSpec | dict[str, Any]) -> WorkflowSpec:
        """Validate ``data``, raising ``TemplateConfigError`` that names the step of each problem."""
        if isinstance(data, WorkflowSpec):
            return data
        return validate_config(cls, data, "workflow", _describe)

    def step(self, name: str) -> StepSpec:
        return next(s for s in self.steps if s.name == name)


def _describe(data: Any, error: Any) -> str:
    loc = list(error["loc"])
    where = ".".join(str(p) for p in loc) or "workflow"
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int) and isinstance(data, dict):
        steps = data.get("steps")
        step = steps[loc[1]] if isinstance(steps, list) and loc[1] < len(steps) else None
        label = step.get("name") if isinstance(step, dict) else None
        where = f"step {label or '#' + str(loc[1])!r}" + ("." + ".".join(str(p) for p in loc[2:]) if loc[2:] else "")
    return f"{where}: {error['msg']}"


def _fields(text: str) -> Iterator[re.Match[str]]:
    """The valid placeholders of ``text`` (escapes and unknown placeholders are skipped)."""
    for token in _TOKEN.finditer(text):
        field = _PLACEHOLDER.fullmatch(token.group(0))
        if field is not None:
            yield field


def placeholders(text: str) -> list[str]:
    """Step names referenced by ``{steps.NAME}`` in an input mapping (``input`` itself is not listed)."""
    return [m.group(2) for m in _fields(text) if m.group(2)]


def reads_previous(text: str) -> bool:
    """Whether the mapping reads ``{previous}``: the output of the step it ran after (after alternative
    branches, ``join: any``, the one that ran)."""
    return any(m.group(1) == "previous" for m in _fields(text))


def unknown_placeholders(text: str) -> list[str]:
    """``{word}`` tokens of an input mapping that are neither ``{input}`` nor ``{steps.NAME}``."""
    tokens = (t.group(0) for t in _TOKEN.finditer(text))
    return [t for t in tokens if t not in _ESCAPES and not _PLACEHOLDER.fullmatch(t)]


def render_input(text: str, workflow_input: str, outputs: dict[str, str], upstream: Sequence[str] = ()) -> str:
    """Fill an input mapping; values are inserted verbatim (braces inside them are never re-read),
    ``{{`` and ``}}`` become ``{`` and ``}``. ``{previous}`` is the output of the ``upstream`` step that ran."""
    previous = next((outputs[name] for name in reversed(upstream) if name in outputs), "")

    def fill(token: re.Match[str]) -> str:
        raw = token.group(0)
        if raw in _ESCAPES:
            return _ESCAPES[raw]
        field = _PLACEHOLDER.fullmatch(raw)
        if field is None:
            return raw  # rejected when the workflow is registered; kept as is for a direct call
        if field.group(1) == "previous":
            return previous
        return workflow_input if field.group(2) is None else outputs.get(field.group(2), "")

    return _TOKEN.sub(fill, text)
