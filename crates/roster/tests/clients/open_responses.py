"""The Open Responses compliance cases, run against a Responses API server.

Open Responses (github.com/openresponses/openresponses) checks servers with
a TypeScript runner for bun (`bin/compliance-test.ts`), which cannot run
here. This is our own runner for the same cases: the same requests, the
same checks, and the same strictness of schema, taken from the PyPI package
`openresponses-types` (Pydantic models generated from the Open Responses
OpenAPI document; validated in strict mode, as zod is strict about types).

    python3 open_responses.py --base-url http://127.0.0.1:8000/v1 \\
        --api-key KEY [--model gpt-4o-mini] [--filter id,id] [--json] [-v]

Flags as the upstream runner's. Each case passes when the answer is 2xx,
parses as the spec's ResponseResource (streamed: every event parses as the
spec's event of its `type`, and the final response is the one a
`response.completed`, `.failed` or `.incomplete` event carries), and the
case's own checks hold. Exit 1 when a case fails. `--json` prints
{"summary": {passed, failed, skipped, total}, "results": [...]}; each
result also says, under `diagnostics`, which of the case's own checks fail
on the answer as it came when the schema alone failed it (for reports; the
status is decided as upstream decides it).
"""

import argparse
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.request

from openresponses_types import types as spec
from pydantic import ValidationError

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            },
        },
        "required": ["location"],
    },
}

# A 32x32 PNG icon and a one-page PDF whose title is "OpenResponses File
# Input Fixture", both inline as data URLs.
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAACAAAAAgCAIAAAD8GO2jAAABmklEQVR42tyWAaTyUBzFew/eG4AHz"
    "+MBSAHKBiJRGFKwIgQQJKLUIioBIhCAiCAAEizAQIAECaASqFFJq84nudjnaqvuPnxzgP9xfrq5938csPn7PwHTKSoViCIEAYEAMhmoKsU2m"
    "UCWEQqB5xEMIp/HaGQG2G6RSuH9HQ7H34rFrtPbdz4jl6PbwmEsl3QA1mt4vcRKk8dz9eg6IpF7tt9fzGY0gCgafFRFo5Blc5vLhf3eCOj1y"
    "NhM5GRMVK0aATxPZoz09YXjkQDmczJgquGQAPp9WwCNBgG027YACgUC6HRsAZRKBDAY2AJoNv/ZnwzA6WScznG3p4UAymXGAEkyXrTFAh8fL"
    "AGqagQAyGaZpYsi7bHTNPz8MEj//LxuFPo+UBS8vb0KaLXubrRa7aX0RMLCykwmn0z3+XA4WACcTpCkh9MFAZpmuVXo+mO/w+/HZvNgbblcU"
    "CxaSo/Hyck80Yu6XXDcvfVZr79cvMZjuN2U9O9vKAqjZrfbIZ0mV4TUi9Xqz6jddNy//7+e3n8Fhf/Llo2kxi8AQyGRoDkmAhAAAAAASUVOR"
    "K5CYII="
)
PDF = (
    "data:application/pdf;base64,JVBERi0xLjEKMSAwIG9iago8PCAvVHlwZSAvQ2F0YWxvZyAvUGFnZXMgMiAwIFIgPj4KZW5kb2JqCjIgMCB"
    "vYmoKPDwgL1R5cGUgL1BhZ2VzIC9LaWRzIFszIDAgUl0gL0NvdW50IDEgPj4KZW5kb2JqCjMgMCBvYmoKPDwgL1R5cGUgL1BhZ2UgL1BhcmVud"
    "CAyIDAgUiAvTWVkaWFCb3ggWzAgMCAzMDAgMTQ0XSAvQ29udGVudHMgNCAwIFIgL1Jlc291cmNlcyA8PCAvRm9udCA8PCAvRjEgNSAwIFIgPj4"
    "gPj4gPj4KZW5kb2JqCjQgMCBvYmoKPDwgL0xlbmd0aCA3NCA+PgpzdHJlYW0KQlQKL0YxIDEyIFRmCjcyIDcyIFRkCihUaXRsZTogT3BlblJlc"
    "3BvbnNlcyBGaWxlIElucHV0IEZpeHR1cmUpIFRqCkVUCmVuZHN0cmVhbQplbmRvYmoKNSAwIG9iago8PCAvVHlwZSAvRm9udCAvU3VidHlwZSA"
    "vVHlwZTEgL0Jhc2VGb250IC9IZWx2ZXRpY2EgPj4KZW5kb2JqCnRyYWlsZXIKPDwgL1Jvb3QgMSAwIFIgPj4KJSVFT0Y="
)

