"""The OpenAI chat-completions wire format: request checks, response bodies, stream chunks, errors."""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

MAX_MESSAGES = 256
ROLES = {"system", "developer", "user", "assistant", "tool"}


class ApiError(Exception):
    """An error answered as `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


async def read_body(request: Any, limit: int) -> bytes:
    """A request's body, refused once it is over `limit` bytes: by its Content-Length (400 when that is not a
    number, 413 when over) or, for a chunked body, as it streams in (413)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad Content-Length header")
        if int(declared) > limit:
            raise ApiError(413, f"request body over {limit} bytes", code="request_too_large")
    chunks, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise ApiError(413, f"request body over {limit} bytes", code="request_too_large")
        chunks.append(part)
    return b"".join(chunks)


def _text(content: Any, where: str) -> str:
    """A message's text: a string, or the text parts of a content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"{where}.content[{i}]: only text parts are supported",
                               param=f"{where}.content")
            parts.append(part["text"])
        return "\n".join(parts)
    raise ApiError(400, f"{where}.content must be a string or a list of text parts", param=f"{where}.content")


def _number(payload: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = payload.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ApiError(400, f"'{name}' must be a number from {low:g} to {high:g}", param=name)
    return float(value)


def parse_chat_request(payload: Any, max_new_tokens: int) -> dict[str, Any]:
    """Check a chat-completions body; return the arguments it asks for (`Router.plan`'s, plus `stream`)."""
    if not isinstance(payload, dict):
        raise ApiError(400, "request body must be a JSON object")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' is required: a non-empty list", param="messages",
                       code="missing_required_parameter" if messages is None else None)
    if len(messages) > MAX_MESSAGES:
        raise ApiError(400, f"at most {MAX_MESSAGES} messages", param="messages")
    question = None
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(400, f"messages[{i}] must be an object with a role in {sorted(ROLES)}",
                           param=f"messages[{i}]")
        text = _text(m.get("content"), f"messages[{i}]")
        if m["role"] == "user":
            question = text
    if question is None:
        raise ApiError(400, "no user message to answer", param="messages")
    model = payload.get("model")
    if model is not None and (not isinstance(model, str) or not model):
        raise ApiError(400, "'model' must be a non-empty string", param="model")
    stream = payload.get("stream", False)
    if stream not in (True, False, None):
        raise ApiError(400, "'stream' must be a boolean", param="stream")
    options = payload.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not stream):
        raise ApiError(400, "'stream_options' needs stream: true and must be an object", param="stream_options")
    n = payload.get("n", 1)
    if n not in (1, None):
        raise ApiError(400, "only n=1 is supported", param="n", code="unsupported_parameter")
    limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ApiError(400, "max_tokens must be a positive integer", param="max_tokens")
    seed = payload.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or abs(seed) >= 2**63):
        raise ApiError(400, "'seed' must be an integer", param="seed")
    schema, strict = None, False
    fmt = payload.get("response_format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
            raise ApiError(400, "response_format.type must be 'text', 'json_object' or 'json_schema'",
                           param="response_format")
        if fmt["type"] == "json_object":
            schema = {"type": "object"}
        elif fmt["type"] == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
                raise ApiError(400, "response_format.json_schema.schema must be a JSON object",
                               param="response_format.json_schema.schema")
            schema = spec["schema"]
            strict = spec.get("strict") is True
    return {"question": question, "schema": schema, "adapter": model, "strict": strict,
            "max_new_tokens": min(limit or max_new_tokens, max_new_tokens),
            "temperature": _number(payload, "temperature", 0.0, 2.0, 0.0),
            "top_p": _number(payload, "top_p", 0.0, 1.0, 1.0), "seed": abs(seed) if seed is not None else None,
            "stream": bool(stream), "include_usage": bool((options or {}).get("include_usage"))}


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def usage(ans: Any) -> dict[str, int]:
    return {"prompt_tokens": ans.prompt_tokens, "completion_tokens": ans.completion_tokens,
            "total_tokens": ans.prompt_tokens + ans.completion_tokens}


def meta(ans: Any) -> dict[str, Any]:
    """The top-level `schemagen` object: which path served the answer, and whether it validates."""
    return {"adapter": ans.adapter, "path": ans.path, "valid": ans.valid, "engine": ans.engine,
            "errors": ans.errors, "schema_sha256": ans.schema_sha256, "seconds": round(ans.seconds, 4)}


def completion(ans: Any, model: str, cid: str | None = None) -> dict[str, Any]:
    """A whole `chat.completion` body."""
    return {
        "id": cid or new_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": ans.finish_reason,
                     "message": {"role": "assistant", "content": ans.json_text, "refusal": None}}],
        "usage": usage(ans), "schemagen": meta(ans),
    }


def chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """One `chat.completion.chunk`, as OpenAI streams them."""
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}


def sse(data: dict[str, Any] | str) -> bytes:
    """One server-sent event: `data: ...` and a blank line."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()
