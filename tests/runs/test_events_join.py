"""``runs.events.join``: a joiner gets the logged events after its id, then the live ones, and stops
when the log is closed, the last event came, or a while after the run's record says it ended (a log
whose writer died, or a run that was never logged)."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.errors import EventsExpiredError
from agent_runtime.runs.events.join import check_after, join
from agent_runtime.runs.events.memory import MemoryRunEventLog
from agent_runtime.types import StreamEvent
from tests.helpers import until

pytestmark = pytest.mark.timeout(30)


def token(text: str) -> StreamEvent:
    return StreamEvent(type="token", run_id="run_1", data={"text": text})


class Record:
    """What the joiner asks: is the run still going (its record's status)."""

    def __init__(self, running: bool = True) -> None:
        self.running = running
        self.asked = 0

    async def active(self) -> bool:
        self.asked += 1
        return self.running


async def test_replays_then_follows_until_the_last_event() -> None:
    log = MemoryRunEventLog()
    first = await log.append("run_1", token("a"))
    record = Record()
    got: list[str] = []

    async def follow() -> None:
        async for logged in join(log, "run_1", active=record.active, poll_s=0.05):
            got.append(logged.event.type)

    joiner = asyncio.create_task(follow())
    await until(lambda: got == ["token"])
    await log.append("run_1", token("b"))
    await log.append("run_1", StreamEvent(type="final", run_id="run_1", data={}))
    await asyncio.wait_for(joiner, 10)  # the final ends it, though the log is still open
    assert got == ["token", "token", "final"]
    resumed = [logged.event.text async for logged in join(log, "run_1", active=record.active, after=first)]
    assert resumed == ["b", ""]


async def test_stops_once_the_record_ended_and_the_log_stays_open() -> None:
    log = MemoryRunEventLog()
    await log.append("run_1", token("a"))
    record = Record()
    got: list[str] = []

    async def follow() -> None:
        async for logged in join(log, "run_1", active=record.active, poll_s=0.05, grace_s=0.05):
            got.append(logged.event.text)

    joiner = asyncio.create_task(follow())
    await until(lambda: record.asked >= 2)  # polled while nothing came
    record.running = False  # the writer died: its log is never closed
    await asyncio.wait_for(joiner, 10)
    assert got == ["a"]


async def test_a_run_that_ended_unlogged_ends_the_join_at_once() -> None:
    log = MemoryRunEventLog()
    record = Record(running=False)
    got = [logged async for logged in join(log, "run_9", active=record.active, grace_s=0.01)]
    assert got == [] and record.asked == 1


async def test_takes_what_comes_in_the_grace_after_the_record_ended() -> None:
    log = MemoryRunEventLog()
    record = Record(running=False)  # the outcome is written; its last event is on the way
    got: list[str] = []

    async def follow() -> None:
        async for logged in join(log, "run_1", active=record.active, grace_s=10):
            got.append(logged.event.type)

    joiner = asyncio.create_task(follow())
    await log.append("run_1", StreamEvent(type="error", run_id="run_1", data={"code": "cancelled"}))
    await asyncio.wait_for(joiner, 10)
    assert got == ["error"]


async def test_an_id_out_of_the_window_is_refused_before_anything_is_sent() -> None:
    log = MemoryRunEventLog(max_events=2)
    ids = [await log.append("run_1", token(str(i))) for i in range(4)]
    with pytest.raises(EventsExpiredError):
        await check_after(log, "run_1", ids[0])
    with pytest.raises(EventsExpiredError):
        await check_after(log, "run_1", "not-an-id")
    await check_after(log, "run_1", ids[2])  # still kept
    await check_after(log, "run_1", None)


async def test_events_appended_while_the_reader_holds_one_are_not_missed() -> None:
    log = MemoryRunEventLog()
    await log.append("run_1", token("a"))
    reader = log.read("run_1")
    assert (await anext(reader)).event.text == "a"  # the reader is suspended at its yield
    await log.append("run_1", token("b"))  # appended and closed meanwhile
    await log.close("run_1")
    rest = [logged.event.text async for logged in reader]
    assert rest == ["b"]
