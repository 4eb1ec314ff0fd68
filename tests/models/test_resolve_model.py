"""Model strings to chat models: offline, providers through init_chat_model, typed configuration errors."""

from __future__ import annotations

import importlib.util
import socket

import pytest
from langchain_core.language_models import BaseChatModel

from agent_runtime.errors import ConfigurationError
from agent_runtime.models import OfflineChatModel, default_model_string, is_offline_spec, resolve_model

HAS_OPENAI = importlib.util.find_spec("langchain_openai") is not None
needs_openai = pytest.mark.skipif(not HAS_OPENAI, reason="langchain-openai is not installed")


@pytest.mark.parametrize("spec", ["offline", " offline ", "offline:fast", "offline:anything-at-all"])
def test_offline_specs_build_the_offline_model(spec: str) -> None:
    model = resolve_model(spec, token_latency_ms=2.5, max_tokens=50)
    assert isinstance(model, OfflineChatModel)
    assert model.token_latency_ms == 2.5 and model.max_tokens == 50
    assert is_offline_spec(spec)
    assert model.invoke("hello").response_metadata["offline"] is True


def test_a_model_instance_is_returned_unchanged() -> None:
    model = OfflineChatModel()
    assert resolve_model(model) is model


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_spec_is_a_configuration_error(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        resolve_model(spec)


@pytest.mark.parametrize(
    ("spec", "module", "hint"),
    [
        ("anthropic:claude-haiku-4-5", "langchain_anthropic", "pip install agent-runtime[anthropic]"),
        ("claude-haiku-4-5", "langchain_anthropic", "pip install agent-runtime[anthropic]"),
        ("ollama:llama3.2", "langchain_ollama", "pip install agent-runtime[ollama]"),
        ("groq:llama-3.1-8b", "langchain_groq", "pip install langchain-groq"),
    ],
)
def test_missing_provider_package_names_what_to_install(spec: str, module: str, hint: str) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(ConfigurationError) as info:
        resolve_model(spec)
    assert hint in info.value.message
    assert info.value.code == "configuration_error"


@pytest.mark.parametrize("spec", ["not-a-model", "zzz:foo", "openai-compatible:no-url", "openai-compatible:@http://x"])
def test_unknown_model_strings_are_configuration_errors(spec: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_model(spec)


@needs_openai
def test_missing_api_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        resolve_model("openai:gpt-4o-mini")


@needs_openai
def test_provider_models_get_our_timeout_and_no_retries() -> None:
    model = resolve_model("openai:gpt-4o-mini", timeout=7, api_key="sk-test")
    assert type(model).__name__ == "ChatOpenAI"
    assert model.max_retries == 0  # type: ignore[attr-defined]
    assert model.request_timeout == 7  # type: ignore[attr-defined]


@needs_openai
def test_openai_compatible_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = resolve_model("openai-compatible:my-model@http://127.0.0.1:9/v1")
    assert model.model_name == "my-model"  # type: ignore[attr-defined]
    assert model.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]
    same = resolve_model("openai:my-model", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert same.openai_api_base == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


@needs_openai
def test_unreachable_provider_fails_once_without_sdk_retries() -> None:
    import openai

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model: BaseChatModel = resolve_model(f"openai-compatible:m@http://127.0.0.1:{port}/v1", timeout=2)
    with pytest.raises(openai.APIConnectionError):
        model.invoke("hello")


def test_default_model_string() -> None:
    assert default_model_string("openai:gpt-4o", environ={}) == "openai:gpt-4o"
    assert default_model_string("", environ={}) == "offline"
    assert default_model_string("  ", environ={"UNRELATED": "1"}) == "offline"
    if HAS_OPENAI:
        assert default_model_string("", environ={"OPENAI_API_KEY": "sk-x"}) == "openai:gpt-4o-mini"


def test_public_names_are_exported() -> None:
    import agent_runtime.models as models
    import agent_runtime.tools as tools

    for module in (models, tools):
        assert sorted(module.__all__) == module.__all__
        assert all(hasattr(module, name) for name in module.__all__)
    assert set(tools.builtin_tools()) == {"calculator", "search"}
