"""The official `a2a-sdk` Python client, unmodified, against a running Roster.

Run by `e2e_a2a.rs`: argv = base URL, API key. Agents: `concierge` (the fake
model answers "echo: <message>", lists what was said when asked "what did
I say", waits 3 s before answering "slow") and `guarded` (its tool call
waits for a person's approval). Raises on failure; prints "ok" last.
"""

import asyncio
import sys
import uuid

import httpx
from a2a.client import ClientConfig, create_client
from a2a.types import a2a_pb2 as pb

url, key = sys.argv[1], sys.argv[2]
headers = {"Authorization": f"Bearer {key}"}


def message(text, context=""):
    return pb.SendMessageRequest(message=pb.Message(
        message_id=str(uuid.uuid4()), role=pb.ROLE_USER, context_id=context,
        parts=[pb.Part(text=text)]))


async def client_for(agent, http, streaming):
    return await create_client(
        f"{url}/v1/a2a/{agent}",
        client_config=ClientConfig(httpx_client=http, streaming=streaming),
        resolver_http_kwargs={"headers": headers})


async def last_task(client, request):
    events = [e async for e in client.send_message(request)]
    assert events and events[0].HasField("task"), events
    return events


async def main():
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        # Discovery: the card names its JSON-RPC endpoint and bearer auth.
        card = (await http.get(f"{url}/v1/a2a/concierge/.well-known/agent-card.json")).json()
        assert card["supportedInterfaces"][0]["url"] == f"{url}/v1/a2a/concierge", card
        assert card["capabilities"]["streaming"] is True
        assert "bearer" in card["securitySchemes"]
        anonymous = await httpx.AsyncClient().get(f"{url}/v1/a2a/concierge/.well-known/agent-card.json")
        assert anonymous.status_code == 401

        # Send, blocking: the task completes with the answer as its artifact.
        blocking = await client_for("concierge", http, streaming=False)
        [event] = await last_task(blocking, message("hello a2a"))
        task = event.task
        assert task.status.state == pb.TASK_STATE_COMPLETED, task
        assert task.artifacts[0].parts[0].text == "echo: hello a2a", task
        context = task.context_id

        # The same context is the same session: the agent remembers.
        [event] = await last_task(blocking, message("what did I say", context))
        assert event.task.artifacts[0].parts[0].text == "you said: hello a2a | what did I say"
        assert event.task.context_id == context

        # Get and list.
        got = await blocking.get_task(pb.GetTaskRequest(id=task.id))
        assert got.status.state == pb.TASK_STATE_COMPLETED and got.id == task.id
        listed = await blocking.list_tasks(pb.ListTasksRequest(context_id=context))
        assert [t.id for t in listed.tasks][-1] == task.id and len(listed.tasks) == 2, listed
        assert listed.next_page_token == ""
        paged = await blocking.list_tasks(pb.ListTasksRequest(context_id=context, page_size=1))
        assert len(paged.tasks) == 1 and paged.next_page_token != ""
        rest = await blocking.list_tasks(pb.ListTasksRequest(context_id=context, page_size=1,
                                                             page_token=paged.next_page_token))
        assert [t.id for t in rest.tasks] == [task.id]

        # Stream: the task first, the answer, the final status; then closed.
        streaming = await client_for("concierge", http, streaming=True)
        events = [e async for e in streaming.send_message(message("stream a2a"))]
        assert events[0].HasField("task"), events[0]
        artifacts = [e.artifact_update.artifact.parts[0].text for e in events if e.HasField("artifact_update")]
        assert artifacts == ["echo: stream a2a"], events
        assert events[-1].status_update.status.state == pb.TASK_STATE_COMPLETED, events[-1]

        # Cancel a task that has not answered yet.
        quick = message("slow")
        quick.configuration.return_immediately = True
        [event] = await last_task(blocking, quick)
        assert event.task.status.state in (pb.TASK_STATE_SUBMITTED, pb.TASK_STATE_WORKING), event
        cancelled = await blocking.cancel_task(pb.CancelTaskRequest(id=event.task.id))
        assert cancelled.status.state == pb.TASK_STATE_CANCELED, cancelled
        try:
            await blocking.cancel_task(pb.CancelTaskRequest(id=event.task.id))
            raise AssertionError("a cancelled task cannot be cancelled again")
        except AssertionError:
            raise
        except Exception as e:
            assert "already ended" in str(e), e

        # A tool call waiting for a person's approval: input required.
        guarded = await client_for("guarded", http, streaming=True)
        events = [e async for e in guarded.send_message(message("please nap"))]
        last = events[-1]
        state = last.status_update.status.state if last.HasField("status_update") else last.task.status.state
        assert state == pb.TASK_STATE_INPUT_REQUIRED, events
        waiting = events[0].task.id
        subscribed = [e async for e in guarded.subscribe(pb.SubscribeToTaskRequest(id=waiting))]
        assert subscribed[0].task.status.state == pb.TASK_STATE_INPUT_REQUIRED, subscribed

        # Unknown tasks.
        try:
            await blocking.get_task(pb.GetTaskRequest(id="run_00000000-0000-0000-0000-000000000000"))
            raise AssertionError("an unknown task was found")
        except AssertionError:
            raise
        except Exception as e:
            assert "not found" in str(e), e

    # A2A 0.3 names and shapes when no version header is sent (a plain
    # client: the SDK's own added `A2A-Version: 1.0` to the one above).
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        legacy = await http.post(f"{url}/v1/a2a/concierge", json={
            "jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
                "kind": "message", "messageId": str(uuid.uuid4()), "role": "user",
                "parts": [{"kind": "text", "text": "old client"}]}}})
        assert "result" in legacy.json(), legacy.json()
        result = legacy.json()["result"]
        assert result["kind"] == "task" and result["status"]["state"] == "completed", result
        assert result["artifacts"][0]["parts"][0] == {"kind": "text", "text": "echo: old client"}
        wrong = await http.post(f"{url}/v1/a2a/concierge", json={
            "jsonrpc": "2.0", "id": 2, "method": "SendMessage", "params": {}})
        assert wrong.json()["error"]["code"] == -32601, wrong.json()
        unknown = await http.post(f"{url}/v1/a2a/concierge", headers={"A2A-Version": "9.9"}, json={
            "jsonrpc": "2.0", "id": 3, "method": "SendMessage", "params": {}})
        assert unknown.json()["error"]["code"] == -32009, unknown.json()
    print("ok")


asyncio.run(main())
