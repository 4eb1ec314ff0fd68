"""A small named registry shared by the factory's tool, memory, workflow and middleware registries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from agent_runtime.errors import ConfigurationError, NotFoundError

__all__ = ["Registry"]

T = TypeVar("T")


@dataclass
class _Build:
    """A factory call in progress: who runs it, and an event its waiters block on."""

    owner: int
    done: threading.Event = field(default_factory=threading.Event)


class Registry(Generic[T]):
    """Name -> component, where a component may be given directly or as a zero-argument factory that is
    called once, on first use (so a search index is only built when a template needs it).

    Factories run outside the registry's lock, so a factory may read the registry (a workflow builder
    reads other workflows); a factory that needs its own name, directly or through other factories
    (in any thread), gets a ``ConfigurationError`` instead of a deadlock or an endless recursion."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._factories: dict[str, Callable[[], T]] = {}
        self._lock = threading.Lock()
        self._building: dict[str, _Build] = {}
        self._waiting: dict[int, str] = {}  # thread id -> the name whose build it waits for

    def register(
        self, name: str, item: T | None = None, *, factory: Callable[[], T] | None = None, replace: bool = False
    ) -> None:
        if not name or not isinstance(name, str):
            raise ConfigurationError(f"{self.kind} name must be a non-empty string")
        if (item is None) == (factory is None):
            raise ConfigurationError(f"register {self.kind} {name!r} with exactly one of item or factory")
        with self._lock:
            if not replace and self._has(name):
                raise ConfigurationError(f"{self.kind} {name!r} is already registered (pass replace=True)")
            self._items.pop(name, None)
            self._factories.pop(name, None)
            if item is not None:
                self._items[name] = item
            elif factory is not None:
                self._factories[name] = factory

    def unregister(self, name: str) -> None:
        with self._lock:
            if not self._has(name):
                raise NotFoundError(f"{self.kind} {name!r} is not registered")
            self._items.pop(name, None)
            self._factories.pop(name, None)

    def get(self, name: str) -> T:
        while True:
            built = self._build(name)
            if built is not None:
                return built[0]  # else it was replaced or removed while it was being built: look again

    def _build(self, name: str) -> tuple[T] | None:
        """The item, built by this thread or another; ``None`` when the factory it built is no longer
        the registered one."""
        me = threading.get_ident()
        while True:
            with self._lock:
                if name in self._items:
                    return (self._items[name],)
                factory = self._factories.get(name)
                if factory is None:
                    raise NotFoundError(f"{self.kind} {name!r} is not registered; known: {self._names()}")
                build = self._building.get(name)
                if build is None:
                    build = self._building[name] = _Build(me)
                    break
                self._check_cycle(name, build, me)
                self._waiting[me] = name
            try:
                build.done.wait()  # another thread builds it: take its result (or retry if it failed)
            finally:
                with self._lock:
                    self._waiting.pop(me, None)
        try:
            item = factory()
        except BaseException:
            with self._lock:
                del self._building[name]
            build.done.set()
            raise
        with self._lock:
            current = self._factories.get(name) is factory
            if current:
                self._items[name] = item
                del self._factories[name]
            del self._building[name]
        build.done.set()
        return (item,) if current else None

    def _check_cycle(self, name: str, build: _Build, me: int) -> None:
        """Raise if waiting for ``build`` would never end: its owner is (transitively) waiting for us."""
        owner = build.owner
        for _ in range(len(self._building) + 1):
            if owner == me:
                raise ConfigurationError(f"{self.kind} {name!r} is requested again while it is being built (a cycle)")
            waited = self._waiting.get(owner)
            if waited is None or waited not in self._building:
                return
            owner = self._building[waited].owner

    def names(self) -> list[str]:
        with self._lock:
            return self._names()

    def _names(self) -> list[str]:
        return sorted({*self._items, *self._factories})

    def _has(self, name: object) -> bool:
        return name in self._items or name in self._factories

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return self._has(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
