from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from agent_runtime.agents.factory import AgentFactory, MemoryPolicy
from agent_runtime.agents.templates import AgentTemplate
from agent_runtime.errors import ConfigurationError, NotFoundError, TemplateConfigError, TemplateNotFoundError
from agent_runtime.orchestration.executor import AgentExecutor
from agent_runtime.settings import Settings
from agent_runtime.types import AgentContext


@pytest.fixture
def factory() -> AgentFactory:
    return AgentFactory()


def test_default_templates_have_real_tools(factory: AgentFactory) -> None:
    names = [t.name for t in factory.list_templates()]
    assert names == ["analyst", "research_report", "searcher", "writer"]  # research_report: the default workflow
    assert factory.get_template("analyst").tools == ["calculator"]
    assert factory.get_template("searcher").tools == ["search"]
    assert factory.get_template("writer").tools == []
    assert factory.model_for(factory.get_template("writer")) == "offline"


def test_register_get_unregister(factory: AgentFactory) -> None:
    factory.register_template({"name": "helper", "system_prompt": "Be brief.", "tools": ["calculator"]})
    assert factory.get_template("helper").system_prompt == "Be brief."
    with pytest.raises(TemplateConfigError, match="already registered"):
        factory.register_template({"name": "helper"})
    factory.register_template({"name": "helper", "system_prompt": "Be long."}, replace=True)
    assert factory.get_template("helper").system_prompt == "Be long."
    factory.unregister_template("helper")
    with pytest.raises(TemplateNotFoundError):
        factory.get_template("helper")
    with pytest.raises(TemplateNotFoundError):
        factory.unregister_template("helper")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "Bad Name"}, "name"),
        ({"name": "x", "unknown_key": 1}, "unknown_key"),
        ({"name": "x", "tools": ["nope"]}, "unknown tool 'nope'"),
        ({"name": "x", "tools": ["calculator", "calculator"]}, "more than once"),
        ({"name": "x", "memory": "forever"}, "unknown memory"),
        ({"name": "x", "workflow": "missing"}, "unknown workflow"),
        ({"name": "x", "middleware": [{"name": "teleport"}]}, "unknown middleware"),
        ({"name": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"name": "x", "temperature": 9}, "temperature"),
    ],
)
def test_invalid_templates_are_rejected_with_the_reason(factory: AgentFactory, config: dict, message: str) -> None:
    with pytest.raises(TemplateConfigError, match=message):
        factory.register_template(config)


def test_load_templates_from_yaml_and_toml(factory: AgentFactory, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "templates:\n  - name: poet\n    system_prompt: Write verse.\n  - name: counter\n    tools: [calculator]\n"
    )
    (tmp_path / "b.toml").write_text('name = "tomly"\ndescription = "from toml"\n')
    loaded = factory.load_templates(tmp_path)
    assert sorted(t.name for t in loaded) == ["counter", "poet", "tomly"]
    assert factory.get_template("tomly").description == "from toml"
    (tmp_path / "bad.yaml").write_text("name: broken\ntools: [ghost]\n")
    with pytest.raises(TemplateConfigError, match="ghost"):
        factory.load_templates(tmp_path / "bad.yaml")
    (tmp_path / "worse.yaml").write_text("name: [unclosed\n")
    with pytest.raises(TemplateConfigError, match="cannot parse"):
        factory.load_templates(tmp_path / "worse.yaml")
    with pytest.raises(TemplateConfigError, match="does not exist"):
        factory.load_templates(tmp_path / "missing.yaml")


def test_compiled_agents_are_cached_and_invalidated(factory: AgentFactory) -> None:
    first = factory.create_from_template("writer")
    assert factory.create_from_template("writer") is first
    factory.register_template({"name": "writer", "system_prompt": "Changed."}, replace=True)
    assert factory.create_from_template("writer") is not first


def test_create_agent_from_dict_runs(factory: AgentFactory) -> None:
    agent = factory.create_agent({"name": "adhoc", "tools": ["calculator"]})
    state = agent.invoke({"messages": [{"role": "user", "content": "what is 6*7?"}]})
    assert "42" in state["messages"][-1].content


def test_create_batch_is_all_or_nothing(factory: AgentFactory) -> None:
    agents = factory.create_batch(["writer", "analyst", {"name": "inline"}])
    assert len(agents) == 3
    with pytest.raises(TemplateConfigError, match="2 invalid"):
        factory.create_batch(["writer", "ghost", {"name": "x", "tools": ["nope"]}])


def test_tool_and_memory_registries(factory: AgentFactory) -> None:
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    factory.register_tool(shout)
    with pytest.raises(ConfigurationError, match="already registered"):
        factory.register_tool(shout)
    factory.register_memory("short", MemoryPolicy(stateful=True, max_messages=4))
    template = factory.register_template({"name": "loud", "tools": ["shout"], "memory": "short"})
    assert template.memory == "short"
    with pytest.raises(NotFoundError):
        factory.tools.get("missing")


async def test_workflow_registry_entry_runs_like_an_agent(factory: AgentFactory) -> None:
    def reply(state: MessagesState) -> dict:
        return {"messages": [AIMessage(content=f"workflow saw: {state['messages'][-1].content}")]}

    graph = StateGraph(MessagesState)
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    factory.register_workflow("echo", graph.compile())
    factory.register_template({"name": "echoer", "workflow": "echo"})
    with pytest.raises(ConfigurationError):
        factory.register_workflow("bad", object())
    result = await AgentExecutor(factory).execute_async(AgentContext(input="hello", template="echoer"))
    assert result.output == "workflow saw: hello"


async def test_langchain_middleware_from_template_limits_model_calls(factory: AgentFactory) -> None:
    factory.register_template(
        {
            "name": "limited",
            "tools": ["calculator"],
            "middleware": [{"name": "model_call_limit", "options": {"run_limit": 1, "exit_behavior": "end"}}],
        }
    )
    result = await AgentExecutor(factory).execute_async(AgentContext(input="what is 2+2?", template="limited"))
    # the second model call (the answer after the tool) is refused by LangChain's middleware
    assert "4" not in result.output
    with pytest.raises(TemplateConfigError, match="model_call_limit"):
        factory.create_agent(
            AgentTemplate(name="broken", middleware=[{"name": "model_call_limit", "options": {"bogus": 1}}])
        )


@pytest.mark.parametrize("name", ["writer\n", "a b", "Upper", "x" * 65, "-x", ""])
def test_names_are_checked_whole(factory: AgentFactory, name: str) -> None:
    with pytest.raises(TemplateConfigError, match="lowercase"):
        factory.register_template({"name": name})


def test_a_template_file_replaces_a_built_in_only_with_override(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text("name: writer\nsystem_prompt: Mine.\n", encoding="utf-8")
    with pytest.raises(TemplateConfigError, match="set `override: true`"):
        AgentFactory(Settings(templates_dir=tmp_path))
    (tmp_path / "mine.yaml").write_text("name: writer\nsystem_prompt: Mine.\noverride: true\n", encoding="utf-8")
    assert AgentFactory(Settings(templates_dir=tmp_path)).get_template("writer").system_prompt == "Mine."


def test_the_published_template_schema_is_the_model_s() -> None:
    """docs/schemas/template.schema.json is what editors validate template files with: it must not drift."""
    import json

    published = Path(__file__).parents[2] / "docs" / "schemas" / "template.schema.json"
    assert json.loads(published.read_text(encoding="utf-8")) == AgentTemplate.model_json_schema()
