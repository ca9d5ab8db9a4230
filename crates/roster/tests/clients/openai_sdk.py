"""The official `openai` Python SDK, unmodified, against a running Roster.

Run by `e2e_openai.rs`: argv = base URL, API key, agent name. The fake model
behind Roster answers "echo: <last user message>", calls `get_weather` when
asked about the weather, answers a tool result with "It rains: <result>",
lists every user message when asked "what did I say", and waits 3 s before
answering "slow". Every check raises on failure; the last line says "ok".
"""

import sys
import urllib.request
import json

import openai
from openai import OpenAI

url, key, agent = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
WEATHER = [{
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def native(path):
    request = urllib.request.Request(f"{url}{path}", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def expect(error, call):
    try:
        call()
    except error as e:
        return e
    raise AssertionError(f"expected {error.__name__}")


# Create, retrieve, input items.
first = client.responses.create(model=agent, input="hello there", metadata={"ticket": "42"})
assert first.status == "completed", first
assert first.output_text == "echo: hello there", first.output_text
assert first.usage.total_tokens > 0, first.usage
assert first.metadata == {"ticket": "42"}, first.metadata
again = client.responses.retrieve(first.id)
assert again.output_text == first.output_text and again.id == first.id
inputs = client.responses.input_items.list(first.id)
assert [i.content[0].text for i in inputs.data] == ["hello there"], inputs

# previous_response_id: state is the session's, not resent by the client.
second = client.responses.create(model=agent, input="what did I say", previous_response_id=first.id)
assert second.output_text == "you said: hello there | what did I say", second.output_text
assert second.previous_response_id == first.id
error = expect(openai.BadRequestError, lambda: client.responses.create(
    model=agent, input="fork", previous_response_id=first.id))
assert "newest" in error.message, error.message
expect(openai.NotFoundError, lambda: client.responses.create(model="no-such-agent", input="x"))
expect(openai.NotFoundError, lambda: client.responses.retrieve("run_00000000-0000-0000-0000-000000000000"))

# Plain streaming: numbered from 0, created first, completed last.
events = list(client.responses.create(model=agent, input="stream this please", stream=True))
types = [e.type for e in events]
assert types[0] == "response.created" and types[-1] == "response.completed", types
assert [e.sequence_number for e in events] == list(range(len(events))), types
deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
assert deltas == "echo: stream this please", deltas
assert sum(1 for t in types if t == "response.output_text.delta") > 1, "streamed in pieces"
streamed_id = events[-1].response.id

# The strict stream helper.
with client.responses.stream(model=agent, input="helper works") as stream:
    text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    final = stream.get_final_response()
assert text == "echo: helper works" and final.output_text == text, (text, final)

# Resuming: the whole stream again, or only what follows a sequence number,
# numbered exactly as the first time.
replayed = list(client.responses.retrieve(streamed_id, stream=True))
assert [(e.type, e.sequence_number) for e in replayed] == [(e.type, e.sequence_number) for e in events]
cut = events[4].sequence_number
rest = list(client.responses.retrieve(streamed_id, stream=True, starting_after=cut))
assert [e.sequence_number for e in rest] == [e.sequence_number for e in events[5:]]
with client.responses.stream(response_id=streamed_id, starting_after=cut) as stream:
    resumed = [e for e in stream]
    assert stream.get_final_response().output_text == "echo: stream this please"
assert resumed[0].sequence_number == cut + 1

# A function tool round trip: the call comes back to the client, its output
# goes in with the next request.
asked = client.responses.create(model=agent, input="what is the weather in Oslo?", tools=WEATHER)
calls = [o for o in asked.output if o.type == "function_call"]
assert asked.status == "completed" and len(calls) == 1, asked.output
assert calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Oslo"}
answered = client.responses.create(
    model=agent, previous_response_id=asked.id, tools=WEATHER,
    input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "rain all day"}])
assert answered.output_text == "It rains: rain all day", answered.output_text
with client.responses.stream(model=agent, input="weather in Bergen?", tools=WEATHER) as stream:
    for _ in stream:
        pass
    final = stream.get_final_response()
assert [o.type for o in final.output] == ["function_call"], final.output

# tool_choice reaches the model: `none` offers no tool, `required` forces one.
quiet = client.responses.create(model=agent, input="weather in Oslo?", tools=WEATHER, tool_choice="none")
assert quiet.output_text == "echo: weather in Oslo?" and quiet.tool_choice == "none", quiet.output
forced = client.responses.create(model=agent, input="just talk", tools=WEATHER, tool_choice="required")
assert [o.type for o in forced.output] == ["function_call"], forced.output
forced_by_name = client.responses.create(model=agent, input="just talk", tools=WEATHER,
                                         tool_choice={"type": "function", "name": "get_weather"})
assert [o.type for o in forced_by_name.output] == ["function_call"], forced_by_name.output

# A route instead of an agent: a governed, ledgered call of that model.
direct = client.responses.create(model="openai/direct-model", input="direct hello")
assert direct.output_text == "echo: direct hello" and direct.model == "openai/direct-model", direct
follow = client.responses.create(model="openai/direct-model", input="what did I say",
                                 previous_response_id=direct.id)
assert follow.output_text == "you said: direct hello | what did I say", follow.output_text
expect(openai.NotFoundError, lambda: client.responses.create(model="nowhere/model", input="x"))
chat_direct = client.chat.completions.create(model="openai/direct-model",
                                             messages=[{"role": "user", "content": "direct chat"}])
assert chat_direct.choices[0].message.content == "echo: direct chat"
ledger = native("/v1/ledger?limit=100")["data"]
assert any(row["model"] == "direct-model" for row in ledger), ledger

# Conversations: a conversation is a session, in both APIs.
conversation = client.conversations.create(metadata={"topic": "trip"})
assert conversation.metadata == {"topic": "trip"}
client.responses.create(model=agent, input="first", conversation=conversation.id)
told = client.responses.create(model=agent, input="what did I say", conversation={"id": conversation.id})
assert told.output_text == "you said: first | what did I say", told.output_text
assert told.conversation.id == conversation.id
session = native(f"/v1/sessions/{conversation.id}")
assert session["id"] == conversation.id and session["metadata"] == {"topic": "trip"}, session
items = list(client.conversations.items.list(conversation.id, limit=1))
texts = [i.content[0].text for i in items]
assert texts == ["you said: first | what did I say", "what did I say", "echo: first", "first"], texts
page = client.conversations.items.list(conversation.id, limit=2, order="asc")
assert page.has_more and [i.content[0].text for i in page.data] == ["first", "echo: first"]
one = client.conversations.items.retrieve(items[0].id, conversation_id=conversation.id)
assert one.id == items[0].id
added = client.conversations.items.create(conversation.id, items=[
    {"type": "message", "role": "user", "content": "a note added outside a response"}])
assert added.data[0].content[0].text == "a note added outside a response"
after_delete = client.conversations.items.delete(added.data[0].id, conversation_id=conversation.id)
assert after_delete.id == conversation.id
assert len(list(client.conversations.items.list(conversation.id))) == 4
updated = client.conversations.update(conversation.id, metadata={"topic": "home"})
assert updated.metadata == {"topic": "home"}
expect(openai.BadRequestError, lambda: client.responses.create(
    model=agent, input="x", conversation=conversation.id, previous_response_id=told.id))
deleted = client.conversations.delete(conversation.id)
assert deleted.deleted
expect(openai.NotFoundError, lambda: client.conversations.retrieve(conversation.id))

# Background, then cancel.
slow = client.responses.create(model=agent, input="slow", background=True)
assert slow.status in ("queued", "in_progress"), slow.status
cancelled = client.responses.cancel(slow.id)
assert cancelled.status == "cancelled", cancelled.status
assert client.responses.retrieve(slow.id).status == "cancelled"

# Deleting a response.
client.responses.delete(first.id)
expect(openai.NotFoundError, lambda: client.responses.retrieve(first.id))

# Chat Completions, plain and streamed, and a tool call.
chat = client.chat.completions.create(model=agent, messages=[{"role": "user", "content": "hi chat"}])
assert chat.choices[0].message.content == "echo: hi chat" and chat.choices[0].finish_reason == "stop"
pieces = client.chat.completions.create(
    model=agent, messages=[{"role": "user", "content": "stream chat"}], stream=True,
    stream_options={"include_usage": True})
chunks = list(pieces)
assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: stream chat"
assert chunks[-1].usage.total_tokens > 0
tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER[0]["parameters"]}}]
called = client.chat.completions.create(
    model=agent, tools=tools, messages=[{"role": "user", "content": "weather in Oslo?"}])
assert called.choices[0].finish_reason == "tool_calls"
call = called.choices[0].message.tool_calls[0]
followed = client.chat.completions.create(model=agent, tools=tools, messages=[
    {"role": "user", "content": "weather in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
])
assert followed.choices[0].message.content == "It rains: sunny"
print("ok")
