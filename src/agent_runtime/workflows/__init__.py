"""Dynamic workflows: declarative multi-agent pipelines compiled to LangGraph, and human approval."""

from __future__ import annotations

from agent_runtime.workflows.approval import ResumeRequest, build_resume_value, pending_actions
from agent_runtime.workflows.compile import compile_workflow, load_workflows, plan_workflow, register_workflow_spec
from agent_runtime.workflows.defaults import RESEARCH_REPORT, register_default_workflows
from agent_runtime.workflows.spec import BranchRule, BranchSpec, StepSpec, WorkflowSpec

__all__ = [
    "RESEARCH_REPORT",
    "BranchRule",
    "BranchSpec",
    "ResumeRequest",
    "StepSpec",
    "WorkflowSpec",
    "build_resume_value",
    "compile_workflow",
    "load_workflows",
    "pending_actions",
    "plan_workflow",
    "register_default_workflows",
    "register_workflow_spec",
]
