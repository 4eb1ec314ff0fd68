"""``AgentFactory``: templates and component registries in, compiled LangChain 1.x agents out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from agent_runtime._files import config_files
from agent_runtime.agents._registry import Registry
from agent_runtime.agents.lc_middleware import DEFAULT_LC_MIDDLEWARES, LCMiddlewareBuilder, history_limit
from agent_runtime.agents.templates import DEFAULT_TEMPLATES, AgentTemplate, load_template_file
from agent_runtime.errors import (
    AgentRuntimeError,
    ConfigurationError,
    NotFoundError,
    TemplateConfigError,
    TemplateNotFoundError,
)
from agent_runtime.settings import Settings

__all__ = ["AgentFactory", "MemoryPolicy"]


@dataclass(frozen=True)
class MemoryPolicy:
    """How much conversation an agent keeps: ``stateful`` binds the session's checkpointer; the oldest
    turns beyond ``max_messages`` are removed from the stored history before each model call;
    ``long_term`` also compiles the agent with the long-term store (``remember`` / ``recall`` and any
    tool or middleware reading ``runtime.store``), confined to the run's owner."""

    stateful: bool = True
    max_messages: int | None = None
    long_term: bool = False


class AgentFactory:
    """Builds agents from templates. Registries hold tools, memory policies, workflows (compiled
    LangGraph graphs run like agents) and LangChain middlewares; everything is injected, nothing global.

    Compiled agents are cached per (template, model, checkpointer): compiling a graph costs far more
    than running the offline model, and agents are stateless between runs (state lives in checkpoints).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        model_resolver: Callable[..., BaseChatModel] | None = None,
        register_defaults: bool = True,
    ) -> None:
        self.settings = settings or Settings()
        if model_resolver is None:
            from agent_runtime.models.resolve import resolve_model

            model_resolver = resolve_model
        self._resolve = model_resolver
        self.tools: Registry[BaseTool] = Registry("tool")
        self.memory: Registry[MemoryPolicy] = Registry("memory")
        self.workflows: Registry[Any] = Registry("workflow")
        self.lc_middlewares: Registry[LCMiddlewareBuilder] = Registry("langchain middleware")
        self.store: BaseStore | None = None
        """The long-term store agents with ``long_term`` memory get (set by the runtime, ``use_store``)."""
        self._templates: dict[str, AgentTemplate] = {}
        self._cache: dict[tuple[str, str, int], Any] = {}
        self._lock = threading.Lock()
        for name, builder in DEFAULT_LC_MIDDLEWARES.items():
            self.lc_middlewares.register(name, builder)
        self.memory.register("conversation", MemoryPolicy(True, self.settings.limits.max_history_messages))
        self.memory.register("none", MemoryPolicy(stateful=False))
        self.memory.register("long_term", MemoryPolicy(True, self.settings.limits.max_history_messages, long_term=True))
        if register_defaults:
            self._register_default_components()

    def _register_default_components(self) -> None:
        from agent_runtime.tools.calculator import calculator
        from agent_runtime.tools.memory import memory_tools
        from agent_runtime.tools.search import make_search_tool

        self.tools.register("calculator", calculator)
        for name, memory_tool in memory_tools().items():
            self.tools.register(name, memory_tool)
        docs = self.settings.documents_dir
        self.tools.register("search", factory=lambda: make_search_tool(docs))
        for template in DEFAULT_TEMPLATES:
            self.register_template(template)
        if self.settings.templates_dir is not None:
            self.load_templates(self.settings.templates_dir, replace=True)
        from agent_runtime.workflows.defaults import register_default_workflows

        register_default_workflows(self)  # research_report, and templates_dir's `workflows:` sections

    # -- components -------------------------------------------------------------------------------
    def register_tool(
        self, tool: BaseTool | Callable[..., Any], *, name: str | None = None, replace: bool = False
    ) -> None:
        """Register a LangChain tool (or a plain function, wrapped with ``langchain_core.tools.tool``)."""
        if not isinstance(tool, BaseTool):
            from langchain_core.tools import tool as as_tool

            tool = as_tool(tool)
        self.tools.register(name or tool.name, tool, replace=replace)

    def register_memory(self, name: str, policy: MemoryPolicy, *, replace: bool = False) -> None:
        self.memory.register(name, policy, replace=replace)

    def use_store(self, store: BaseStore | None) -> None:
        """Give agents whose memory policy is ``long_term`` this store (the runtime passes one that
        confines each call to the run's owner: ``agent_runtime.store.RunScopedStore``)."""
        with self._lock:
            self.store = store
            self._cache.clear()

    def register_workflow(
        self, name: str, graph: Any = None, *, builder: Callable[[], Any] | None = None, replace: bool = False
    ) -> None:
        """Register a compiled LangGraph graph whose state has ``messages`` (or a builder of one)."""
        if graph is not None and not hasattr(graph, "ainvoke"):
            raise ConfigurationError(f"workflow {name!r} must be a compiled LangGraph graph")
        self.workflows.register(name, graph, factory=builder, replace=replace)
        self._drop_cache(name)

    # -- templates ---------------------------------------------------------------------------------
    def register_template(self, template: AgentTemplate | dict[str, Any], *, replace: bool = False) -> AgentTemplate:
        """Validate and register a template; unknown tools, memory, workflows or middlewares are errors."""
        parsed = AgentTemplate.parse(template)
        self.validate_template(parsed)
        with self._lock:
            if parsed.name in self._templates and not replace:
                raise TemplateConfigError(f"template {parsed.name!r} is already registered (pass replace=True)")
            self._templates[parsed.name] = parsed
        self._drop_cache(parsed.name)
        return parsed

    def unregister_template(self, name: str) -> None:
        with self._lock:
            if self._templates.pop(name, None) is None:
                raise TemplateNotFoundError(f"template {name!r} does not exist")
        self._drop_cache(name)

    def get_template(self, name: str) -> AgentTemplate:
        try:
            return self._templates[name]
        except KeyError:
            raise TemplateNotFoundError(f"template {name!r} does not exist") from None

    def has_template(self, name: str) -> bool:
        return name in self._templates

    def list_templates(self) -> list[AgentTemplate]:
        return [self._templates[name] for name in sorted(self._templates)]

    def load_templates(self, path: Path, *, replace: bool = False) -> list[AgentTemplate]:
        """Register every template in a YAML/TOML/JSON file, or in every such file of a folder."""
        files = config_files(path, "template", TemplateConfigError)
        loaded = [(file, t) for file in files for t in load_template_file(file)]
        builtin = {t.name for t in DEFAULT_TEMPLATES}
        for file, template in loaded:
            if template.name in builtin and not template.override:
                raise TemplateConfigError(
                    f"{file}: template {template.name!r} has the name of a built-in template: "
                    "set `override: true` in it to replace the built-in",
                    details={"template": template.name},
                )
        return [self.register_template(t, replace=replace) for _, t in loaded]

    def validate_template(self, template: AgentTemplate) -> None:
        problems = [f"unknown tool {name!r}" for name in template.tools if name not in self.tools]
        if template.memory not in self.memory:
            problems.append(f"unknown memory {template.memory!r}")
        if template.workflow is not None and template.workflow not in self.workflows:
            problems.append(f"unknown workflow {template.workflow!r}")
        problems += [f"unknown middleware {m.name!r}" for m in template.middleware if m.name not in self.lc_middlewares]
        if problems:
            raise TemplateConfigError(f"invalid template {template.name!r}: {'; '.join(problems)}")

    # -- building ----------------------------------------------------------------------------------
    def model_for(self, template: AgentTemplate, override: str | None = None) -> str:
        return override or template.model or self.settings.resolved_model()

    def create_agent(
        self,
        config: AgentTemplate | dict[str, Any],
        *,
        model: str | BaseChatModel | None = None,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        extra_tools: Sequence[BaseTool] = (),
        store: BaseStore | None = None,
    ) -> Any:
        """Build a compiled agent (a LangGraph graph) from a template or a template-shaped dict.

        A template with ``long_term`` memory gets ``store`` (default: the factory's ``store``)."""
        template = AgentTemplate.parse(config)
        self.validate_template(template)
        if template.workflow is not None:
            graph = self.workflows.get(template.workflow)
            return graph if checkpointer is None else graph.copy(update={"checkpointer": checkpointer})
        from langchain.agents import create_agent

        policy = self.memory.get(template.memory)
        chat_model = model if isinstance(model, BaseChatModel) else self.build_model(template, model)
        tools = [self.tools.get(name) for name in template.tools] + list(extra_tools)
        from agent_runtime.agents.generation import GenerationMiddleware

        middleware: list[Any] = [GenerationMiddleware()]
        if checkpointer is not None and policy.stateful and policy.max_messages:
            middleware.append(history_limit(policy.max_messages))
        if template.fallback_models:
            from langchain.agents.middleware import ModelFallbackMiddleware

            fallbacks = [self.build_model(template, spec) for spec in template.fallback_models]
            middleware.append(ModelFallbackMiddleware(*fallbacks))
        for spec in template.middleware:
            try:
                middleware.append(self.lc_middlewares.get(spec.name)(self, template, spec.options))
            except (TypeError, ValueError) as exc:
                raise TemplateConfigError(f"template {template.name!r}: middleware {spec.name!r}: {exc}") from exc
        return create_agent(
            chat_model,
            tools=tools,
            system_prompt=template.system_prompt,
            middleware=middleware,
            checkpointer=checkpointer if policy.stateful else None,
            store=self._long_term_store(template, policy, store),
            name=template.name,
        )

    def _long_term_store(self, template: AgentTemplate, policy: MemoryPolicy, store: BaseStore | None) -> Any:
        if not policy.long_term:
            return None
        store = store if store is not None else self.store
        if store is None:
            raise ConfigurationError(
                f"template {template.name!r} has long_term memory but the factory has no store (use_store)"
            )
        return store

    def create_from_template(
        self, name: str, *, model: str | None = None, checkpointer: BaseCheckpointSaver[Any] | None = None
    ) -> Any:
        """The compiled agent for a registered template (cached)."""
        template = self.get_template(name)
        model_name = self.model_for(template, model)
        key = (name, model_name, id(checkpointer) if checkpointer is not None else 0)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        agent = self.create_agent(template, model=model_name, checkpointer=checkpointer)
        with self._lock:
            self._cache[key] = agent
        return agent

    def create_batch(self, configs: Iterable[str | AgentTemplate | dict[str, Any]], **kwargs: Any) -> list[Any]:
        """Build several agents at once; all are validated first, so a bad one builds none."""
        items = list(configs)
        problems: list[str] = []
        for index, item in enumerate(items):
            try:
                if isinstance(item, str):
                    self.get_template(item)
                else:
                    self.validate_template(AgentTemplate.parse(item))
            except (TemplateConfigError, NotFoundError) as exc:
                problems.append(f"#{index}: {exc.message}")
        if problems:
            raise TemplateConfigError(f"create_batch: {len(problems)} invalid: {' | '.join(problems)}")
        return [
            self.create_from_template(item, **kwargs) if isinstance(item, str) else self.create_agent(item, **kwargs)
            for item in items
        ]

    def build_model(self, template: AgentTemplate, spec: str | None) -> BaseChatModel:
        model_name = self.model_for(template, spec)
        options: dict[str, Any] = {"token_latency_ms": self.settings.offline_token_latency_ms}
        if template.temperature is not None:
            options["temperature"] = template.temperature
        options["max_tokens"] = template.max_output_tokens
        try:
            return self._resolve(model_name, **options)
        except AgentRuntimeError:
            raise
        except Exception as exc:
            raise ConfigurationError(f"cannot build model {model_name!r} for {template.name!r}: {exc}") from exc

    def _drop_cache(self, name: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == name]:
                del self._cache[key]
