"""The in-process store: LangGraph's ``InMemoryStore`` plus a prefix count (one process, lost on exit)."""

from __future__ import annotations

from langgraph.store.base import ListNamespacesOp, PutOp
from langgraph.store.memory import InMemoryStore

__all__ = ["MemoryStore"]


class MemoryStore(InMemoryStore):
    """``InMemoryStore`` that counts a prefix's items (the tenant limit) and closes like the others.

    It also behaves like the SQL stores where ``InMemoryStore`` does not: an update keeps the item's
    ``created_at``, and a namespace whose last item is deleted is no longer listed."""

    def _apply_put_ops(self, put_ops: dict[tuple[tuple[str, ...], str], PutOp]) -> None:
        created = {
            target: item.created_at
            for target in put_ops
            if (item := self._data.get(target[0], {}).get(target[1])) is not None
        }
        super()._apply_put_ops(put_ops)
        for namespace, key in put_ops:
            items = self._data.get(namespace)
            if items is None:
                continue
            if not items:
                del self._data[namespace]
            elif (namespace, key) in created and key in items:
                items[key].created_at = created[namespace, key]

    def _handle_list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        for namespace in [ns for ns, items in self._data.items() if not items]:  # left behind by reads
            self._data.pop(namespace, None)
        return super()._handle_list_namespaces(op)

    async def acount_items(self, prefix: tuple[str, ...]) -> int:
        size = len(prefix)
        return sum(len(items) for namespace, items in list(self._data.items()) if namespace[:size] == prefix)

    async def aclose(self) -> None:
        return None
