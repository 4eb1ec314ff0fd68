"""``FairBuffer``: deliveries grouped by tenant and handed out round-robin, so one tenant's burst
cannot starve the others (each tenant with work waiting gets a turn before any gets a second)."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator

from agent_runtime.runs.queue.base import Delivery

__all__ = ["FairBuffer"]


class FairBuffer:
    def __init__(self) -> None:
        self._tenants: OrderedDict[str, deque[Delivery]] = OrderedDict()
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._ids

    def __iter__(self) -> Iterator[Delivery]:
        for waiting in self._tenants.values():
            yield from waiting

    def push(self, delivery: Delivery, *, front: bool = False) -> bool:
        """Add a delivery (``False``, nothing added, when its run is already here)."""
        if delivery.run_id in self._ids:
            return False
        waiting = self._tenants.setdefault(delivery.tenant, deque())
        if front:
            waiting.appendleft(delivery)
        else:
            waiting.append(delivery)
        self._ids.add(delivery.run_id)
        return True

    def pop(self) -> Delivery | None:
        """The next tenant's oldest delivery; that tenant goes to the back of the turn."""
        if not self._tenants:
            return None
        tenant, waiting = next(iter(self._tenants.items()))
        delivery = waiting.popleft()
        del self._tenants[tenant]
        if waiting:
            self._tenants[tenant] = waiting  # re-inserted last: the others go first
        self._ids.discard(delivery.run_id)
        return delivery

    def drop(self, run_id: str) -> None:
        """Forget a run (cancelled while it waited)."""
        if run_id not in self._ids:
            return
        self._ids.discard(run_id)
        for tenant, waiting in list(self._tenants.items()):
            kept = deque(d for d in waiting if d.run_id != run_id)
            if kept:
                self._tenants[tenant] = kept
            else:
                del self._tenants[tenant]
