"""LangChain callback handlers that record what a run did."""

from agent_runtime.callbacks.handler import AgentCallbackHandler, CallbackEvent, ExecutionSummary, langsmith_tracer

__all__ = ["AgentCallbackHandler", "CallbackEvent", "ExecutionSummary", "langsmith_tracer"]
