"""The generate stage: schema -> dataset of request -> perfect-JSON pairs.

The steps, in pipeline order: `grammar` (the narrowed decoding schema), `decoding` (batched
constrained decoding), `repair`, `balance`, `questions` (the request written from an instance),
`diversity` (near-duplicates and spread), and `pipeline`, which runs them into a resumable dataset.
"""

from __future__ import annotations

from .pipeline import GenerateConfig, default_out_dir, default_workers, generate, write_card

__all__ = ["GenerateConfig", "default_out_dir", "default_workers", "generate", "write_card"]
