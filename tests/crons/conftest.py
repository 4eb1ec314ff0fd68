"""The Agent Protocol servers of ``tests/agent_protocol/core`` (one per state backend), for the cron routes,
and the webhook receiver of ``tests/runs``."""

from tests.agent_protocol.core.conftest import ap, ap_memory, ap_redis, ap_sqlite  # noqa: F401
from tests.runs.conftest import receiver  # noqa: F401
