"""A real A2A agent for Roster's A2A client tests, built on the official
`a2a-sdk` (1.x) server: its JSON-RPC routes (with the 0.3 compatibility
layer) and its agent card route, served by uvicorn on a loopback port.

It answers deterministically, so a test can read what Roster sent:

- `echo: TEXT (turn N of context CTX)` as a completed task with one text
  artifact, N counting the messages seen in that contextId (so a test sees
  a conversation continue);
- a message containing `please reply directly`: the same line as a plain
  `message` answer instead of a task;
- a message containing `need input`: the task stops in
  TASK_STATE_INPUT_REQUIRED asking "Which city?";
- a message containing `please fail`: the task fails with "the remote
  failed on purpose";
- a message containing `please sleep`: the answer comes after 4 seconds
  (a test kills Roster meanwhile).

With `--token T`, every JSON-RPC request must carry `Authorization: Bearer
T` (401 otherwise). `--log` gets one JSON line per JSON-RPC request
(`{"request": …, "version": A2A-Version, "authorized": bool}`) and one
per message the agent handles (`{"message": TEXT, "context": ID}`).

Cards:
- `/.well-known/agent-card.json`: a 1.0 card (`supportedInterfaces`);
- `/v03/.well-known/agent-card.json`: a 0.3-style card (`url`,
  `preferredTransport`, `protocolVersion: 0.3.0`) for the same endpoint;
- `/walled/.well-known/agent-card.json`: a 1.0 card whose JSON-RPC
  endpoint is `--walled-endpoint` (an address the egress policy refuses).

Usage: a2a_remote_agent.py --port PORT [--token T] [--log FILE]
       [--walled-endpoint URL]; prints `ready` once it listens.
"""

import argparse
import asyncio
import json
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse

from a2a.helpers.proto_helpers import new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Task,
    TaskState,
    TaskStatus,
)


def log(path, entry):
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(entry) + "\n")


class Echo(AgentExecutor):
    """Echoes with a turn count per contextId."""

    def __init__(self, log_path):
        self.turns = {}
        self.log_path = log_path

    async def execute(self, context: RequestContext, event_queue: EventQueue):
        text = context.get_user_input()
        ctx = context.context_id
        log(self.log_path, {"message": text, "context": ctx})
        if "please sleep" in text:
            await asyncio.sleep(4)
        self.turns[ctx] = self.turns.get(ctx, 0) + 1
        line = f"echo: {text} (turn {self.turns[ctx]} of context {ctx})"
        if "please reply directly" in text:
            await event_queue.enqueue_event(
                new_text_message(line, context_id=ctx, task_id=None)
            )
            return
        if context.current_task is None:
            await event_queue.enqueue_event(
                Task(
                    id=context.task_id,
                    context_id=ctx,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message],
                )
            )
        updater = TaskUpdater(event_queue, context.task_id, ctx)
        if "need input" in text:
            await updater.requires_input(
                updater.new_agent_message([new_text_part("Which city?")])
            )
            return
        if "please fail" in text:
            await updater.failed(
                updater.new_agent_message([new_text_part("the remote failed on purpose")])
            )
            return
        await updater.add_artifact([new_text_part(line)], name="answer")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue):
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel()


def card(endpoint):
    return AgentCard(
        name="Echo Agent",
        description="Echoes what it is told, counting turns per conversation.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                url=endpoint, protocol_binding="JSONRPC", protocol_version="1.0"
            )
        ],
        capabilities=AgentCapabilities(streaming=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="Echo",
                description="Repeats the message with the turn number.",
                tags=["test"],
                examples=["hello"],
            )
        ],
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token")
    parser.add_argument("--log")
    parser.add_argument("--walled-endpoint", default="http://169.254.169.254/")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    endpoint = f"{base}/rpc"
    main_card = card(endpoint)
    handler = DefaultRequestHandler(
        agent_executor=Echo(args.log), task_store=InMemoryTaskStore(), agent_card=main_card
    )
    legacy = {
        "name": "Echo Agent (0.3)",
        "description": "The same echo agent, described the 0.3 way.",
        "url": endpoint,
        "preferredTransport": "JSONRPC",
        "protocolVersion": "0.3.0",
        "version": "1.0.0",
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "echo",
                "name": "Echo",
                "description": "Repeats the message.",
                "tags": ["test"],
            }
        ],
    }

    async def legacy_card(_request):
        return JSONResponse(legacy)

    routes = []
    routes += create_agent_card_routes(main_card)
    routes += create_agent_card_routes(
        card(args.walled_endpoint), card_url="/walled/.well-known/agent-card.json"
    )
    routes += create_jsonrpc_routes(handler, "/rpc", enable_v0_3_compat=True)
    app = Starlette(routes=routes)
    app.add_route("/v03/.well-known/agent-card.json", legacy_card, methods=["GET"])

    async def guard(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/rpc":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            log(
                args.log,
                {
                    "request": scope["method"],
                    "version": headers.get("a2a-version"),
                    "authorized": "authorization" in headers,
                },
            )
            if args.token and headers.get("authorization") != f"Bearer {args.token}":
                response = JSONResponse({"error": "unauthorized"}, status_code=401)
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    config = uvicorn.Config(guard, host="127.0.0.1", port=args.port, log_level="warning")
    server = uvicorn.Server(config)

    async def serve():
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        print("ready", flush=True)
        await task

    asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
