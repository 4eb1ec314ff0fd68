"""The default workflow ``research_report`` and the factory's hook that registers workflows.

``research_report``: ``search`` (template ``searcher``, BM25 over the bundled documents) ->
``analyze`` (template ``analyst``) -> ``write`` (template ``writer``). It runs with the offline model.

Declarative workflows are also read from the ``workflows:`` section of every file in
``settings.templates_dir`` (YAML, TOML or JSON), next to (or instead of) its ``templates:``::

    templates:
      - {name: triage, system_prompt: "Classify the request."}
    workflows:
      - name: support
        steps:
          - {name: classify, template: triage,
             branch: {rules: [{contains: "refund", goto: refund}], default: answer}}
          - {name: refund, template: analyst, input: "Refund request: {input}"}
          - {name: answer, template: writer, input: "{input}"}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent_runtime.workflows.compile import load_workflows, register_workflow_spec
from agent_runtime.workflows.spec import WorkflowSpec

if TYPE_CHECKING:
    from agent_runtime.agents.catalog import TemplateCatalog

__all__ = ["DEFAULT_WORKFLOWS", "RESEARCH_REPORT", "register_default_workflows"]

RESEARCH_REPORT = WorkflowSpec.parse(
    {
        "name": "research_report",
        "description": "Research report: search the documents, analyse the findings, write the report.",
        "steps": [
            {"name": "search", "template": "searcher", "input": "Search the documents for {input}"},
            {
                "name": "analyze",
                "template": "analyst",
                "input": "Analyse these findings and list the key facts. Findings: {steps.search}",
            },
            {
                "name": "write",
                "template": "writer",
                "input": "Write a short report about {input}. Use the analysis: {steps.analyze}",
            },
        ],
        "tags": ["research"],
    }
)

DEFAULT_WORKFLOWS: tuple[WorkflowSpec, ...] = (RESEARCH_REPORT,)


def register_default_workflows(factory: TemplateCatalog) -> None:
    """Register the default workflows, then those of ``settings.templates_dir`` (which may replace a
    workflow, never a plain template such as ``writer``: ``register_workflow_spec`` refuses that)."""
    for spec in DEFAULT_WORKFLOWS:
        register_workflow_spec(factory, spec, replace=True)
    if factory.settings.templates_dir is not None:
        load_workflows(factory, factory.settings.templates_dir, replace=True)
