"""The router's request batcher: concurrent requests share a batch and answer as they would alone."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_router import COLOR, FLAG, OTHER, build_registry

from schema_specialist.serve.jobs import CancelledError, QueueFullError, RequestTimeoutError

# Every path: two adapters (free and strict, whose random adapters fail and retry under the grammar),
# an unknown schema (base + grammar), a named adapter, and the base model with no schema.
REQUESTS: list[dict[str, Any]] = [
    {"question": "Is it fine? yes.", "schema": FLAG, "strict": False},
    {"question": "Colour: red.", "schema": COLOR, "strict": False},
    {"question": "Is it fine? no.", "schema": FLAG, "strict": True},
    {"question": "Colour: blue, please.", "schema": COLOR, "strict": True},
    {"question": "n is 3 and yes", "schema": OTHER},
    {"question": "n is 7, no", "schema": OTHER, "strict": False},
    {"question": "Describe the weather.", "adapter": "color", "strict": False},
    {"question": "Describe the weather."},
    {"question": "Tell me a story about a fox.", "max_new_tokens": 7},
    {"question": "Colour: green.", "schema": COLOR, "strict": False, "temperature": 1.0, "seed": 5},
]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path) -> Path:
    root = build_registry(tmp_path_factory, tiny_mistral_dir, "batch")
    return root


@pytest.fixture(scope="module")
def router(registry: Path) -> Any:
    from schema_specialist.serve.router import Router

    r = Router(registry, max_new_tokens=24, dtype="float32", max_batch=16, gather_ms=20)
    yield r
    r.close()


def _same(a: Any, b: Any) -> None:
    assert (a.json_text, a.path, a.adapter, a.valid, a.engine, a.prompt_tokens, a.completion_tokens,
            a.finish_reason, a.first_text) == \
           (b.json_text, b.path, b.adapter, b.valid, b.engine, b.prompt_tokens, b.completion_tokens,
            b.finish_reason, b.first_text)


def test_batched_greedy_answers_equal_one_at_a_time(router: Any) -> None:
    alone = [router.answer(**req) for req in REQUESTS]
    assert {a.path for a in alone} == {"adapter", "adapter+constrained-retry", "constrained", "base"}
    before = router.batcher.max_rows
    with router.busy():  # all queued before the first step: they start in one batch
        jobs = [router.submit(router.plan(**req)) for req in REQUESTS]
    batched = [job.wait(120) for job in jobs]
    for a, b in zip(alone, batched, strict=True):
        _same(a, b)
    assert router.batcher.max_rows >= len(REQUESTS) > before
    assert all(b.valid for b, req in zip(batched, REQUESTS, strict=True) if req.get("strict", True) and
               "schema" in req)


def test_answers_from_many_threads_share_batches(router: Any) -> None:
    out: dict[int, Any] = {}

    def one(i: int) -> None:
        out[i] = router.answer(**REQUESTS[i % len(REQUESTS)])

    steps = router.batcher.steps
    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(out) == 20
    for i, ans in out.items():
        _same(ans, out[i % len(REQUESTS)])  # the same request always gets the same answer
    rows = router.batcher.rows_stepped
    assert router.batcher.steps > steps and rows / router.batcher.steps > 1


def test_full_queue_refuses_with_retry_after(registry: Path) -> None:
    from schema_specialist.serve.router import Router

    r = Router(registry, max_new_tokens=8, dtype="float32", max_batch=2, max_queue=3)
    try:
        with r.busy():
            jobs = [r.submit(r.plan("Colour: red.", COLOR, strict=False)) for _ in range(3)]
            with pytest.raises(QueueFullError) as full:
                r.submit(r.plan("Colour: red.", COLOR, strict=False))
            assert full.value.retry_after >= 1
        assert all(j.wait(60).adapter == "color" for j in jobs)
        assert r.batcher.stats()["waiting"] == 0
    finally:
        r.close()


def test_requests_time_out_in_the_queue(registry: Path) -> None:
    from schema_specialist.serve.router import Router

    r = Router(registry, max_new_tokens=8, dtype="float32", request_timeout=0.2)
    try:
        with r.busy():
            job = r.submit(r.plan("Colour: red.", COLOR, strict=False))
            time.sleep(0.4)
        with pytest.raises(RequestTimeoutError):
            job.wait(30)
        assert r.batcher.timed_out == 1
        assert r.answer("Colour: red.", COLOR, strict=False).adapter == "color"  # still serving
    finally:
        r.close()


def test_cancelled_rows_leave_the_batch(router: Any) -> None:
    cancelled = router.batcher.cancelled
    with router.busy():
        keep = router.submit(router.plan("Colour: red.", COLOR, strict=False))
        gone = router.submit(router.plan("Tell me a story.", max_new_tokens=24))
    deadline = time.monotonic() + 30
    while router.batcher.steps == 0 or not router.batcher.stats()["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    router.cancel(gone)
    with pytest.raises(CancelledError):
        gone.wait(30)
    assert keep.wait(30).adapter == "color"
    assert router.batcher.cancelled == cancelled + 1
    assert router.batcher.stats()["running"] == 0 and len(router.batcher.batch) == 0


def test_the_prefill_thread_prefills_and_answers_as_inline_prefill_does(registry: Path) -> None:
    """Prompts are prefilled on the prefill thread, not between decoding steps; the answers are the same."""
    from schema_specialist.serve.router import Router

    answers: dict[bool, list[Any]] = {}
    names: dict[bool, set[str]] = {}
    for threaded in (False, True):
        r = Router(registry, max_new_tokens=24, dtype="float32", max_batch=16, gather_ms=20,
                   prefill_thread=threaded)
        seen: set[str] = set()
        prefill = r.batcher.batch.prefill

        def spy(rows: Any, prefill: Any = prefill, seen: set[str] = seen) -> Any:
            seen.add(threading.current_thread().name)
            return prefill(rows)

        r.batcher.batch.prefill = spy  # type: ignore[method-assign]
        try:
            with r.busy():
                jobs = [r.submit(r.plan(**req)) for req in REQUESTS]
            answers[threaded] = [job.wait(120) for job in jobs]
            assert r.batcher.stats()["prefill_thread"] is threaded
        finally:
            r.close()
        names[threaded] = seen
    assert names == {False: {"schemagen-batcher"}, True: {"schemagen-prefill"}}
    for a, b in zip(answers[False], answers[True], strict=True):
        _same(a, b)


def test_the_next_request_is_prefilled_while_a_full_batch_decodes(registry: Path) -> None:
    """At max_batch 1 the queued request is prefilled ahead, before the running one ends; a request
    cancelled while it waits prefilled never joins the batch."""
    from schema_specialist.serve.router import Router

    r = Router(registry, max_new_tokens=96, dtype="float32", max_batch=1)
    prefilled: list[float] = []
    prefill = r.batcher.batch.prefill

    def spy(rows: Any) -> Any:
        out = prefill(rows)
        prefilled.append(time.monotonic())
        return out

    r.batcher.batch.prefill = spy  # type: ignore[method-assign]
    try:
        with r.busy():
            first = r.submit(r.plan("Tell me a long story about a fox.", max_new_tokens=96))
            second = r.submit(r.plan("Colour: red.", COLOR, strict=False))
            third = r.submit(r.plan("Colour: blue.", COLOR, strict=False))
        deadline = time.monotonic() + 30
        while len(prefilled) < 2:  # the first, then the second ahead of the full batch
            assert time.monotonic() < deadline
            time.sleep(0.002)
        assert not first.done and r.batcher.max_rows <= 1  # its first step may not have ended yet
        r.cancel(second)
        with pytest.raises(CancelledError):
            second.wait(30)
        assert first.wait(30).path == "base"
        assert third.wait(30).adapter == "color"
        assert r.batcher.max_rows == 1 and r.batcher.cancelled == 1
        assert r.batcher.stats()["running"] == 0 and len(r.batcher.batch) == 0
    finally:
        r.close()


@pytest.mark.parametrize("threaded", [True, False])
def test_a_failing_prefill_fails_its_requests_and_serving_goes_on(registry: Path, threaded: bool) -> None:
    from schema_specialist.serve.jobs import InternalError
    from schema_specialist.serve.router import Router

    r = Router(registry, max_new_tokens=8, dtype="float32", prefill_thread=threaded)
    prefill = r.batcher.batch.prefill
    calls = []

    def broken_once(rows: Any) -> Any:
        calls.append(len(rows))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return prefill(rows)

    r.batcher.batch.prefill = broken_once  # type: ignore[method-assign]
    try:
        with pytest.raises(InternalError, match="prefill failed"):
            r.answer("Colour: red.", COLOR, strict=False)
        assert r.answer("Colour: red.", COLOR, strict=False).adapter == "color"
        assert r.batcher.alive and r.batcher.stats()["running"] == 0
    finally:
        r.close()