# The spec's model of each streaming event, by its `type`.
EVENTS = {
    "response.created": spec.ResponseCreatedStreamingEvent,
    "response.queued": spec.ResponseQueuedStreamingEvent,
    "response.in_progress": spec.ResponseInProgressStreamingEvent,
    "response.completed": spec.ResponseCompletedStreamingEvent,
    "response.failed": spec.ResponseFailedStreamingEvent,
    "response.incomplete": spec.ResponseIncompleteStreamingEvent,
    "response.output_item.added": spec.ResponseOutputItemAddedStreamingEvent,
    "response.output_item.done": spec.ResponseOutputItemDoneStreamingEvent,
    "response.content_part.added": spec.ResponseContentPartAddedStreamingEvent,
    "response.content_part.done": spec.ResponseContentPartDoneStreamingEvent,
    "response.output_text.delta": spec.ResponseOutputTextDeltaStreamingEvent,
    "response.output_text.done": spec.ResponseOutputTextDoneStreamingEvent,
    "response.refusal.delta": spec.ResponseRefusalDeltaStreamingEvent,
    "response.refusal.done": spec.ResponseRefusalDoneStreamingEvent,
    "response.function_call_arguments.delta": spec.ResponseFunctionCallArgumentsDeltaStreamingEvent,
    "response.function_call_arguments.done": spec.ResponseFunctionCallArgumentsDoneStreamingEvent,
    "response.reasoning_summary_part.added": spec.ResponseReasoningSummaryPartAddedStreamingEvent,
    "response.reasoning_summary_part.done": spec.ResponseReasoningSummaryPartDoneStreamingEvent,
    "response.reasoning.delta": spec.ResponseReasoningDeltaStreamingEvent,
    "response.reasoning.done": spec.ResponseReasoningDoneStreamingEvent,
    "response.reasoning_summary_text.delta": spec.ResponseReasoningSummaryDeltaStreamingEvent,
    "response.reasoning_summary_text.done": spec.ResponseReasoningSummaryDoneStreamingEvent,
    "response.output_text.annotation.added": spec.ResponseOutputTextAnnotationAddedStreamingEvent,
    "error": spec.ErrorStreamingEvent,
}


def as_javascript_reads_it(value):
    """JSON numbers as JavaScript has them: 2.0 is the integer 2 (zod's
    `.int()` takes it; strict Pydantic would not)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [as_javascript_reads_it(v) for v in value]
    if isinstance(value, dict):
        return {k: as_javascript_reads_it(v) for k, v in value.items()}
    return value


def schema_issues(model, value):
    """Where `value` breaks the spec's `model`, as "path: message" lines."""
    try:
        model.model_validate_json(json.dumps(as_javascript_reads_it(value)), strict=True)
        return []
    except ValidationError as e:
        return [
            f"{'.'.join(str(p) for p in issue['loc']) or '(root)'}: {issue['msg']}"
            for issue in e.errors(include_url=False)
        ]


# --- the checks a case makes of a response that parsed --------------------

def has_output(response, _ctx):
    return [] if response.get("output") else ["Response has no output items"]


def has_output_of(kind):
    def check(response, _ctx):
        if any(item.get("type") == kind for item in response.get("output") or []):
            return []
        return [f'Expected output item of type "{kind}" but none found']
    return check


def completed(response, _ctx):
    status = response.get("status")
    return [] if status == "completed" else [f'Expected status "completed" but got "{status}"']


def streamed(_response, ctx):
    if not ctx.get("streaming"):
        return []
    return [] if ctx["events"] else ["No streaming events received"]


def events_valid(_response, ctx):
    return ctx.get("event_errors", []) if ctx.get("streaming") else []


