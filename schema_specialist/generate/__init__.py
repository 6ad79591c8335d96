"""The generate stage: schema -> dataset of request -> perfect-JSON pairs.

The steps, in pipeline order: `grammar` (the narrowed decoding schema), `decoding` (batched
constrained decoding), `repair`, `balance`, `plausible` (no debris or placeholders), `questions` with
`prose` and `vocabulary` (the request written from an instance) and `numbers` (its numbers read back),
`paraphrase` (the teacher rewrites a request, every value kept), `label` (answers for the user's own
requests, under `grounding`: only the request's words and numbers), `diversity` (near-duplicates and
spread), and `pipeline`, which runs them into a resumable dataset.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GenerateConfig", "default_out_dir", "default_workers", "generate", "write_card"]


def __getattr__(name: str) -> Any:  # lazy: engines import generate.grammar, the pipeline imports engines
    if name in __all__:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
