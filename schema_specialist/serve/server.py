"""An OpenAI-compatible server over a `Router`: `POST /v1/chat/completions`, `GET /v1/models`, `GET /health`.

`response_format: {"type": "json_schema", "json_schema": {"name", "schema", "strict"}}` routes to the
adapter made for that schema (canonical hash); `model` may name an adapter directly. Every answer is
validated before it is returned; the top-level `schemagen` object says which path served it.
Requests are checked and routed in a worker thread, then decoded by the router's batcher together
with every other request in flight; `stream: true` sends OpenAI's `chat.completion.chunk` events
(a strict adapter answer is sent once validated, since a retry would replace it). A client that
goes away leaves the batch; a full queue answers 429 with Retry-After; bad requests get a 4xx
with an OpenAI-style error body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..errors import SchemagenError
from .protocol import ApiError, chunk, completion, meta, new_id, parse_chat_request, read_body, sse, usage
from .thread import AppThread, bind

__all__ = ["ApiError", "ServerThread", "create_app", "error_handlers", "parse_chat_request", "serve"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
KEEPALIVE_S = 0.5  # a stream with nothing to send writes an SSE comment this often (disconnects show)


def job_error(exc: BaseException) -> ApiError:
    """The HTTP error for a request that ended without an answer."""
    from .jobs import CancelledError, QueueFullError, RequestTimeoutError, ServerClosedError

    if isinstance(exc, QueueFullError):
        return ApiError(429, f"server busy: {exc}; retry later", type="rate_limit_error", code="queue_full",
                        retry_after=exc.retry_after)
    if isinstance(exc, RequestTimeoutError):
        return ApiError(503, f"request timed out: {exc}", type="server_error", code="timeout", retry_after=5)
    if isinstance(exc, ServerClosedError):
        return ApiError(503, str(exc), type="server_error", code="unavailable", retry_after=5)
    if isinstance(exc, CancelledError):
        return ApiError(499, str(exc), code="cancelled")
    return ApiError(500, "internal server error", type="server_error")


def plan_error(exc: SchemagenError) -> ApiError:
    """The 4xx for a request the router refused while planning it."""
    from .router import PromptTooLongError, RouteError, UnknownAdapterError

    if isinstance(exc, UnknownAdapterError):
        return ApiError(404, str(exc), param="model", code="model_not_found")
    if isinstance(exc, RouteError):
        return ApiError(400, str(exc), param="model", code="invalid_value")
    if isinstance(exc, PromptTooLongError):
        return ApiError(400, str(exc), param="messages", code="context_length_exceeded")
    # the schema: invalid, non-local $ref, no engine compiles it
    return ApiError(400, str(exc), param="response_format", code="invalid_value")


def create_app(router: Any, *, max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """The Starlette app serving `router` (a `schema_specialist.router.Router`)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    from .jobs import JobError
    from .router import BASE_ID

    started = int(time.time())

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
        stats = router.batcher.stats()
        ok = bool(stats["alive"])
        return JSONResponse({"status": "ok" if ok else "unavailable", "adapters": len(router.names),
                             "dtype": router.dtype, **stats}, status_code=200 if ok else 503)

    async def wait_answer(request: Request, job: Any, events: asyncio.Queue[tuple[str, Any]]) -> Any:
        """The job's answer; the job is cancelled if the client disconnects first."""
        try:
            while True:
                try:
                    kind, payload = await asyncio.wait_for(events.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        router.cancel(job)
                        raise ApiError(499, "client closed the request", code="cancelled") from None
                    continue
                if kind == "answer":
                    return payload
                if kind == "error":
                    raise job_error(payload)
        finally:
            if not job.done:
                router.cancel(job)

    async def stream(job: Any, events: asyncio.Queue[tuple[str, Any]], model: str,
                     include_usage: bool) -> AsyncIterator[bytes]:
        cid, created = new_id(), int(time.time())
        try:
            yield sse(chunk(cid, model, created, {"role": "assistant", "content": ""}))
            while True:
                try:
                    kind, payload = await asyncio.wait_for(events.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"  # a write: a client that left shows up as a failed send
                    continue
                if kind == "delta":
                    yield sse(chunk(cid, model, created, {"content": payload}))
                elif kind == "answer":
                    yield sse(chunk(cid, model, created, {}, payload.finish_reason, schemagen=meta(payload)))
                    if include_usage:
                        yield sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                                   "system_fingerprint": None, "choices": [], "usage": usage(payload)})
                    yield sse("[DONE]")
                    return
                elif kind == "error":
                    yield sse(job_error(payload).body())
                    return
        finally:  # the client went away (the stream was cancelled or closed) or the answer was sent
            if not job.done:
                router.cancel(job)

    async def chat(request: Request) -> Any:
        body = await read_body(request, max_body_bytes)
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ApiError(400, f"body is not valid JSON: {str(exc)[:120]}", code="invalid_json") from None
        args = parse_chat_request(payload, router.max_new_tokens)
        streaming, include_usage = args.pop("stream"), args.pop("include_usage")
        try:
            plan = await run_in_threadpool(lambda: router.plan(**args))
        except SchemagenError as exc:
            raise plan_error(exc) from None
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def listener(kind: str, payload: Any) -> None:  # called from the batcher thread
            loop.call_soon_threadsafe(events.put_nowait, (kind, payload))

        try:
            job = router.submit(plan, stream=streaming, listener=listener)
        except JobError as exc:
            raise job_error(exc) from None
        model = plan.adapter or BASE_ID
        if streaming:
            return StreamingResponse(stream(job, events, model, include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        ans = await wait_answer(request, job, events)
        return JSONResponse(completion(ans, ans.adapter or BASE_ID))

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
        response = reply(exc.body(), exc.status)
        response.headers.update(exc.headers())  # Retry-After on 429 and 503
        return response

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

    try:
        uvicorn.run(create_app(router, max_body_bytes=max_body_bytes), host=host, port=port, log_level=log_level,
                    timeout_graceful_shutdown=5)
    finally:
        router.close()


class ServerThread(AppThread):
    """A real uvicorn server in a background thread (tests, benchmarks): `with ServerThread(router) as url:`."""

    def __init__(self, router: Any, host: str = "127.0.0.1", port: int = 0, *,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(create_app(router, max_body_bytes=max_body_bytes), bind(host, port), name="schemagen-serve")
