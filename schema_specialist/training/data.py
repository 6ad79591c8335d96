"""Dataset checks, answer-only tokenization and length-bucketed batches."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..dataset import load_manifest
from ..errors import SchemagenError
from ..review.decisions import reviewed_splits
from ..schema import schema_hash

IGNORE = -100


@dataclass
class DatasetInfo:
    """A checked generated dataset: its manifest, its schema and its (prompt, answer) pairs."""

    path: Path
    manifest: dict[str, Any]
    schema: dict[str, Any]
    schema_sha256: str
    train: list[tuple[list[dict[str, str]], str]]
    val: list[tuple[list[dict[str, str]], str]]
    review: dict[str, Any] = field(default_factory=dict)  # what decisions.jsonl changed; {} when unreviewed

    def fingerprint(self) -> str:
        """sha256 of the training and validation pairs: a checkpoint only resumes on the same data."""
        blob = json.dumps([self.train, self.val], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemagenError(f"unreadable schema: {exc}", path) from None


def check_schema(directory: Path, manifest: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The dataset's schema, refusing one that changed since generation (hash vs manifest)."""
    info = manifest.get("schema")
    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
        raise SchemagenError("manifest has no schema.sha256", directory / "manifest.json")
    expected = info["sha256"]
    candidates = []
    if info.get("path_from_dataset"):
        candidates.append(directory / str(info["path_from_dataset"]))
    if info.get("path"):
        candidates.append(Path(str(info["path"])))
    candidates.append(directory / "schema.json")  # the copy generate keeps, when the source moved away
    for path in candidates:
        if path.is_file():
            schema = _read_json(path)
            actual = schema_hash(schema)
            if actual != expected:
                raise SchemagenError(
                    f"schema changed since the dataset was generated (sha256 {actual[:12]}, manifest says "
                    f"{expected[:12]}); regenerate the dataset", path)
            if not isinstance(schema, dict):
                raise SchemagenError("a schema must be a JSON object", path)
            return schema, expected
    raise SchemagenError("the dataset's schema is nowhere to be found (no schema.json)", directory)


def load_dataset(directory: str | Path) -> DatasetInfo:
    """Check and read a `schemagen generate` output directory."""
    d = Path(directory)
    if not d.is_dir():
        raise SchemagenError("no such dataset directory", d)
    manifest = load_manifest(d)
    schema, sha = check_schema(d, manifest)
    splits, review = reviewed_splits(d, schema)  # review decisions: rejected pairs left out, edits applied
    if not splits["train"]:
        raise SchemagenError("no training examples (empty split, or every pair rejected in review)",
                             d / "train.jsonl")
    return DatasetInfo(d, manifest, schema, sha, splits["train"], splits["val"], review)


@dataclass
class Example:
    """One tokenized pair: prompt then answer; labels are -100 on the prompt."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def encode(tokenizer: Any, messages: list[dict[str, str]], answer: str) -> Example:
    """Prompt = the chat template with the generation prompt; answer = content + eos, the only trained part."""
    if not getattr(tokenizer, "chat_template", None):
        raise SchemagenError("the base model's tokenizer has no chat template")
    prompt_text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    prompt = list(tokenizer(prompt_text, add_special_tokens=False)["input_ids"])
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"]) + [int(tokenizer.eos_token_id)]
    return Example(prompt + answer_ids, [IGNORE] * len(prompt) + answer_ids)


def encode_all(tokenizer: Any, pairs: list[tuple[list[dict[str, str]], str]],
               max_len: int) -> tuple[list[Example], int]:
    """Tokenize every pair; those longer than `max_len` are skipped (returned count), never truncated."""
    out, skipped = [], 0
    for messages, answer in pairs:
        ex = encode(tokenizer, messages, answer)
        if len(ex) > max_len:
            skipped += 1
        else:
            out.append(ex)
    return out, skipped


def epoch_batches(lengths: list[int], batch_size: int, bucket_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Index batches for one epoch: shuffle, sort by length inside buckets of `bucket_size` batches, shuffle
    the batches. A pure function of (seed, epoch), so a resumed run sees the same order."""
    import torch

    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    span = batch_size * bucket_size
    batches: list[list[int]] = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start:start + span], key=lambda i: -lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    if bucket_size > 1:
        perm = torch.randperm(len(batches), generator=g).tolist()
        batches = [batches[i] for i in perm]
    return batches


def collate(examples: list[Example], pad_id: int, multiple: int = 1) -> dict[str, Any]:
    """Right-padded input_ids, attention_mask and labels tensors, plus the count of real tokens.

    The width is rounded up to a multiple of `multiple`: on CPU, oneDNN caches its kernels (and their
    buffers) per shape, so a run of many distinct widths is slower to warm up and its memory climbs."""
    import torch

    longest = max(len(e) for e in examples)
    width = -(-longest // multiple) * multiple
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e)
        ids[row, :n] = torch.tensor(e.input_ids)
        labels[row, :n] = torch.tensor(e.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "tokens": sum(len(e) for e in examples)}
