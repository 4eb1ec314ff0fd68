"""``AgentTemplate``: a named, validated agent configuration, loadable from YAML or TOML."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from agent_runtime._files import read_config_file
from agent_runtime.errors import TemplateConfigError

__all__ = ["DEFAULT_TEMPLATES", "AgentTemplate", "LangChainMiddlewareSpec", "load_template_file", "read_template_data"]

_NAME = re.compile(r"[a-z][a-z0-9_\-]{0,63}")


def check_name(value: str) -> str:
    """Names of templates, workflows and their steps (they appear in scopes, metrics and ids)."""
    if not _NAME.fullmatch(value):
        raise ValueError("must start with a lowercase letter and hold only a-z, 0-9, '_' or '-' (max 64)")
    return value


class LangChainMiddlewareSpec(BaseModel):
    """A LangChain 1.x agent middleware by name (``model_call_limit``, ``tool_call_limit``,
    ``summarization``, ``human_in_the_loop``, ...) with its keyword options."""

    model_config = ConfigDict(extra="forbid")

    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class AgentTemplate(BaseModel):
    """Everything needed to build one kind of agent. Unknown keys are errors, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    system_prompt: str = "You are a helpful assistant."
    model: str | None = None
    """Model string (``offline``, ``openai:gpt-4o-mini``, ...); None uses the runtime's default."""
    fallback_models: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    memory: str = "conversation"
    """Name in the factory's memory registry: how much conversation the agent keeps across runs."""
    workflow: str | None = None
    """Name in the factory's workflow registry; when set the template runs that graph instead of an agent."""
    middleware: list[LangChainMiddlewareSpec] = Field(default_factory=list)
    max_output_tokens: int = Field(default=1024, ge=1, le=1_000_000)
    client_system_messages: bool = True
    """Whether a client's own system messages (OpenAI ``system``/``developer`` roles) may join the
    conversation, after this template's ``system_prompt``; ``false`` refuses them (400)."""
    override: bool = False
    """In a template file: ``true`` to replace the built-in template of the same name (without it, a
    file naming a built-in is an error rather than a silent replacement)."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    max_retries: int = Field(default=2, ge=0, le=10)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("tools")
    @classmethod
    def _unique_tools(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("lists a tool more than once")
        return value

    @classmethod
    def parse(cls, data: AgentTemplate | dict[str, Any]) -> AgentTemplate:
        """Validate ``data`` into a template, raising ``TemplateConfigError`` with every problem listed."""
        if isinstance(data, AgentTemplate):
            return data
        return validate_config(cls, data, "template", _describe_error)

    def public_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def load_template_file(path: Path) -> list[AgentTemplate]:
    """Templates from a YAML, TOML or JSON file holding one template or ``templates: [...]`` (a file's
    ``workflows: [...]`` section is read by ``agent_runtime.workflows.load_workflows``)."""
    data = read_template_data(path)
    if isinstance(data, dict) and "workflows" in data:
        data = data.get("templates", [])
    elif isinstance(data, dict) and "templates" in data:
        data = data["templates"]
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise TemplateConfigError(f"template file {path} must hold a mapping or a list of mappings")
    return [AgentTemplate.parse(item) for item in items]


M = TypeVar("M", bound=BaseModel)


def _describe_error(data: Any, error: Any) -> str:
    return f"{'.'.join(str(p) for p in error['loc']) or 'template'}: {error['msg']}"


def validate_config(model: type[M], data: Any, kind: str, describe: Callable[[Any, Any], str]) -> M:
    """``model`` validated from ``data``, or ``TemplateConfigError`` listing every problem (``describe``
    names where each one is, e.g. the workflow step)."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        name = data.get("name", "?") if isinstance(data, dict) else "?"
        problems = "; ".join(describe(data, err) for err in exc.errors())
        raise TemplateConfigError(f"invalid {kind} {name!r}: {problems}") from exc


def read_template_data(path: Path) -> Any:
    """The parsed content of a YAML, TOML or JSON template file."""
    return read_config_file(path, "template", TemplateConfigError)


DEFAULT_TEMPLATES: tuple[AgentTemplate, ...] = (
    AgentTemplate(
        name="writer",
        description="Creative writing assistant: drafts, rewrites and short poems.",
        system_prompt=(
            "You are a careful writer. Answer with polished prose or verse that fits the request; "
            "keep it concise unless asked for length."
        ),
        tags=["writing"],
    ),
    AgentTemplate(
        name="analyst",
        description="Data analyst: exact arithmetic and statistics through the calculator tool.",
        system_prompt=(
            "You are a precise data analyst. Use the calculator tool for every computation and report the exact result."
        ),
        tools=["calculator"],
        tags=["analysis"],
    ),
    AgentTemplate(
        name="searcher",
        description="Research assistant: finds passages in the document library with BM25 search.",
        system_prompt="You are a research assistant. Search the document library and cite the files you used.",
        tools=["search"],
        tags=["search"],
    ),
)
