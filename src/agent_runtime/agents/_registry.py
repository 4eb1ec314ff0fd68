"""A small named registry shared by the factory's tool, memory, workflow and middleware registries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from agent_runtime.errors import ConfigurationError, NotFoundError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> component, where a component may be given directly or as a zero-argument factory that is
    called once, on first use (so a search index is only built when a template needs it)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._factories: dict[str, Callable[[], T]] = {}
        self._lock = threading.Lock()

    def register(
        self, name: str, item: T | None = None, *, factory: Callable[[], T] | None = None, replace: bool = False
    ) -> None:
        if not name or not isinstance(name, str):
            raise ConfigurationError(f"{self.kind} name must be a non-empty string")
        if (item is None) == (factory is None):
            raise ConfigurationError(f"register {self.kind} {name!r} with exactly one of item or factory")
        with self._lock:
            if not replace and name in self:
                raise ConfigurationError(f"{self.kind} {name!r} is already registered (pass replace=True)")
            self._items.pop(name, None)
            self._factories.pop(name, None)
            if item is not None:
                self._items[name] = item
            elif factory is not None:
                self._factories[name] = factory

    def unregister(self, name: str) -> None:
        with self._lock:
            if name not in self:
                raise NotFoundError(f"{self.kind} {name!r} is not registered")
            self._items.pop(name, None)
            self._factories.pop(name, None)

    def get(self, name: str) -> T:
        with self._lock:
            if name in self._items:
                return self._items[name]
            factory = self._factories.get(name)
            if factory is None:
                raise NotFoundError(f"{self.kind} {name!r} is not registered; known: {sorted(self.names())}")
            item = factory()
            self._items[name] = item
            del self._factories[name]
            return item

    def names(self) -> list[str]:
        return sorted({*self._items, *self._factories})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
