"""Turn a model string from settings, a template or a request into a LangChain chat model.

``offline`` (or ``offline:<anything>``) is the built-in :class:`OfflineChatModel`; everything else goes
to LangChain's ``init_chat_model`` with an explicit timeout and ``max_retries=0`` (retries are the
executor's job, so a provider SDK must not retry underneath it). ``openai-compatible:<model>@<url>``
(or a ``base_url=`` keyword) targets any server that speaks the OpenAI Chat Completions API.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent_runtime.errors import ConfigurationError
from agent_runtime.models.offline import OfflineChatModel

__all__ = ["OFFLINE_MODEL", "default_model_string", "is_offline_spec", "provider_of", "resolve_model"]

OFFLINE_MODEL = "offline"
_OPENAI_COMPATIBLE = "openai-compatible:"
# provider -> (integration module, our extra); providers without an extra name their LangChain package.
_PROVIDERS: dict[str, tuple[str, str | None]] = {
    "openai": ("langchain_openai", "openai"),
    "azure_openai": ("langchain_openai", "openai"),
    "anthropic": ("langchain_anthropic", "anthropic"),
    "ollama": ("langchain_ollama", "ollama"),
}
_PREFIXES = {
    "gpt-": "openai",
    "o1": "openai",
    "o3": "openai",
    "o4": "openai",
    "chatgpt": "openai",
    "claude": "anthropic",
}
# Providers picked when no model is configured but their key and package are present, in this order.
_DEFAULTS = (
    ("OPENAI_API_KEY", "openai", "openai:gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic", "anthropic:claude-haiku-4-5"),
)


def is_offline_spec(spec: str) -> bool:
    """Whether ``spec`` names the built-in offline model."""
    spec = spec.strip()
    return spec == OFFLINE_MODEL or spec.startswith(OFFLINE_MODEL + ":")


def resolve_model(
    spec: str | BaseChatModel, *, token_latency_ms: float = 0.0, timeout: float = 60, **kw: Any
) -> BaseChatModel:
    """Build the chat model named by ``spec`` (a ready model is returned unchanged).

    Args:
        spec: ``offline``, ``offline:<anything>``, ``<provider>:<model>`` as understood by
            ``init_chat_model``, ``openai-compatible:<model>@<base_url>``, or a chat model instance.
        token_latency_ms: per-token delay of the offline model (ignored for providers).
        timeout: request timeout in seconds given to provider models.
        **kw: passed to the model's constructor (e.g. ``base_url``, ``api_key``, ``temperature``,
            ``max_tokens``).

    Raises:
        ConfigurationError: an empty or unknown model string, a missing provider package (naming the
            extra to install), or a provider that cannot be configured (e.g. a missing API key).
    """
    if isinstance(spec, BaseChatModel):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigurationError("The model string is empty; use 'offline' or '<provider>:<model>'.")
    spec = spec.strip()
    if is_offline_spec(spec):
        allowed = {k: v for k, v in kw.items() if k in ("max_tokens", "stop", "max_tool_rounds")}
        # reports the whole spec as its model name, so a price file can price "offline:<variant>"
        return OfflineChatModel(model=spec, token_latency_ms=token_latency_ms, **allowed)
    options: dict[str, Any] = {**kw, "timeout": timeout, "max_retries": 0}
    model = spec
    if spec.startswith(_OPENAI_COMPATIBLE):
        model, sep, base_url = spec.removeprefix(_OPENAI_COMPATIBLE).partition("@")
        if not sep or not model or not base_url:
            raise ConfigurationError(f"Model {spec!r} must look like 'openai-compatible:<model>@<base_url>'.")
        options["base_url"] = base_url
    if "base_url" in options:
        model = model.removeprefix("openai:")
        options["model_provider"] = "openai"
        # Local OpenAI-compatible servers often need no key; the SDK still insists on one being set.
        options.setdefault("api_key", os.environ.get("OPENAI_API_KEY") or "not-needed")
    return _init_provider_model(spec, model, options)


def default_model_string(settings_model: str, environ: Mapping[str, str] | None = None) -> str:
    """The model to use when a run names none: the configured one, else a configured provider, else offline.

    A provider counts as configured when its API key is in the environment and its LangChain
    package is installed; with neither, the runtime stays fully offline.
    """
    if settings_model and settings_model.strip():
        return settings_model.strip()
    env = os.environ if environ is None else environ
    for key, provider, model in _DEFAULTS:
        if env.get(key) and importlib.util.find_spec(_PROVIDERS[provider][0]) is not None:
            return model
    return OFFLINE_MODEL


def _init_provider_model(spec: str, model: str, options: dict[str, Any]) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    provider = options.get("model_provider") or _provider_of(model)
    try:
        chat_model = init_chat_model(model, **options)
    except ImportError as exc:
        raise ConfigurationError(
            f"Model {spec!r} needs the {provider or 'provider'} integration, which is not installed. "
            f"{_install_hint(provider, exc)}",
            details={"model": spec, "provider": provider},
        ) from exc
    except ValueError as exc:
        raise ConfigurationError(
            f"Cannot use model {spec!r}: {_first_line(exc)} Use 'offline', '<provider>:<model>' "
            "(e.g. 'openai:gpt-4o-mini') or 'openai-compatible:<model>@<base_url>'.",
            details={"model": spec},
        ) from exc
    except Exception as exc:  # provider SDKs raise their own types for a missing key or bad option
        raise ConfigurationError(
            f"Cannot configure model {spec!r}: {_first_line(exc)}", details={"model": spec, "provider": provider}
        ) from exc
    if not isinstance(chat_model, BaseChatModel):
        raise ConfigurationError(f"Model {spec!r} did not resolve to a chat model.")
    return chat_model


def provider_of(spec: str) -> str | None:
    """The provider family of a model string: ``offline``, ``openai`` (also ``openai-compatible:``), ..."""
    if is_offline_spec(spec):
        return OFFLINE_MODEL
    if spec.startswith(_OPENAI_COMPATIBLE):
        return "openai"
    return _provider_of(spec)


def _provider_of(model: str) -> str | None:
    prefix, sep, _ = model.partition(":")
    if sep:
        return prefix.replace("-", "_").lower()
    lowered = model.lower()
    return next((p for start, p in _PREFIXES.items() if lowered.startswith(start)), None)


def _install_hint(provider: str | None, exc: ImportError) -> str:
    if provider in _PROVIDERS and _PROVIDERS[provider][1]:
        return f"Install it with `pip install agent-runtime[{_PROVIDERS[provider][1]}]`."
    package = "langchain-" + (provider or "<provider>").replace("_", "-")
    return f"Install it with `pip install {package}` ({_first_line(exc)})."


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
