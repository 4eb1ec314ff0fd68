"""LangChain's own standard chat-model suites (``langchain-tests``) run against the offline model."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from agent_runtime.models import OfflineChatModel


class TestOfflineChatModelUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return OfflineChatModel

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        params = super().standard_chat_model_params
        params.pop("api_key")  # the offline model has no credentials to take
        return params

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "offline:alt"


class TestOfflineChatModelIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return OfflineChatModel

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "offline:alt"

    @property
    def supports_image_inputs(self) -> bool:
        return False  # text-only model: it has nothing to see an image with

    @property
    def returns_usage_metadata(self) -> bool:
        return True