def function_call_events(_response, ctx):
    if not ctx.get("streaming"):
        return []
    events = ctx["events"]
    kinds = [e.get("type") for e in events]
    errors = []
    if not any(e.get("type") == "response.output_item.added"
               and (e.get("item") or {}).get("type") == "function_call" for e in events):
        errors.append("Missing response.output_item.added event with function_call item")
    for kind in ("response.function_call_arguments.delta", "response.function_call_arguments.done"):
        if kind not in kinds:
            errors.append(f"Missing {kind} event")
    if not any(e.get("type") == "response.output_item.done"
               and (e.get("item") or {}).get("type") == "function_call" for e in events):
        errors.append("Missing response.output_item.done event with function_call item")
    return errors


# --- talking to the server -------------------------------------------------

class Config:
    def __init__(self, args):
        self.base_url = args.base_url.rstrip("/")
        self.model = args.model
        value = args.api_key if args.no_bearer else f"Bearer {args.api_key}"
        self.auth = (args.auth_header, value)


def post(config, body, stream):
    """POSTs `body` (with `stream`) to /responses; returns (status, text or
    None, events or None): a 2xx stream is read event by event."""
    data = json.dumps({**body, "stream": stream}).encode()
    request = urllib.request.Request(
        f"{config.base_url}/responses", data=data, method="POST",
        headers={"Content-Type": "application/json", config.auth[0]: config.auth[1]})
    try:
        response = urllib.request.urlopen(request, timeout=120)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), None
    with response:
        if not stream:
            return response.status, response.read().decode("utf-8", "replace"), None
        return response.status, None, read_events(response)


def read_events(response):
    """SSE as the upstream parser reads it: `event:` and `data:` lines, an
    event at each blank line, `[DONE]` dropped. Returns the raw data texts."""
    events, data = [], None
    for raw in response:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            if data != "[DONE]":
                events.append(data)
            data = None
    if data and data != "[DONE]":
        events.append(data)
    return events


class Outcome:
    """One request's answer: the parsed response (or why there is none) and,
    streamed, its events and their schema errors."""

    def __init__(self, status, text, raw_events):
        self.http_status = status
        self.errors = []
        self.response = None
        self.events = []
        self.event_errors = []
        if not 200 <= status < 300:
            self.errors = [f"HTTP {status}: {text}"]
            self.raw = text
            return
        if raw_events is None:
            try:
                self.response = json.loads(text)
            except ValueError:
                self.errors = [f"the body is not JSON: {text[:200]}"]
                self.raw = text
                return
        else:
            for data in raw_events:
                try:
                    event = json.loads(data)
                except ValueError:
                    self.event_errors.append(f"Failed to parse event data: {data}")
                    continue
                self.events.append(event)
                kind = event.get("type") if isinstance(event, dict) else None
                model = EVENTS.get(kind)
                issues = (schema_issues(model, event) if model
                          else [f"type: `{kind}` is not an event type of the spec"])
                if issues:
                    self.event_errors.append(
                        f"Event validation failed for {kind or 'unknown'}: {'; '.join(issues)}")
                if kind in ("response.completed", "response.failed", "response.incomplete"):
                    self.response = event.get("response")
        self.raw = self.response
        if self.response is None:
            self.errors = ["no final response (no response.completed, .failed or "
                           ".incomplete event)" if raw_events is not None else "null body"]
            return
        self.errors = schema_issues(spec.ResponseResource, self.response)

    @property
    def parsed(self):
        return not self.errors

    def context(self, streaming):
        return {"streaming": streaming, "events": self.events, "event_errors": self.event_errors}


def checks_of(outcome, checks, streaming):
    """The case's own checks on what came back (parsed or not)."""
    if not isinstance(outcome.response, dict):
        return []
    ctx = outcome.context(streaming)
    return [e for check in checks for e in check(outcome.response, ctx)]


# --- the cases ---------------------------------------------------------------

def user(text):
    return {"type": "message", "role": "user", "content": text}


