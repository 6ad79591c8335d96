"""An OpenAI-compatible server over a `Router`: `POST /v1/chat/completions`, `GET /v1/models`.

`response_format: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` routes to the
adapter made for that schema (canonical hash); `model` may name an adapter directly. Every answer is
validated before it is returned; the top-level `schemagen` object says which path served it. Bad
requests get a 4xx with an OpenAI-style error body; inference runs in a worker thread, one at a time.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import SchemagenError
from .thread import AppThread, bind

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
MAX_MESSAGES = 256
ROLES = {"system", "developer", "user", "assistant", "tool"}


class ApiError(Exception):
    """An error answered as `{"error": {"message", "type", "param", "code"}}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


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


def parse_chat_request(payload: Any, max_new_tokens: int) -> dict[str, Any]:
    """Check a chat-completions body; return the Router.answer arguments it asks for."""
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
    if payload.get("stream"):
        raise ApiError(400, "streaming is not supported", param="stream", code="unsupported_parameter")
    n = payload.get("n", 1)
    if n not in (1, None):
        raise ApiError(400, "only n=1 is supported", param="n", code="unsupported_parameter")
    limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ApiError(400, "max_tokens must be a positive integer", param="max_tokens")
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
            "max_new_tokens": min(limit or max_new_tokens, max_new_tokens)}


def create_app(router: Any, *, max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """The Starlette app serving `router` (a `schema_specialist.router.Router`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from .router import BASE_ID, PromptTooLongError, RouteError, UnknownAdapterError

    started = int(time.time())

    def error(exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, "bad Content-Length header")
            if int(declared) > max_body_bytes:
                raise ApiError(413, f"request body over {max_body_bytes} bytes", code="request_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise ApiError(413, f"request body over {max_body_bytes} bytes", code="request_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def model_card(name: str) -> dict[str, Any]:
        if name == BASE_ID:
            return {"id": BASE_ID, "object": "model", "created": started, "owned_by": "schemagen",
                    "schemagen": {"base_model": router.base_spec, "adapter": None}}
        info = router.adapters[name]
        return {"id": name, "object": "model", "created": int(info.path.stat().st_mtime), "owned_by": "schemagen",
                "schemagen": {"adapter": name, "schema_title": info.schema_title,
                              "schema_sha256": info.schema_sha256, "base_model": router.base_spec,
                              "validity": info.validity}}

    async def list_models(request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [model_card(n) for n in [*router.names, BASE_ID]]})

    async def get_model(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        if name != BASE_ID and name not in router.adapters:
            raise ApiError(404, f"no model named {name[:80]!r}", param="model", code="model_not_found")
        return JSONResponse(model_card(name))

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "adapters": len(router.names)})

    async def chat(request: Request) -> JSONResponse:
        body = await read_body(request)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ApiError(400, f"body is not valid JSON: {str(exc)[:120]}", code="invalid_json") from None
        args = parse_chat_request(payload, router.max_new_tokens)
        try:
            ans = await run_in_threadpool(lambda: router.answer(**args))
        except UnknownAdapterError as exc:
            raise ApiError(404, str(exc), param="model", code="model_not_found") from None
        except RouteError as exc:
            raise ApiError(400, str(exc), param="model", code="invalid_value") from None
        except PromptTooLongError as exc:
            raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
        except SchemagenError as exc:  # the schema: invalid, non-local $ref, no engine compiles it
            raise ApiError(400, str(exc), param="response_format", code="invalid_value") from None
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": ans.adapter or BASE_ID,
            "system_fingerprint": None,
            "choices": [{"index": 0, "logprobs": None, "finish_reason": ans.finish_reason,
                         "message": {"role": "assistant", "content": ans.json_text, "refusal": None}}],
            "usage": {"prompt_tokens": ans.prompt_tokens, "completion_tokens": ans.completion_tokens,
                      "total_tokens": ans.prompt_tokens + ans.completion_tokens},
            "schemagen": {"adapter": ans.adapter, "path": ans.path, "valid": ans.valid, "engine": ans.engine,
                          "errors": ans.errors, "schema_sha256": ans.schema_sha256,
                          "seconds": round(ans.seconds, 4)},
        })

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{name:path}", get_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers=error_handlers(
        lambda body, status: JSONResponse(body, status_code=status)))


def error_handlers(reply: Callable[[dict[str, Any], int], Any], *, crash_detail: bool = False,
                   logger: logging.Logger = log) -> dict[Any, Callable[..., Any]]:
    """Starlette exception handlers that answer every error as OpenAI-style JSON through `reply(body,
    status)`: an `ApiError` as it is, an HTTP error (404, 405) with its status, anything else as a
    logged 500 (with the exception's first 200 characters when `crash_detail`)."""
    from starlette.exceptions import HTTPException

    async def on_api_error(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, ApiError)
        return reply(exc.body(), exc.status)

    async def on_http_error(request: Any, exc: Exception) -> Any:
        assert isinstance(exc, HTTPException)
        e = ApiError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None)
        return reply(e.body(), e.status)

    async def on_crash(request: Any, exc: Exception) -> Any:
        logger.exception("internal error on %s", request.url.path)
        message = f"internal server error: {str(exc)[:200]}" if crash_detail else "internal server error"
        return reply(ApiError(500, message, type="server_error").body(), 500)

    return {ApiError: on_api_error, HTTPException: on_http_error, Exception: on_crash}


def serve(router: Any, host: str = "127.0.0.1", port: int = 8000, *, max_body_bytes: int = MAX_BODY_BYTES,
          log_level: str = "info") -> None:
    """Run the server in the foreground until interrupted."""
    import uvicorn

    uvicorn.run(create_app(router, max_body_bytes=max_body_bytes), host=host, port=port, log_level=log_level)


class ServerThread(AppThread):
    """A real uvicorn server in a background thread (tests, benchmarks): `with ServerThread(router) as url:`."""

    def __init__(self, router: Any, host: str = "127.0.0.1", port: int = 0, *,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(create_app(router, max_body_bytes=max_body_bytes), bind(host, port), name="schemagen-serve")
