"""`schemagen serve`: a real uvicorn server on loopback, driven by the official `openai` client and httpx."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from test_router import COLOR, FLAG, OTHER, build_registry

from schema_specialist.schema import schema_from_dict, schema_hash


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path) -> Iterator[tuple[str, Any]]:
    from schema_specialist.serve.router import Router
    from schema_specialist.serve.server import ServerThread

    root = build_registry(tmp_path_factory, tiny_mistral_dir, "srv")
    router = Router(root, max_new_tokens=24)
    with ServerThread(router, "127.0.0.1", 0, max_body_bytes=64 * 1024) as url:
        yield url, router


@pytest.fixture
def client(served: tuple[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(base_url=served[0] + "/v1", api_key="x", max_retries=0, timeout=120)


def _fmt(schema: dict[str, Any], strict: bool, name: str = "s") -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


def _meta(obj: Any) -> dict[str, Any]:
    """The `schemagen` object of a response (an extra field for the openai client)."""
    extra = obj.model_extra or {}
    return dict(extra["schemagen"])


def _ask(client: openai.OpenAI, schema: dict[str, Any] | None, *, strict: bool = False, model: str = "auto",
         question: str = "Is it fine? yes. Colour: blue.") -> Any:
    kwargs: dict[str, Any] = {"response_format": _fmt(schema, strict)} if schema is not None else {}
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                          max_tokens=24, **kwargs)


def test_models_lists_both_adapters(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list().data}
    assert {"flag", "color", "base"} <= set(models)
    assert _meta(models["flag"])["schema_sha256"] == schema_hash(FLAG)
    assert client.models.retrieve("color").id == "color"


@pytest.mark.parametrize("schema,name", [(FLAG, "flag"), (COLOR, "color")])
def test_each_schema_reaches_its_adapter(client: openai.OpenAI, schema: dict[str, Any], name: str) -> None:
    resp = _ask(client, schema)
    meta = _meta(resp)
    assert resp.model == name
    assert meta["adapter"] == name and meta["path"] == "adapter"
    assert meta["schema_sha256"] == schema_hash(schema)
    assert isinstance(meta["valid"], bool)
    assert resp.usage is not None and resp.usage.prompt_tokens > 0 and 0 < resp.usage.completion_tokens <= 24
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


@pytest.mark.parametrize("schema,name", [(FLAG, "flag"), (COLOR, "color")])
def test_strict_answers_are_valid(client: openai.OpenAI, schema: dict[str, Any], name: str) -> None:
    resp = _ask(client, schema, strict=True)
    meta = _meta(resp)
    assert meta["adapter"] == name
    assert meta["path"] in ("adapter", "adapter+constrained-retry")
    assert meta["valid"] is True
    assert schema_from_dict(schema).errors(json.loads(resp.choices[0].message.content)) == []


def test_model_names_an_adapter_directly(client: openai.OpenAI) -> None:
    resp = _ask(client, None, model="color")
    assert resp.model == "color" and _meta(resp)["adapter"] == "color"


def test_unknown_schema_falls_back_to_constrained(client: openai.OpenAI) -> None:
    resp = _ask(client, OTHER, question="n is 4, yes")
    meta = _meta(resp)
    assert resp.model == "base"
    assert meta["adapter"] is None and meta["path"] == "constrained" and meta["engine"]
    value = json.loads(resp.choices[0].message.content)
    assert schema_from_dict(OTHER).errors(value) == []
    assert meta["valid"] is True


def test_concurrent_clients_share_the_batcher(client: openai.OpenAI) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []

    def one(schema: dict[str, Any]) -> None:
        try:
            results.append(_ask(client, schema, strict=True))
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(s,)) for s in (FLAG, COLOR, OTHER, FLAG, COLOR, OTHER)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and len(results) == 6
    assert all(_meta(r)["valid"] is True for r in results)
    assert sorted(r.model for r in results) == ["base", "base", "color", "color", "flag", "flag"]


def test_event_loop_serves_while_inference_is_busy(served: tuple[str, Any], client: openai.OpenAI) -> None:
    url, router = served
    done: list[Any] = []
    with router.busy():  # no decoding step runs: the chat request waits in the batcher
        t = threading.Thread(target=lambda: done.append(_ask(client, FLAG)))
        t.start()
        r = httpx.get(url + "/v1/models", timeout=30)
        assert r.status_code == 200 and not done
    t.join(timeout=120)
    assert done and done[0].model == "flag"


def _error_of(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


MSG = [{"role": "user", "content": "hi"}]


def _deep(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


BAD_REQUESTS: list[tuple[str, Any, int]] = [
    ("malformed json", b'{"messages": [', 400),
    ("not an object", b"[1, 2]", 400),
    ("not utf-8", b"\xff\xfe\x00", 400),
    ("empty body", b"", 400),
    ("missing messages", {"model": "flag"}, 400),
    ("empty messages", {"messages": []}, 400),
    ("messages not a list", {"messages": "hi"}, 400),
    ("bad role", {"messages": [{"role": "wizard", "content": "x"}]}, 400),
    ("no user message", {"messages": [{"role": "system", "content": "x"}]}, 400),
    ("bad content", {"messages": [{"role": "user", "content": 5}]}, 400),
    ("image part", {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, 400),
    ("unknown model", {"model": "nope", "messages": MSG}, 404),
    ("dotdot model", {"model": "../flag", "messages": MSG}, 400),
    ("slash model", {"model": "a/b", "messages": MSG}, 400),
    ("backslash model", {"model": "a\\b", "messages": MSG}, 400),
    ("model not a string", {"model": 3, "messages": MSG}, 400),
    ("invalid schema", {"messages": MSG, "response_format": _fmt({"type": "nonsense"}, True)}, 400),
    ("schema not object", {"messages": MSG, "response_format": _fmt([1], True)}, 400),  # type: ignore[arg-type]
    ("boolean schema", {"messages": MSG, "response_format": {"type": "json_schema",
                                                             "json_schema": {"name": "b", "schema": True}}}, 400),
    ("file ref", {"messages": MSG, "response_format": _fmt({"$ref": "/etc/passwd"}, True)}, 400),
    ("remote ref", {"messages": MSG, "response_format": _fmt({"$ref": "https://x.test/s.json"}, True)}, 400),
    ("bad format type", {"messages": MSG, "response_format": {"type": "yaml"}}, 400),
    ("schema for another adapter", {"model": "flag", "messages": MSG, "response_format": _fmt(COLOR, True)}, 400),
    ("stream not a boolean", {"messages": MSG, "stream": "yes"}, 400),
    ("stream_options without stream", {"messages": MSG, "stream_options": {"include_usage": True}}, 400),
    ("temperature out of range", {"messages": MSG, "temperature": 9}, 400),
    ("top_p not a number", {"messages": MSG, "top_p": "high"}, 400),
    ("seed not an integer", {"messages": MSG, "seed": 1.5}, 400),
    ("n=2", {"messages": MSG, "n": 2}, 400),
    ("bad max_tokens", {"messages": MSG, "max_tokens": -1}, 400),
    ("too long prompt", {"messages": [{"role": "user", "content": "word " * 12000}]}, 400),
    ("deeply nested body", b'{"messages":' + b"[" * 30000 + b"]" * 30000 + b"}", 400),
    ("deeply nested schema", {"messages": MSG, "response_format": _fmt(_deep(450), True)}, 400),
    ("over size limit", {"messages": [{"role": "user", "content": "x" * (70 * 1024)}]}, 413),
]


@pytest.mark.parametrize("name,body,status", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_requests_get_4xx(served: tuple[str, Any], name: str, body: Any, status: int) -> None:
    url = served[0]
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(url + "/v1/chat/completions", content=content,
                   headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == status, r.text
    _error_of(r)


def test_chunked_body_over_limit_gets_413(served: tuple[str, Any]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}]}'

    r = httpx.post(served[0] + "/v1/chat/completions", content=chunks(), timeout=60)
    assert r.status_code == 413
    _error_of(r)


def test_unknown_route_and_method(served: tuple[str, Any]) -> None:
    assert _error_of(r := httpx.get(served[0] + "/v1/nothing")) and r.status_code == 404
    assert _error_of(r := httpx.get(served[0] + "/v1/chat/completions")) and r.status_code == 405
    assert _error_of(r := httpx.get(served[0] + "/v1/models/nope")) and r.status_code == 404


def test_openai_client_sees_errors_and_server_keeps_serving(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert nf.value.status_code == 404
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="../etc", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        _ask(client, {"type": "object", "properties": {"a": {"type": "wrong"}}}, strict=True)
    # still serving, and still routing correctly
    resp = _ask(client, FLAG)
    assert resp.model == "flag"


def test_serve_cli_subprocess(served: tuple[str, Any]) -> None:
    """`schemagen serve` itself: starts, lists the registry's adapters, answers, stops on SIGTERM."""
    import os
    import socket
    import subprocess
    import sys
    import time

    router = served[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "schema_specialist", "serve", "--adapters", str(router.root), "--port", str(port),
         "--max-new-tokens", "24", "--threads", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if proc.poll() is not None:
                break
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        ids = {m["id"] for m in httpx.get(url + "/v1/models").json()["data"]}
        assert ids == {"flag", "color", "base"}
        r = httpx.post(url + "/v1/chat/completions", timeout=60, json={
            "model": "auto", "messages": [{"role": "user", "content": "red"}], "response_format": _fmt(COLOR, True)})
        assert r.status_code == 200 and r.json()["schemagen"]["adapter"] == "color"
        assert r.json()["schemagen"]["valid"] is True
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- streaming ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema,strict,model", [(FLAG, False, "auto"), (COLOR, True, "auto"), (OTHER, False, "auto"),
                                                 (None, False, "base")])
