"""``python -m agent_runtime.cli``."""

from agent_runtime.cli import main

main()