def single(request, checks, streaming=False):
    def run(config):
        body = request(config.model)
        outcome = Outcome(*post(config, body, streaming))
        result = {"request": {**body, "stream": streaming} if streaming else body,
                  "response": outcome.raw}
        if streaming:
            result["streamEvents"] = len(outcome.events)
        if not outcome.parsed:
            return {**result, "status": "failed", "errors": outcome.errors,
                    "diagnostics": checks_of(outcome, checks, streaming)}
        errors = checks_of(outcome, checks, streaming)
        return {**result, "status": "failed" if errors else "passed", "errors": errors}
    return run


def two_turns(first_request, second_request, checks):
    """Two plain requests, the second made from the first's answer; the
    checks are of the second. Stops at the first answer that does not
    parse, as upstream does (diagnostics go on with it as it came)."""
    def run(config):
        first_body = first_request(config.model)
        first = Outcome(*post(config, first_body, False))
        if not isinstance(first.response, dict):
            return {"status": "failed", "errors": first.errors, "request": first_body,
                    "response": first.raw}
        second_body, why_not = second_request(config.model, first.response)
        if second_body is None:
            errors = first.errors or [why_not]
            return {"status": "failed", "errors": errors, "request": first_body,
                    "response": first.raw, "diagnostics": [why_not]}
        second = Outcome(*post(config, second_body, False))
        result = {"request": [first_body, second_body], "response": [first.raw, second.raw]}
        behaviour = checks_of(second, checks, False) if second.response is not None else second.errors
        if not first.parsed:
            return {**result, "status": "failed", "errors": first.errors,
                    "diagnostics": [f"second turn: {e}" for e in second.errors + behaviour]}
        if not second.parsed:
            return {**result, "status": "failed", "errors": second.errors, "diagnostics": behaviour}
        return {**result, "status": "failed" if behaviour else "passed", "errors": behaviour}
    return run


def remember_then_ask(model, first):
    return ({"model": model, "previous_response_id": first.get("id"),
             "input": "What code word did I ask you to remember?"}, None)


def answer_the_call(model, first):
    call = next((i for i in first.get("output") or []
                 if i.get("type") == "function_call" and "call_id" in i), None)
    if call is None:
        return None, "First response did not include a function_call with call_id"
    return ({"model": model, "previous_response_id": first.get("id"),
             "input": [{"type": "function_call_output", "call_id": call["call_id"],
                        "output": "64 degrees and clear"}]}, None)


def weather_request(model):
    return {"model": model, "input": [user("What's the weather like in San Francisco?")],
            "tools": [WEATHER_TOOL]}


CASES = [
    {
        "id": "basic-response", "name": "Basic Text Response",
        "description": "Simple user message, validates ResponseResource schema",
        "run": single(lambda m: {"model": m, "input": [user("Say hello in exactly 3 words.")]},
                      [has_output, completed]),
    },
    {
        "id": "streaming-response", "name": "Streaming Response",
        "description": "Validates SSE streaming events and final response",
        "run": single(lambda m: {"model": m, "input": [user("Count from 1 to 5.")]},
                      [streamed, events_valid, completed], streaming=True),
    },
    {
        "id": "system-prompt", "name": "System Prompt",
        "description": "Include system role message in input",
        "run": single(lambda m: {"model": m, "input": [
            {"type": "message", "role": "system",
             "content": "You are a pirate. Always respond in pirate speak."},
            user("Say hello.")]}, [has_output, completed]),
    },
    {
        "id": "tool-calling", "name": "Tool Calling",
        "description": "Define a function tool and verify function_call output",
        "run": single(weather_request, [has_output, has_output_of("function_call")]),
    },
    {
        "id": "tool-calling-streaming", "name": "Tool Calling (Streaming)",
        "description": "Streaming tool call: function_call SSE events with arguments delta/done",
        "run": single(weather_request, [streamed, events_valid, function_call_events],
                      streaming=True),
    },
    {
        "id": "function-call-roundtrip", "name": "Function Call Round Trip",
        "description": "Execute a function_call and return function_call_output",
        "run": two_turns(
            lambda m: {"model": m,
                       "input": "Use the weather tool to get the temperature in San Francisco.",
                       "tools": [WEATHER_TOOL],
                       "tool_choice": {"type": "function", "name": "get_weather"}},
            answer_the_call, [has_output, completed]),
    },
    {
        "id": "image-input", "name": "Image Input",
        "description": "Send image URL in user content",
        "run": single(lambda m: {"model": m, "input": [{"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "What do you see in this image? Answer in one sentence."},
            {"type": "input_image", "image_url": PNG}]}]}, [has_output, completed]),
    },
    {
        "id": "file-input", "name": "File Input",
        "description": "Send a small base64 input_file content part",
        "run": single(lambda m: {"model": m, "input": [{"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Read the attached file and answer with its title only."},
            {"type": "input_file", "filename": "openresponses-fixture.pdf", "file_data": PDF}]}]},
            [has_output, completed]),
    },
    {
        "id": "multi-turn", "name": "Multi-turn Conversation",
        "description": "Send assistant + user messages as conversation history",
        "run": single(lambda m: {"model": m, "input": [
            user("My name is Alice."),
            {"type": "message", "role": "assistant",
             "content": "Hello Alice! Nice to meet you. How can I help you today?"},
            user("What is my name?")]}, [has_output, completed]),
    },
    {
        "id": "previous-response-id", "name": "Previous Response ID",
        "description": "Use previous_response_id for provider-managed turn state",
        "run": two_turns(
            lambda m: {"model": m, "input": "Remember this code word: papaya. Reply with only OK."},
            remember_then_ask, [has_output, completed]),
    },
    {
        "id": "file-search", "name": "File Search",
        "description": "Optional semantic search test using an existing vector store",
        "skip": "File search is optional and skipped until its required configuration "
                "is provided (--file-search-vector-store-id).",
    },
    {
        "id": "offline-web-search", "name": "Offline Web Search",
        "description": "Optional web_search test with live web access disabled",
        "skip": "Offline web search is optional and skipped until its required "
                "configuration is provided (--enable-offline-web-search).",
    },
]