def test_streaming_with_the_openai_client_matches_the_whole_answer(
        client: openai.OpenAI, schema: dict[str, Any] | None, strict: bool, model: str) -> None:
    kwargs: dict[str, Any] = {"response_format": _fmt(schema, strict)} if schema is not None else {}
    question = "n is 4, yes" if schema is OTHER else "Is it fine? yes. Colour: blue."
    whole = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                           max_tokens=24, **kwargs)
    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                            max_tokens=24, stream=True, stream_options={"include_usage": True},
                                            **kwargs)
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert _meta(finals[0])["path"] == _meta(whole)["path"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    if strict:
        assert _meta(finals[0])["valid"] is True and schema is not None
        assert schema_from_dict(schema).errors(json.loads(text)) == []


def test_a_live_stream_sends_many_deltas_and_the_sse_framing(served: tuple[str, Any]) -> None:
    lines: list[str] = []
    with httpx.stream("POST", served[0] + "/v1/chat/completions", timeout=60, json={
            "model": "base", "stream": True, "max_tokens": 16,
            "messages": [{"role": "user", "content": "Tell me a story."}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    events = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    deltas = [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-1]]
    assert sum(1 for d in deltas if d) > 3  # token by token, not one lump


def test_bad_streaming_requests_get_4xx_before_any_event(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}], stream=True,
                                       response_format=_fmt({"type": "nonsense"}, True))  # type: ignore[arg-type]


# -- load: cancellation, a bounded queue, timeouts, health --------------------------------------------


def _wait_until(check: Any, seconds: float = 30) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_goes_away_leaves_the_queue(served: tuple[str, Any], stream: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, router = served
    batcher = router.batcher
    cancelled = batcher.cancelled
    hung_up = threading.Event()  # the server has seen the hang-up: only then may the model decode again
    cancel = router.cancel

    def cancel_seen(job: Any) -> None:
        cancel(job)
        hung_up.set()

    monkeypatch.setattr(router, "cancel", cancel_seen)
    body = {"model": "base", "stream": stream, "max_tokens": 24,
            "messages": [{"role": "user", "content": "Tell me a story."}]}
    with router.busy():
        if stream:  # read the first event, then hang up
            with httpx.stream("POST", url + "/v1/chat/completions", timeout=30, json=body) as r:
                assert next(r.iter_lines()).startswith("data: ")
        else:  # the client gives up waiting
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url + "/v1/chat/completions", timeout=1.0, json=body)
        # queued, not decoded (or already settled: the hang-up may reach the batcher before this line)
        stats = batcher.stats()
        assert stats["waiting"] + stats["running"] == 1 or batcher.cancelled == cancelled + 1
        _wait_until(hung_up.is_set)  # "waiting == 0" is no sign: admission moves the job into the batch
    _wait_until(lambda: batcher.cancelled == cancelled + 1)
    assert batcher.stats()["running"] == 0


def test_health_reports_the_batcher(served: tuple[str, Any]) -> None:
    r = httpx.get(served[0] + "/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok" and body["adapters"] == 2
    assert {"waiting", "running", "max_batch", "max_queue", "served", "cancelled", "dtype"} <= set(body)


@pytest.fixture(scope="module")
def small_server(served: tuple[str, Any]) -> Any:
    """A second server with a queue of 2 and a 1 s request timeout, on the same registry."""
    from schema_specialist.serve.router import Router
    from schema_specialist.serve.server import ServerThread

    router = Router(served[1].root, max_new_tokens=8, max_batch=1, max_queue=2, request_timeout=1.0)
    with ServerThread(router) as url:
        yield url, router
    router.close()


def _post(url: str, out: list[Any]) -> None:
    out.append(httpx.post(url + "/v1/chat/completions", timeout=60, json={
        "model": "color", "max_tokens": 4, "messages": [{"role": "user", "content": "red"}]}))


def test_a_full_queue_answers_429_with_retry_after(small_server: tuple[str, Any]) -> None:
    url, router = small_server
    results: list[Any] = []
    with router.busy():
        threads = [threading.Thread(target=_post, args=(url, results)) for _ in range(2)]
        for t in threads:
            t.start()
        _wait_until(lambda: router.batcher.stats()["waiting"] + router.batcher.stats()["running"] == 2)
        r = httpx.post(url + "/v1/chat/completions", timeout=60, json={
            "model": "color", "messages": [{"role": "user", "content": "red"}]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert _error_of(r)["code"] == "queue_full"
    for t in threads:
        t.join(60)
    assert [x.status_code for x in results] == [200, 200]


def test_a_request_past_its_timeout_gets_503_with_retry_after(small_server: tuple[str, Any]) -> None:
    import time

    url, router = small_server
    with router.busy():
        results: list[Any] = []
        t = threading.Thread(target=_post, args=(url, results))
        t.start()
        time.sleep(1.5)
    t.join(60)
    r = results[0]
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert _error_of(r)["code"] == "timeout"
    assert httpx.post(url + "/v1/chat/completions", timeout=60, json={
        "model": "color", "max_tokens": 4, "messages": [{"role": "user", "content": "red"}]}).status_code == 200


def test_bad_requests_under_load_stay_4xx_and_good_ones_are_answered(served: tuple[str, Any]) -> None:
    """The bad corpus (34 requests) sent while 16 good clients run: 0 5xx, every good request answered,
    valid (strict) and served by its schema's adapter (the unknown schema by the constrained base)."""
    url = served[0]
    good: list[tuple[dict[str, Any], Any]] = []
    bad: dict[str, int] = {}
    owner = {id(FLAG): "flag", id(COLOR): "color", id(OTHER): None}

    def good_client(i: int) -> None:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=180)
        for j in range(2):
            schema = (FLAG, COLOR, OTHER)[(i + j) % 3]
            good.append((schema, _ask(c, schema, strict=True)))

    def bad_client() -> None:
        for name, body, _status in BAD_REQUESTS:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            bad[name] = httpx.post(url + "/v1/chat/completions", content=content, timeout=60,
                                   headers={"content-type": "application/json"}).status_code

    threads = [threading.Thread(target=good_client, args=(i,)) for i in range(16)] + [threading.Thread(target=bad_client)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(BAD_REQUESTS) >= 30 and not [s for s in bad.values() if s >= 500]
    assert bad == {name: status for name, _body, status in BAD_REQUESTS}
    assert len(good) == 32 and all(_meta(r)["valid"] is True for _s, r in good)
    assert [_meta(r)["adapter"] for s, r in good] == [owner[id(s)] for s, _r in good]


# -- generate against serve: the teacher loop --------------------------------------------------------


def test_generate_with_serve_as_its_openai_teacher(served: tuple[str, Any], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from schema_specialist.cli import main

    schema = tmp_path / "reading.json"
    schema.write_text(json.dumps({"title": "reading", "type": "object", "properties": {
        "sensor": {"type": "string", "maxLength": 12}, "celsius": {"type": "integer", "minimum": -20, "maximum": 60},
        "ok": {"type": "boolean"}}, "required": ["sensor", "celsius", "ok"], "additionalProperties": False}))
    out = tmp_path / "ds"
    result = CliRunner().invoke(main, ["generate", str(schema), "-n", "4", "-o", str(out), "--quiet",
                                       "--max-new-tokens", "24", "--max-candidates", "40",
                                       "--teacher", f"openai:{served[0]}/v1#base"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["teacher"]["kind"] == "openai" and manifest["counts"]["accepted"] >= 1
    assert manifest["tokens"]["completion"] > 0 and manifest["tokens"]["prompt"] > 0
    records = [json.loads(line) for f in ("train", "val", "test") for line in (out / f"{f}.jsonl").open()]
    for rec in records:
        assert schema_from_dict(json.loads(schema.read_text())).errors(
            json.loads(rec["messages"][-1]["content"])) == []
