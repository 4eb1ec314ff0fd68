"""LangGraph's ``RemoteGraph``: an agent-runtime assistant used as a graph (invoke, stream, a thread that
remembers, state), through the official SDK underneath."""

from __future__ import annotations

from langgraph.pregel.remote import RemoteGraph

from tests.agent_protocol.core.conftest import APServer


async def test_remote_graph_invokes_streams_and_keeps_a_thread(ap_sqlite: APServer) -> None:
    graph = RemoteGraph("writer", url=ap_sqlite.url, api_key=ap_sqlite.alice)
    thread = await graph.client.threads.create()  # type: ignore[union-attr]
    config = {"configurable": {"thread_id": thread["thread_id"]}}
    told = await graph.ainvoke({"messages": [{"role": "user", "content": "my name is Ada"}]}, config)
    assert told["messages"][-1]["type"] == "ai"
    chunks = [
        chunk
        async for chunk in graph.astream(
            {"messages": [{"role": "user", "content": "what is my name?"}]}, config, stream_mode="values"
        )
    ]
    assert chunks and "Ada" in chunks[-1]["messages"][-1]["content"]
    state = await graph.aget_state(config)
    assert [m["type"] for m in state.values["messages"]] == ["human", "ai", "human", "ai"]
    stateless = graph.invoke({"messages": [{"role": "user", "content": "hello"}]})
    assert stateless["messages"][-1]["type"] == "ai"
