"""Sessions: who a conversation belongs to, how long it lives, and where its LangGraph state is kept.

Backends: memory (tests, dev), SQLite (embedded default, survives restarts), Redis (a fleet of
workers on a plain redis-server). ``build_session_manager(settings)`` picks one from settings.
"""

from __future__ import annotations

from agent_runtime.sessions.base import BusyPolicy, SessionStore
from agent_runtime.sessions.history import HistoryLimitMiddleware, trim_history
from agent_runtime.sessions.manager import SessionManager, build_session_manager, message_to_dict
from agent_runtime.sessions.memory import MemorySessionStore
from agent_runtime.sessions.models import ResumedSession, Session, SessionStatus

__all__ = [
    "BusyPolicy",
    "HistoryLimitMiddleware",
    "MemorySessionStore",
    "ResumedSession",
    "Session",
    "SessionManager",
    "SessionStatus",
    "SessionStore",
    "build_session_manager",
    "message_to_dict",
    "trim_history",
]
