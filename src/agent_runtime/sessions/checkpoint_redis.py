r"""A LangGraph checkpointer on plain Redis (strings, hashes, sets and sorted sets; no modules).

Decision (issue 4): the official ``langgraph-checkpoint-redis`` needs RedisJSON and RediSearch and
fails on a plain ``redis-server`` (``unknown command 'FT.INFO'``); ``langgraph-checkpoint-plainredis``
is a 0.1 alpha from one author, which we would have to review line by line and then own anyway.
So we own a small saver instead: about 300 lines over the public ``BaseCheckpointSaver``
contract, using the saver's own ``serde`` (so the same values round-trip as in LangGraph's
savers), proven by ``langgraph-checkpoint-conformance`` against a real redis-server in
``tests/sessions/test_checkpointers.py`` (base capabilities: put, put_writes, get_tuple, list,
delete_thread).

Layout per thread, all under one hash tag so a thread lives in one Cluster slot
(``m`` = ``<checkpoint_ns>\0<checkpoint_id>``; checkpoint ids are uuid6, so lexical order is
time order)::

    ar:{<thread>}:lg:idx     zset, score 0, members m: latest / newest-first listing by ZRANGEBYLEX
    ar:{<thread>}:lg:cp      hash m -> msgpack [checkpoint type, bytes, metadata type, bytes, parent id]
    ar:{<thread>}:lg:bf      hash m -> the blob fields of that checkpoint, joined by \1
    ar:{<thread>}:lg:blobs   hash "<ns>\0<channel>\0<version>" -> msgpack [type, bytes]
    ar:{<thread>}:lg:w:<m>   hash "<task>\0<idx>" -> msgpack [task, channel, type, bytes, task_path, idx]
    ar:{<thread>}:lg:wkeys   set of the write hashes above, for delete_thread

``aget_tuple`` is one Lua call (one round trip); ``aput`` and ``aput_writes`` are one MULTI each.
The Lua scripts derive the write-hash names from ``m``; they share the thread's hash tag, so
the scripts never leave the slot (they live in ``_checkpoint_lua.py``). History is bounded
(``retention.py``): the ``aput`` MULTI ends with the prune script, and ``aprune`` is LangGraph's.
Not implemented (optional in the conformance suite): ``copy_thread``, ``delete_for_runs``.
Checkpoints carry no Redis TTL: the session manager deletes a thread when its session is deleted
or swept by ``cleanup_expired``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from agent_runtime._redis import check_key_part
from agent_runtime.errors import BackendError
from agent_runtime.sessions._checkpoint_lua import DELETE_THREAD, GET_TUPLE, PRUNE
from agent_runtime.sessions._redis_ops import redis_op
from agent_runtime.sessions.retention import DEFAULT_CHECKPOINT_HISTORY, check_prune_args

__all__ = ["RedisCheckpointSaver"]

T = TypeVar("T")

_LIST_CHUNK = 64


def _check_thread_id(thread_id: str) -> str:
    """A plain id or a session key ``<tenant>/<id>``: each part in the key alphabet, so no key escapes."""
    tenant, slash, rest = thread_id.partition("/")
    check_key_part(tenant, "thread id")
    if slash:
        check_key_part(rest, "thread id")
    return thread_id


class RedisCheckpointSaver(BaseCheckpointSaver[str]):
    """``BaseCheckpointSaver`` on a ``redis.asyncio`` client made with ``decode_responses=False``."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "ar",
        history: int | None = DEFAULT_CHECKPOINT_HISTORY,
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.client = client
        self.prefix = prefix
        self.history = history
        self._get = client.register_script(GET_TUPLE)
        self._delete = client.register_script(DELETE_THREAD)
        self._prune = client.register_script(PRUNE)
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- keys -------------------------------------------------------------------------------
    def _base(self, thread_id: str) -> str:
        return f"{self.prefix}:{{{_check_thread_id(str(thread_id))}}}:lg"

    def _thread_keys(self, thread_id: str) -> list[str]:
        base = self._base(thread_id)
        return [f"{base}:idx", f"{base}:cp", f"{base}:bf", f"{base}:blobs", f"{base}:wkeys"]

    @staticmethod
    def _where(config: RunnableConfig) -> tuple[str, str]:
        conf = config["configurable"]
        return str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))

    # -- async API --------------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._loop = asyncio.get_running_loop()
        thread_id, ns = self._where(config)
        keys = self._thread_keys(thread_id)
        args = [ns, get_checkpoint_id(config) or "", f"{self._base(thread_id)}:w:"]
        async with redis_op(self.client, "checkpoint.get"):
            found = await self._get(keys=keys[:4], args=args)
        return None if not found else self._tuple(thread_id, *found)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        self._loop = asyncio.get_running_loop()
        remaining = limit
        threads = [self._where(config)[0]] if config else await self._all_threads()
        ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        for thread_id in threads:
            members = await self._members(thread_id, None if ns is None else str(ns))
            members = [
                m
                for m in members
                if (wanted_id is None or m[1] == wanted_id) and (before_id is None or m[1] < before_id)
            ]
            for start in range(0, len(members), _LIST_CHUNK):
                chunk = members[start : start + _LIST_CHUNK]
                if filter:
                    chunk = await self._matching(thread_id, chunk, filter)
                if remaining is not None:
                    chunk = chunk[:remaining]
                for tup in await self._fetch(thread_id, chunk):
                    yield tup
                if remaining is not None:
                    remaining -= len(chunk)
                    if remaining <= 0:
                        return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._loop = asyncio.get_running_loop()
        thread_id, ns = self._where(config)
        idx, cp, bf, blobs, _ = self._thread_keys(thread_id)
        stored = checkpoint.copy()
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[misc]
        member = f"{ns}\0{checkpoint['id']}"
        record = ormsgpack.packb(
            [
                *self.serde.dumps_typed(stored),
                *self.serde.dumps_typed(get_checkpoint_metadata(config, metadata)),
                config["configurable"].get("checkpoint_id"),
            ]
        )
        new_blobs = {
            f"{ns}\0{channel}\0{version}": ormsgpack.packb(
                list(self.serde.dumps_typed(values[channel])) if channel in values else ["empty", b""]
            )
            for channel, version in new_versions.items()
        }
        fields = "\1".join(f"{ns}\0{ch}\0{ver}" for ch, ver in checkpoint["channel_versions"].items())
        async with redis_op(self.client, "checkpoint.put"):
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(cp, member, record)
            pipe.hset(bf, member, fields)
            pipe.zadd(idx, {member: 0})
            if new_blobs:
                pipe.hset(blobs, mapping=new_blobs)
            if self.history is not None:
                await self._prune_thread(thread_id, self.history + 1, pipe)
            await pipe.execute()
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._loop = asyncio.get_running_loop()
        thread_id, ns = self._where(config)
        wkey = f"{self._base(thread_id)}:w:{ns}\0{config['configurable']['checkpoint_id']}"
        async with redis_op(self.client, "checkpoint.put_writes"):
            pipe = self.client.pipeline(transaction=True)
            for position, (channel, value) in enumerate(writes):
                idx = WRITES_IDX_MAP.get(channel, position)
                field = f"{task_id}\0{idx}"
                packed = ormsgpack.packb([task_id, channel, *self.serde.dumps_typed(value), task_path, idx])
                # regular writes are idempotent per (task, idx); special ones (errors, interrupts) overwrite
                (pipe.hsetnx if idx >= 0 else pipe.hset)(wkey, field, packed)
            pipe.sadd(self._thread_keys(thread_id)[4], wkey)
            await pipe.execute()

    async def adelete_thread(self, thread_id: str) -> None:
        self._loop = asyncio.get_running_loop()
        async with redis_op(self.client, "checkpoint.delete_thread"):
            await self._delete(keys=self._thread_keys(thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        """LangGraph's ``aprune``: ``keep_latest`` keeps the newest ``keep_last`` checkpoints of each
        namespace (see ``retention.py``), ``delete`` removes the threads."""
        check_prune_args(strategy, keep_last)
        self._loop = asyncio.get_running_loop()
        for thread_id in thread_ids:
            if strategy == "delete":
                await self.adelete_thread(thread_id)
            else:
                async with redis_op(self.client, "checkpoint.prune"):
                    await self._prune_thread(str(thread_id), keep_last, self.client)

    async def _prune_thread(self, thread_id: str, keep_last: int, client: Any) -> Any:
        keys, args = self._thread_keys(thread_id), [keep_last, f"{self._base(thread_id)}:w:"]
        return await self._prune(keys=keys, args=args, client=client)

    # -- helpers ----------------------------------------------------------------------------
    async def _all_threads(self) -> list[str]:
        pattern = f"{self.prefix}:{{*}}:lg:idx"
        found: list[str] = []
        async with redis_op(self.client, "checkpoint.list"):
            async for key in self.client.scan_iter(match=pattern, count=500):
                name = key.decode() if isinstance(key, bytes) else str(key)
                found.append(name[name.index("{") + 1 : name.rindex("}")])
        return sorted(found)

    async def _members(self, thread_id: str, ns: str | None) -> list[tuple[str, str]]:
        idx = self._thread_keys(thread_id)[0]
        async with redis_op(self.client, "checkpoint.list"):
            if ns is None:
                raw = await self.client.zrevrange(idx, 0, -1)
            else:
                raw = await self.client.zrevrangebylex(idx, f"({ns}\1", f"[{ns}\0")
        out: list[tuple[str, str]] = []
        for member in raw:
            m_ns, _, m_id = member.decode().partition("\0")
            out.append((m_ns, m_id))
        return out

    async def _matching(
        self, thread_id: str, members: list[tuple[str, str]], wanted: dict[str, Any]
    ) -> list[tuple[str, str]]:
        cp = self._thread_keys(thread_id)[1]
        async with redis_op(self.client, "checkpoint.list"):
            records = await self.client.hmget(cp, [f"{ns}\0{cid}" for ns, cid in members])
        keep: list[tuple[str, str]] = []
        for member, record in zip(members, records, strict=True):
            if record is None:
                continue
            _, _, md_type, md_bytes, _ = self._unpack(thread_id, record)
            metadata = self.serde.loads_typed((md_type, md_bytes))
            if all(metadata.get(k) == v for k, v in wanted.items()):
                keep.append(member)
        return keep

    async def _fetch(self, thread_id: str, members: list[tuple[str, str]]) -> list[CheckpointTuple]:
        if not members:
            return []
        keys = self._thread_keys(thread_id)[:4]
        prefix = f"{self._base(thread_id)}:w:"
        async with redis_op(self.client, "checkpoint.list"):
            pipe = self.client.pipeline(transaction=False)
            for ns, cid in members:
                await self._get(keys=keys, args=[ns, cid, prefix], client=pipe)
            results = await pipe.execute()
        return [self._tuple(thread_id, *found) for found in results if found]

    def _unpack(self, thread_id: str, raw: bytes) -> list[Any]:
        try:
            value = ormsgpack.unpackb(raw)
        except (ormsgpack.MsgpackDecodeError, ValueError) as exc:
            raise BackendError(f"stored checkpoint data of thread {thread_id} is corrupt") from exc
        if not isinstance(value, list):
            raise BackendError(f"stored checkpoint data of thread {thread_id} is corrupt")
        return value

    def _tuple(
        self, thread_id: str, member: bytes, record: bytes, writes: list[bytes], fields: bytes, blobs: list[Any]
    ) -> CheckpointTuple:
        ns, _, checkpoint_id = member.decode().partition("\0")
        try:
            cp_type, cp_bytes, md_type, md_bytes, parent_id = self._unpack(thread_id, record)
            checkpoint: Checkpoint = self.serde.loads_typed((cp_type, cp_bytes))
            values: dict[str, Any] = {}
            for field, blob in zip(fields.split(b"\1") if fields else [], blobs, strict=True):
                if blob is None:
                    continue
                blob_type, blob_bytes = self._unpack(thread_id, blob)
                if blob_type != "empty":
                    values[field.split(b"\0")[1].decode()] = self.serde.loads_typed((blob_type, blob_bytes))
            stored_writes = sorted(
                (self._unpack(thread_id, raw) for raw in writes[1::2]),
                key=lambda w: writes_sort_key(w[4], w[0], w[5]),
            )
            pending = [(w[0], w[1], self.serde.loads_typed((w[2], w[3]))) for w in stored_writes]
            metadata = self.serde.loads_typed((md_type, md_bytes))
        except BackendError:
            raise
        except Exception as exc:  # any decoding failure of stored bytes means corruption
            raise BackendError(f"stored checkpoint {checkpoint_id} of thread {thread_id} is corrupt") from exc

        def conf(cid: str) -> RunnableConfig:
            return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}}

        return CheckpointTuple(
            config=conf(checkpoint_id),
            checkpoint={**checkpoint, "channel_values": values},
            metadata=metadata,
            parent_config=conf(parent_id) if parent_id else None,
            pending_writes=pending,
        )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """String versions with a random tail, as LangGraph's own savers use."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- sync API: only from another thread than the saver's event loop ---------------------
    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            coro.close()
            raise BackendError("RedisCheckpointSaver is async: use ainvoke/astream (or call from another thread)")
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._sync(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        async def collect() -> list[CheckpointTuple]:
            return [t async for t in self.alist(config, filter=filter, before=before, limit=limit)]

        yield from self._sync(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._sync(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._sync(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._sync(self.adelete_thread(thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep_last: int = 1) -> None:
        self._sync(self.aprune(thread_ids, strategy=strategy, keep_last=keep_last))
