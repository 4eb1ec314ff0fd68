"""State backends by URL: one registry, one module per family (see ``_registry``).

Families and engines (``memory://``, ``sqlite:///path``, ``redis://``, ``postgresql://``):

==============  ======  ======  =====  ==========  =====
family          memory  sqlite  redis  postgresql  kafka
==============  ======  ======  =====  ==========  =====
sessions        yes     yes     yes    yes
keys            yes     yes     yes    yes
rate_limits     yes     local   yes    local
quotas          yes     yes     yes    yes
usage           yes     yes     yes    yes
run_records     yes     yes     yes    yes
run_registry    yes     yes     yes    yes
crons           yes     yes     yes    yes
events          yes             yes               yes
==============  ======  ======  =====  ==========  =====

"local": a per-process limiter (limits shared by a fleet need Redis).
"""

from agent_runtime.backends._registry import (
    SCHEMES,
    BackendTarget,
    Builder,
    StateURL,
    build,
    engines_in_use,
    families,
    parse_url,
    schemes,
    url_for,
)

__all__ = [
    "SCHEMES",
    "BackendTarget",
    "Builder",
    "StateURL",
    "build",
    "engines_in_use",
    "families",
    "parse_url",
    "schemes",
    "url_for",
]
