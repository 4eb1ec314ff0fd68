"""Human approval: which runs can pause, and turning approve / edit / reject into a LangGraph resume.

A template pauses before given tools run with LangChain's ``HumanInTheLoopMiddleware`` (template
middleware ``human_in_the_loop`` with ``interrupt_on``); a workflow pauses when one of its steps does.
The run ends with status ``interrupted`` and ``metadata["interrupts"]``; ``AgentExecutor.resume_async``
answers it later, from any worker, with decisions normalised here.

Decisions, as given to ``resume``:

- one decision for every pending action: ``"approve"``, ``"reject"``, ``{"type": "reject", "message": ...}``,
  ``{"type": "edit", "args": {...}}`` (or LangChain's own ``{"type": "edit", "edited_action": {...}}``);
- a list, one per pending action in order;
- a mapping ``{interrupt_id: decision or list}`` when several interrupts are pending (parallel steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import ConflictError, ValidationError

if TYPE_CHECKING:
    from agent_runtime.agents.catalog import TemplateCatalog
    from agent_runtime.agents.templates import AgentTemplate

__all__ = [
    "APPROVAL_MIDDLEWARE",
    "RESUME_DECISIONS_KEY",
    "RESUME_KEY",
    "Decisions",
    "ResumeRequest",
    "build_resume_value",
    "decision_kinds",
    "pending_actions",
    "resume_input",
    "template_needs_checkpointer",
]

APPROVAL_MIDDLEWARE = "human_in_the_loop"
RESUME_KEY = "_agent_runtime_resume"
"""``AgentContext.metadata`` key holding a ``ResumeRequest`` (a Python object, so a JSON body can't forge it)."""
RESUME_DECISIONS_KEY = "resume_decisions"
"""Run record metadata: the decisions a queued run answers its session's interrupt with (JSON, set by
the server, never by a client: client metadata is kept apart under ``client``)."""

Decisions = str | Mapping[str, Any] | Sequence[Any]
_TYPES = ("approve", "edit", "reject", "respond")


@dataclass
class ResumeRequest:
    """What a resumed run answers; the executor turns it into ``Command(resume=...)`` under the session lock."""

    decisions: Any
    session_id: str


def template_needs_checkpointer(factory: TemplateCatalog, template: AgentTemplate) -> bool:
    """Whether runs of ``template`` can pause for approval (and so need a session to resume from)."""
    if any(m.name == APPROVAL_MIDDLEWARE for m in template.middleware):
        return True
    if template.workflow is not None and template.workflow in factory.workflows:
        return bool(getattr(factory.workflows.get(template.workflow), "requires_checkpointer", False))
    return False


def pending_actions(interrupts: Sequence[Any]) -> list[dict[str, Any]]:
    """The tool calls awaiting a decision, flattened: ``{interrupt_id, name, args, description, allowed}``."""
    actions: list[dict[str, Any]] = []
    for interrupt in interrupts:
        for request, allowed in _requests(interrupt):
            actions.append(
                {
                    "interrupt_id": getattr(interrupt, "id", None),
                    "name": request.get("name"),
                    "args": request.get("args", {}),
                    "description": request.get("description", ""),
                    "allowed_decisions": allowed,
                }
            )
    return actions


def _requests(interrupt: Any) -> list[tuple[dict[str, Any], list[str]]]:
    value = getattr(interrupt, "value", interrupt)
    if isinstance(value, dict) and isinstance(value.get("action_requests"), list):
        configs = {
            c.get("action_name"): c.get("allowed_decisions", list(_TYPES)) for c in value.get("review_configs", [])
        }
        return [(r, list(configs.get(r.get("name"), _TYPES))) for r in value["action_requests"]]
    if isinstance(value, dict) and value.get("type") == "tool_approval":
        return [(value, list(value.get("allowed_decisions", _TYPES)))]
    return []


def build_resume_value(interrupts: Sequence[Any], decisions: Decisions) -> Any:
    """The ``Command(resume=...)`` value answering ``interrupts`` (one value, or a map by interrupt id)."""
    if not interrupts:
        raise ValidationError("nothing is waiting for approval")
    if isinstance(decisions, Mapping) and decisions and all(k in _ids(interrupts) for k in decisions):
        answers = {i.id: _answer(i, decisions.get(i.id)) for i in interrupts if i.id in decisions}
        missing = [i.id for i in interrupts if i.id not in decisions]
        if missing:
            raise ValidationError(f"no decision for pending interrupt(s) {missing}")
    else:
        queue = _as_list(decisions)
        per_action = len(queue) == 1 and not isinstance(decisions, list)
        answers = {}
        for interrupt in interrupts:
            count = max(1, len(_requests(interrupt)))
            if per_action:
                mine = queue * count
            else:
                mine, queue = queue[:count], queue[count:]
            answers[interrupt.id] = _answer(interrupt, mine)
        if queue and not per_action:
            raise ValidationError(f"{len(queue)} decision(s) more than pending actions")
    return next(iter(answers.values())) if len(interrupts) == 1 else answers


def _ids(interrupts: Sequence[Any]) -> set[str]:
    return {str(getattr(i, "id", "")) for i in interrupts}


def _as_list(decisions: Any) -> list[Any]:
    if isinstance(decisions, (str, Mapping)):
        return [decisions]
    if isinstance(decisions, Sequence):
        return list(decisions)
    raise ValidationError("decisions must be a decision, a list of decisions or a map by interrupt id")


def _answer(interrupt: Any, given: Any) -> Any:
    requests = _requests(interrupt)
    items = _as_list(given) if given is not None else []
    if not requests:  # a custom interrupt of a registered graph: hand the value over as given
        return items[0] if len(items) == 1 else items
    if len(items) != len(requests):
        raise ValidationError(f"{len(requests)} action(s) await a decision, {len(items)} decision(s) given")
    decided = [_decision(item, request, allowed) for item, (request, allowed) in zip(items, requests, strict=True)]
    value = getattr(interrupt, "value", None)
    if isinstance(value, dict) and value.get("type") == "tool_approval":
        return decided[0]
    return {"decisions": decided}


def _decision(item: Any, request: dict[str, Any], allowed: list[str]) -> dict[str, Any]:
    decision: dict[str, Any] = {"type": item} if isinstance(item, str) else dict(item)
    kind = decision.get("type")
    name = request.get("name")
    if kind not in _TYPES:
        raise ValidationError(f"unknown decision {kind!r} for tool {name!r}; use one of {list(_TYPES)}")
    if kind not in allowed:
        raise ValidationError(f"decision {kind!r} is not allowed for tool {name!r}; allowed: {allowed}")
    if kind == "edit" and "edited_action" not in decision:
        args = decision.pop("args", None)
        if not isinstance(args, dict):
            raise ValidationError(f"an edit of tool {name!r} needs `args` (a JSON object)")
        decision["edited_action"] = {"name": name, "args": args}
    if kind == "respond" and not isinstance(decision.get("message"), str):
        raise ValidationError(f"a respond decision for tool {name!r} needs a `message`")
    return decision


async def resume_input(agent: Any, config: dict[str, Any], request: ResumeRequest) -> tuple[Any, str | None, Any]:
    """``Command(resume=...)`` for the pending interrupts, read under the session lock (so two workers can
    never answer the same approval twice); the last message before the pause anchors the new messages,
    and the paused tool-call message is put back in front so the result lists the approved calls."""
    from langchain_core.messages import AIMessage
    from langgraph.types import Command

    snapshot = await agent.aget_state(config)
    interrupts = list(snapshot.interrupts)
    if not interrupts:
        raise ConflictError(f"session {request.session_id} has no run waiting for approval (already resumed?)")
    value = build_resume_value(interrupts, request.decisions)
    messages = (snapshot.values or {}).get("messages") or []
    last = messages[-1] if messages else None
    prefix = None
    if isinstance(last, AIMessage) and last.tool_calls:
        prefix = [last.model_copy(update={"usage_metadata": None})]  # charged by the run that paused
    return Command(resume=value), (str(last.id) if last is not None else None), prefix


def decision_kinds(decisions: Any) -> list[str]:
    """``approve`` / ``edit`` / ``reject`` of each decision, for the resumed run's input text (logs)."""
    if isinstance(decisions, str):
        return [decisions]
    if isinstance(decisions, dict):
        if "type" in decisions:
            return [str(decisions["type"])]
        return [kind for value in decisions.values() for kind in decision_kinds(value)]
    if isinstance(decisions, (list, tuple)):
        return [kind for value in decisions for kind in decision_kinds(value)]
    return []