def run_case(case, config):
    base = {"id": case["id"], "name": case["name"], "description": case["description"]}
    if "skip" in case:
        return {**base, "status": "skipped", "errors": [case["skip"]]}
    started = time.monotonic()
    try:
        result = case["run"](config)
    except Exception as e:  # a broken connection fails the case, as upstream
        result = {"status": "failed", "errors": [f"{type(e).__name__}: {e}"]}
    return {**base, **result, "duration": int((time.monotonic() - started) * 1000)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-u", "--base-url", required=True)
    parser.add_argument("-k", "--api-key", required=True)
    parser.add_argument("-m", "--model", default="gpt-4o-mini")
    parser.add_argument("--auth-header", default="Authorization")
    parser.add_argument("--no-bearer", action="store_true")
    parser.add_argument("-f", "--filter")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = Config(args)

    cases = CASES
    if args.filter:
        wanted = [s.strip() for s in args.filter.split(",")]
        unknown = [w for w in wanted if w not in {c["id"] for c in CASES}]
        if unknown:
            sys.exit(f"Invalid test IDs: {', '.join(unknown)}; available: "
                     f"{', '.join(c['id'] for c in CASES)}")
        cases = [c for c in CASES if c["id"] in wanted]

    # All at once, as upstream runs them.
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(lambda c: run_case(c, config), cases))

    summary = {status: sum(r["status"] == status for r in results)
               for status in ("passed", "failed", "skipped")}
    summary["total"] = len(results)
    if args.json:
        print(json.dumps({"summary": summary, "results": results}, indent=2))
    else:
        print(f"Running compliance tests against: {config.base_url}\nModel: {config.model}\n")
        for r in results:
            mark = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[r["status"]]
            print(f"{mark} {r['id']} ({r.get('duration', 0)}ms)")
            if r["status"] != "passed":
                for error in r["errors"]:
                    print(f"  - {error}")
            if r["status"] == "failed" and args.verbose:
                for extra in r.get("diagnostics") or []:
                    print(f"  (its own check) {extra}")
                print("  Request:\n    " + json.dumps(r.get("request"), indent=2).replace("\n", "\n    "))
                print("  Response:\n    " + json.dumps(r.get("response"), indent=2).replace("\n", "\n    "))
        print(f"\nResults: {summary['passed']} passed, {summary['failed']} failed, "
              f"{summary['skipped']} skipped, {summary['total']} total")
    sys.exit(1 if summary["failed"] else 0)


if __name__ == "__main__":
    main()
