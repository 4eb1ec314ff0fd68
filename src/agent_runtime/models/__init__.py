"""Chat models: the built-in offline model and the resolution of model strings to LangChain models."""

from __future__ import annotations

from agent_runtime.models.offline import (
    OfflineChatModel,
    OfflineFormatter,
    OfflineMatcher,
    register_offline_matcher,
    unregister_offline_matcher,
)
from agent_runtime.models.resolve import OFFLINE_MODEL, default_model_string, is_offline_spec, resolve_model

__all__ = [
    "OFFLINE_MODEL",
    "OfflineChatModel",
    "OfflineFormatter",
    "OfflineMatcher",
    "default_model_string",
    "is_offline_spec",
    "register_offline_matcher",
    "resolve_model",
    "unregister_offline_matcher",
]
