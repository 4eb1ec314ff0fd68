"""Redis run event log: one Redis Stream per run, shared by every worker of a fleet.

Keys (``ar`` is the key prefix)::

    ar:{runev}:<run_id>  stream   one entry per event (field ``e``: the event's JSON); a last entry
                                  with field ``closed`` once the run ended

Entry ids are ``0-1``, ``0-2``, ... (``XADD ... 0-*``, Redis 7.0 or later: Redis numbers them,
atomically, whoever appends), so a reader knows it missed nothing when the first entry after its position is the next
number; anything else means the entries in between were trimmed (``EventsExpiredError``). Every
append trims the stream to exactly ``max_events`` (``MAXLEN``, not ``~``: the approximate form
keeps whole nodes of ~100 entries, more than the bound a client is promised) and sets the key's ttl.

Followers do not block a connection each: a reader reads with a plain ``XREAD``; once caught up it
waits in ``Waiters``, whose one watcher blocks in ``XREAD BLOCK`` (below the socket timeout) on every
stream a follower of this process waits on. However many clients follow runs, a process holds one
connection for them, and appends never queue behind followers for the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from agent_runtime._redis import check_key_part, make_redis, redis_errors
from agent_runtime.errors import EventsExpiredError
from agent_runtime.runs.events.base import DEFAULT_MAX_EVENTS, DEFAULT_TTL_S, LoggedEvent, RunEventLog
from agent_runtime.runs.events.polling import BATCH
from agent_runtime.runs.events.waiting import Waiters
from agent_runtime.settings import RedisSettings
from agent_runtime.types import StreamEvent

__all__ = ["RedisRunEventLog"]

_EVENT = "e"
_CLOSED = "closed"
_LISTEN_S: Final = 0.25
"""The watcher's longest block: a follower that starts waiting meanwhile is heard from after it."""


class RedisRunEventLog(RunEventLog):
    """``recheck_s``: see ``Waiters``."""

    def __init__(
        self,
        url: str,
        settings: RedisSettings | None = None,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_events: int = DEFAULT_MAX_EVENTS,
        recheck_s: float = 2.0,
        client: Any = None,
    ) -> None:
        super().__init__(ttl_s=ttl_s, max_events=max_events)
        cfg = settings or RedisSettings()
        self._redis = client if client is not None else make_redis(url, cfg)
        self._owns_client = client is None
        self._prefix = f"{cfg.key_prefix}:{{runev}}"  # one hash tag: the watcher's XREAD names many streams
        self._block_ms = max(1, int(min(_LISTEN_S, cfg.socket_timeout / 2) * 1000))  # under the socket timeout
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._waiters = Waiters(self._moved, recheck_s=recheck_s)

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}:{check_key_part(run_id, 'run id')}"

    async def _add(self, operation: str, run_id: str, fields: dict[str, str]) -> str:
        key = self._key(run_id)
        async with redis_errors(operation), self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, fields, id="0-*", maxlen=self.max_events, approximate=False)
            pipe.pexpire(key, self._ttl_ms)
            entry_id, _ = await pipe.execute()
        self._waiters.wake(key)  # this process's readers at once; the others' watchers see the entry
        return str(entry_id)

    async def append(self, run_id: str, event: StreamEvent) -> str:
        return await self._add("run_events.append", run_id, {_EVENT: event.model_dump_json()})

    async def close(self, run_id: str) -> None:
        await self._add("run_events.close", run_id, {_CLOSED: "1"})

    async def read(self, run_id: str, *, after: str | None = None, follow: bool = True) -> AsyncIterator[LoggedEvent]:
        key = self._key(run_id)
        seen = _seq(after)
        with self._waiters.following(key) as state:
            while True:
                mark = state.mark()
                entries = await self._page(key, seen)
                if entries and seen and _seq(entries[0][0]) > seen + 1:
                    raise EventsExpiredError(f"events of run {run_id} after {after} are no longer kept")
                for entry_id, fields in entries:
                    seen = _seq(entry_id)
                    if _CLOSED in fields:
                        return
                    yield LoggedEvent(str(entry_id), StreamEvent.model_validate_json(fields[_EVENT]))
                if len(entries) < BATCH:
                    if not follow:
                        return
                    await self._waiters.wait(state, seen, mark)

    async def _page(self, key: str, seen: int) -> list[tuple[str, dict[str, str]]]:
        """Up to ``BATCH`` entries of the stream after entry ``0-<seen>``, without blocking."""
        async with redis_errors("run_events.read"):
            answer = await self._redis.xread({key: f"0-{seen}"}, count=BATCH)
        return [entry for _, stream in answer or () for entry in stream]

    async def _moved(self, positions: dict[str, int]) -> dict[str, int]:
        """The watcher's blocking read: of the streams followers wait on, those with an entry past the
        earliest waiter's position, and their newest entry's number."""
        async with redis_errors("run_events.listen"):
            streams = {key: f"0-{seen}" for key, seen in positions.items()}
            answer = await self._redis.xread(streams, count=1, block=self._block_ms)
        return {str(key): _seq(stream[-1][0]) for key, stream in answer or () if stream}

    async def delete(self, run_id: str) -> None:
        async with redis_errors("run_events.delete"):
            await self._redis.delete(self._key(run_id))

    async def aclose(self) -> None:
        await self._waiters.aclose()
        if self._owns_client:
            await self._redis.aclose(close_connection_pool=True)


def _seq(entry_id: str | None) -> int:
    """The number of an entry id ``0-<n>`` (0 for none); ``EventsExpiredError`` for any other id."""
    if entry_id is None:
        return 0
    millis, _, number = str(entry_id).partition("-")
    if millis != "0" or not number.isdigit():
        raise EventsExpiredError(f"unknown event id {entry_id!r}")
    return int(number)
