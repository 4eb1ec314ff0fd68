"""Token coalescing of ``StreamControl.events``: tokens already queued behind a slow consumer go out
as one event; nothing is reordered, nothing waits for more tokens, and it can be turned off."""

from __future__ import annotations

from agent_runtime.orchestration._streaming import StreamControl
from agent_runtime.types import AgentResult, StreamEvent


def _token(text: str, step: str | None = None) -> StreamEvent:
    return StreamEvent(type="token", run_id="run_x", data={"text": text}, step=step)


async def _queued(control: StreamControl, *events: StreamEvent) -> None:
    for event in events:
        await control.emit(event)
    await control.queue.put(("final", AgentResult(run_id="run_x", template="writer", model="offline", output="abc")))


async def _drain(control: StreamControl, coalesce: bool) -> list[StreamEvent]:
    return [event async for event in control.events("run_x", coalesce=coalesce)]


async def test_queued_tokens_become_one_event_in_order() -> None:
    control = StreamControl()
    call = StreamEvent(type="tool_call", run_id="run_x", data={"name": "calc"})
    await _queued(control, _token("a"), _token("b"), _token("c"), call, _token("d"), _token("e"))
    events = await _drain(control, coalesce=True)
    assert [(e.type, e.data.get("text"), e.data.get("tokens")) for e in events] == [
        ("token", "abc", 3),
        ("tool_call", None, None),
        ("token", "de", 2),
        ("final", None, None),
    ]


async def test_tokens_of_different_steps_are_not_merged() -> None:
    control = StreamControl()
    await _queued(control, _token("a", "s1"), _token("b", "s1"), _token("c", "s2"))
    events = await _drain(control, coalesce=True)
    assert [(e.step, e.text) for e in events if e.type == "token"] == [("s1", "ab"), ("s2", "c")]


async def test_coalescing_off_keeps_one_event_per_token() -> None:
    control = StreamControl()
    await _queued(control, _token("a"), _token("b"), _token("c"))
    events = await _drain(control, coalesce=False)
    assert [e.text for e in events if e.type == "token"] == ["a", "b", "c"]
    assert all("tokens" not in e.data for e in events)
