"""``TemplateCatalog``: what workflows and LangChain middleware builders need of the factory.

They are registered *in* the ``AgentFactory`` and build agents *through* it; naming this narrow
surface (instead of importing the factory) keeps the dependency one way: factory -> workflows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langgraph.checkpoint.base import BaseCheckpointSaver

    from agent_runtime.agents._registry import Registry
    from agent_runtime.agents.templates import AgentTemplate
    from agent_runtime.settings import Settings

__all__ = ["TemplateCatalog"]


class TemplateCatalog(Protocol):
    settings: Settings
    workflows: Registry[Any]

    def get_template(self, name: str) -> AgentTemplate: ...

    def list_templates(self) -> list[AgentTemplate]: ...

    def register_template(
        self, template: AgentTemplate | dict[str, Any], *, replace: bool = False
    ) -> AgentTemplate: ...

    def register_workflow(
        self, name: str, graph: Any = None, *, builder: Callable[[], Any] | None = None, replace: bool = False
    ) -> None: ...

    def model_for(self, template: AgentTemplate, override: str | None = None) -> str: ...

    def build_model(self, template: AgentTemplate, spec: str | None) -> BaseChatModel: ...

    def create_from_template(
        self, name: str, *, model: str | None = None, checkpointer: BaseCheckpointSaver[Any] | None = None
    ) -> Any: ...
