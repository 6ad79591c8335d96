"""The review server: the page (static/, no CDN) and a small JSON API over a `ReviewSession`.

    GET  /                      the page            GET  /api/state         pairs, counts, filters, figures
    GET  /api/stats             histograms          GET  /api/changes?since=SEQ   decisions made elsewhere
    GET  /api/rejected          rejected.jsonl      GET  /api/files/NAME    a dataset file (a fixed list)
    POST /api/validate {answer}                     POST /api/decisions {pair, action, base, reason?, answer?}

Errors are JSON (`{"error": {"message", "type", "param", "code"}}`) with a 4xx status: 400 bad request,
403 a foreign Host/Origin or a path outside the dataset, 404, 409 a stale write (the body carries the
pair's current state), 413 too large, 415 not JSON, 422 an edit that does not validate (nothing saved).
On loopback, requests must name a loopback Host (no DNS rebinding) and writes a loopback Origin.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..serve.protocol import read_body
from ..serve.server import ApiError, error_handlers
from ..serve.thread import AppThread, bind
from .decisions import BadDecision, Conflict, inside
from .session import ReviewSession

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
STATIC = Path(__file__).parent / "static"
MEDIA = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
DATASET_FILES = ("train.jsonl", "val.jsonl", "test.jsonl", "rejected.jsonl", "decisions.jsonl", "manifest.json",
                 "card.md", "schema.json")
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"}


class ReviewError(ApiError):
    """An API error whose body carries more than the message (the current pair, validation errors)."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 **extra: Any) -> None:
        super().__init__(status, message, code=code, param=param)
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {**super().body(), **self.extra}


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    return host in LOOPBACK_NAMES or host.startswith("127.")


def _hostname(netloc: str) -> str:
    return (urlsplit(f"//{netloc}").hostname or "").lower()


def create_app(session: ReviewSession, *, max_body_bytes: int = MAX_BODY_BYTES, loopback_only: bool = True) -> Any:
    """The Starlette app reviewing `session`'s dataset."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Route

    static = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in MEDIA}

    def reply(obj: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(obj, status_code=status, headers=HEADERS)

    def guard(request: Request, write: bool) -> None:
        """Refuse foreign Host headers (loopback), cross-origin writes and non-JSON writes."""
        host = _hostname(request.headers.get("host", ""))
        if loopback_only and not is_loopback(host):
            raise ApiError(403, "this server only answers requests for a loopback host", code="forbidden_host")
        if not write:
            return
        origin = request.headers.get("origin")  # browsers send it with every POST; scripts need not
        if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
            raise ApiError(403, "cross-origin writes are refused", code="forbidden_origin")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise ApiError(415, "the body must be application/json", code="unsupported_media_type")

    async def read_json(request: Request) -> dict[str, Any]:
        guard(request, write=True)
        try:
            payload = json.loads(await read_body(request, max_body_bytes))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ApiError(400, f"body is not valid JSON: {str(exc)[:120]}", code="invalid_json") from None
        if not isinstance(payload, dict):
            raise ApiError(400, "the body must be a JSON object", code="invalid_json")
        return payload

    async def page(request: Request) -> Response:
        guard(request, write=False)
        return FileResponse(static["index.html"], media_type=MEDIA[".html"], headers=HEADERS)

    async def static_file(request: Request) -> Response:
        guard(request, write=False)
        f = static.get(request.path_params["name"])
        if f is None:
            raise ApiError(404, "no such file", code="not_found")
        return FileResponse(f, media_type=MEDIA[f.suffix], headers=HEADERS)

    async def state(request: Request) -> JSONResponse:
        guard(request, write=False)
        return reply(await run_in_threadpool(session.state))

    async def stats(request: Request) -> JSONResponse:
        guard(request, write=False)
        return reply(await run_in_threadpool(session.stats))

    async def changes(request: Request) -> JSONResponse:
        guard(request, write=False)
        since = request.query_params.get("since", "0")
        if not since.isdigit():
            raise ApiError(400, "since must be a non-negative integer", param="since")
        return reply(await run_in_threadpool(session.changes, int(since)))

    async def rejected(request: Request) -> JSONResponse:
        guard(request, write=False)
        return reply(session.rejected_view())

    async def dataset_file(request: Request) -> Response:
        guard(request, write=False)
        name = request.path_params["name"]
        if name not in DATASET_FILES:
            raise ApiError(404, f"not a dataset file (one of {', '.join(DATASET_FILES)})", code="not_found")
        try:
            path = inside(session.directory, name)
        except Exception:
            raise ApiError(403, f"{name} resolves outside the dataset directory; refused",
                           code="outside_dataset") from None
        if not path.is_file():
            raise ApiError(404, f"the dataset has no {name}", code="not_found")
        return FileResponse(path, media_type="text/plain; charset=utf-8", headers=HEADERS)

    async def validate(request: Request) -> JSONResponse:
        payload = await read_json(request)
        return reply(await run_in_threadpool(session.validate, payload.get("answer")))

    async def decide(request: Request) -> JSONResponse:
        payload = await read_json(request)
        pair, action, base = payload.get("pair"), payload.get("action"), payload.get("base")
        if not isinstance(pair, str) or not pair:
            raise ApiError(400, "'pair' is required: a pair id", param="pair")
        if not isinstance(action, str):
            raise ApiError(400, "'action' is required: approve, reject, edit or reset", param="action")
        if not isinstance(base, int) or isinstance(base, bool) or base < 0:
            raise ApiError(400, "'base' is required: the pair's version the decision was made on", param="base")
        try:
            result = await run_in_threadpool(lambda: session.decide(
                pair, action, base, answer=payload.get("answer"), reason=payload.get("reason"),
                who=payload.get("who")))
        except KeyError:
            raise ApiError(404, f"no pair {pair[:80]!r}", param="pair", code="not_found") from None
        except Conflict as exc:
            raise ReviewError(409, f"{exc}; nothing was saved: review it again", code="conflict",
                              pair=session.view(pair)) from None
        except BadDecision as exc:
            status = 422 if exc.errors else 400
            raise ReviewError(status, str(exc), code="invalid_answer" if exc.errors else "invalid_value",
                              errors=exc.errors) from None
        return reply(result)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static_file, methods=["GET"]),
        Route("/api/state", state, methods=["GET"]),
        Route("/api/stats", stats, methods=["GET"]),
        Route("/api/changes", changes, methods=["GET"]),
        Route("/api/rejected", rejected, methods=["GET"]),
        Route("/api/files/{name:path}", dataset_file, methods=["GET"]),
        Route("/api/validate", validate, methods=["POST"]),
        Route("/api/decisions", decide, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers=error_handlers(reply, crash_detail=True, logger=log))


class ReviewServer(AppThread):
    """A real uvicorn server for a session in a background thread: `with ReviewServer(session) as url:`."""

    def __init__(self, session: ReviewSession, host: str = "127.0.0.1", port: int = 0, *,
                 max_body_bytes: int = MAX_BODY_BYTES, loopback_only: bool = True) -> None:
        super().__init__(create_app(session, max_body_bytes=max_body_bytes, loopback_only=loopback_only),
                         bind(host, port), name="schemagen-review")


def serve(session: ReviewSession, sock: socket.socket, *, max_body_bytes: int = MAX_BODY_BYTES,
          loopback_only: bool = True) -> None:
    """Run on a socket from `bind` in the foreground until interrupted."""
    import uvicorn

    config = uvicorn.Config(create_app(session, max_body_bytes=max_body_bytes, loopback_only=loopback_only),
                            log_level="warning", lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
