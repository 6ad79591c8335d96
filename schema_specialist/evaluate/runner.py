"""The adapter and base model loaded once, with one batched generator per system."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from ..generate.grounding import kinds
from ..schema import Schema, schema_from_dict
from .inputs import Generation, Generator, Item
from .metrics import ADAPTER, ADAPTER_GRAMMAR, CONSTRAINED, PROMPTED, parse_json


@dataclass
class AdapterMeta:
    """What `schemagen.json` says about an adapter, checked."""

    path: Path
    meta: dict[str, Any]
    schema: Schema
    dataset: Path
    base: str
    system_prompt: str | None

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.path.name)

    def weights_sha256(self) -> str | None:
        """sha256 of the adapter's weights file (what makes a retrained adapter a different one)."""
        for name in ("adapter_model.safetensors", "adapter_model.bin"):
            f = self.path / name
            if f.is_file():
                h = hashlib.sha256()
                with f.open("rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                return h.hexdigest()
        return None


def _resolve_dir(value: str, adapter_dir: Path) -> Path:
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    alt = adapter_dir / p
    return alt if alt.exists() else p


def load_adapter_meta(adapter_dir: str | Path, data: str | Path | None = None,
                      base: str | None = None) -> AdapterMeta:
    """Read and check an adapter's `schemagen.json` and its dataset's manifest (one-line errors)."""
    from ..dataset import load_manifest

    path = Path(adapter_dir)
    if not path.is_dir():
        raise SchemagenError("no such adapter directory", path)
    meta_path = path / "schemagen.json"
    if not meta_path.is_file():
        raise SchemagenError("no schemagen.json (not an adapter made by `schemagen train`)", path)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemagenError(f"unreadable: {str(exc).splitlines()[0]}", meta_path) from None
    if not isinstance(meta, dict) or not isinstance(meta.get("schema"), dict):
        raise SchemagenError("no `schema` object", meta_path)
    schema = schema_from_dict(meta["schema"], path=None)
    stated = meta.get("schema_sha256")
    if stated and stated != schema.sha256:
        raise SchemagenError("schema_sha256 does not match the schema it holds", meta_path)
    if data is not None:
        dataset = Path(data)
    else:
        ds = meta.get("dataset")
        ds_path = ds.get("path") if isinstance(ds, dict) else ds if isinstance(ds, str) else None
        if not ds_path:
            raise SchemagenError("schemagen.json names no dataset: pass --data DIR", meta_path)
        dataset = _resolve_dir(str(ds_path), path)
    if not dataset.is_dir():
        raise SchemagenError("dataset directory not found (pass --data DIR)", dataset)
    manifest = load_manifest(dataset)
    ds_hash = (manifest.get("schema") or {}).get("sha256") if isinstance(manifest.get("schema"), dict) else None
    if ds_hash and ds_hash != schema.sha256:
        raise SchemagenError(f"dataset schema {str(ds_hash)[:12]} does not match the adapter's schema "
                             f"{schema.sha256[:12]}: wrong --data for this adapter", dataset)
    if base is None:
        bp = str(meta.get("base_model_path") or "")
        base = bp if bp and Path(bp).is_dir() else str(meta.get("base_model") or "") or None
    if base is None:
        raise SchemagenError("schemagen.json names no base model: pass --base", meta_path)
    sp = meta.get("system_prompt")
    return AdapterMeta(path, meta, schema, dataset, base, sp if isinstance(sp, str) and sp else None)


# The first characters `json.loads` (what `metrics.parse_json` runs) can start a value with,
# NaN and Infinity included.
JSON_STARTS = frozenset('{["-0123456789tfnNI')


def starts_no_json(text: str) -> bool:
    """Whether `text`'s first non-blank character begins no JSON value (False while it is all blank)."""
    head = text.lstrip()[:1]
    return bool(head) and head not in JSON_STARTS


class JsonStart:
    """A free answer whose first non-blank character can begin no JSON value never parses, whatever
    follows (`parse_json` reads the whole stripped text): its row stops there. A base model given the
    schema in its prompt mostly writes prose until `max_new_tokens`; scored the same, in a few tokens."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.settled = False

    def hopeless(self, tokens: list[int]) -> bool:
        if self.settled:
            return False
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        if not text.strip():
            return False
        self.settled = True
        return starts_no_json(text)


class ModelRunner:
    """The base model with the adapter loaded once; batched generators for the four systems."""

    def __init__(self, info: AdapterMeta, *, max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0, threads: int | None = None, dtype: str = "auto", grounded: bool | str = False) -> None:
        from ..generate.decoding import stop_ids_of
        from ..models import load_model
        from ..quiet import quiet_libraries

        if not (info.path / "adapter_config.json").is_file():
            raise SchemagenError("no adapter_config.json (PEFT weights missing)", info.path)
        with quiet_libraries():
            loaded = load_model(info.base, threads=threads, dtype=dtype)
            self.tokenizer = loaded.tokenizer
            self.hf_model = loaded.model
            try:
                from peft import PeftModel

                self.model = PeftModel.from_pretrained(self.hf_model, str(info.path), is_trainable=False)
            except Exception as exc:  # PEFT raises many types for a broken adapter
                raise SchemagenError(f"adapter does not load: {str(exc).splitlines()[0][:200]}",
                                     info.path) from None
        self.dtype = str(self.hf_model.dtype).removeprefix("torch.")
        self.model.eval()
        self.info = info
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.stop_ids = stop_ids_of(self.hf_model, self.tokenizer)
        self._outlines: Any = None
        self._engines: Any = None
        self._answer_schema: dict[str, Any] = {}
        self._merged = False
        self.engine: str | None = None
        self.engine_failures: list[str] = []
        self.grounded = grounded  # free-text strings only as runs of the request's words (`grounding`)
        self.on_row: Callable[[int], None] | None = None  # told each time an answer finishes (progress)
        self.stop_non_json = True  # a free answer stops at a first character no JSON starts with

    def _sampling(self) -> dict[str, Any]:
        if self.temperature > 0:
            return {"do_sample": True, "temperature": self.temperature}
        return {"do_sample": False}

    def adapter_messages(self, question: str) -> list[dict[str, str]]:
        from ..prompts import task_messages

        messages = task_messages(question)
        if self.info.system_prompt:
            messages[0] = {"role": "system", "content": self.info.system_prompt}
        return messages

    def _run(self, messages: Sequence[list[dict[str, str]]], adapter: bool,
             constraint: Any = None) -> list[Generation]:
        """Batched decoding (`decoding.decode`) with the adapter merged in, or disabled for a baseline;
        without a constraint, a row that starts with no JSON character stops there (`JsonStart`)."""
        from ..generate.decoding import chat_ids, decode, pad_id_of

        tok = self.tokenizer
        ids = [chat_ids(tok, m) for m in messages]
        if adapter and not self._merged:
            self.model.merge_adapter()  # the LoRA product folded into the weights: base-model speed
            self._merged = True
        ctx = contextlib.nullcontext() if adapter else self.model.disable_adapter()
        with ctx:
            decoded = decode(self.model.get_base_model(), ids, stop_ids=self.stop_ids, pad_id=pad_id_of(tok),
                             max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed,
                             batch_size=len(ids), constraint=constraint, on_row=self.on_row,
                             give_up=(lambda: JsonStart(tok)) if constraint is None and self.stop_non_json else None)
        if not adapter:
            self._merged = False  # PEFT unmerges a disabled adapter
        return [Generation(tok.decode(d.tokens, skip_special_tokens=True), d.prompt_tokens, len(d.tokens),
                           d.truncated or bool(d.error), d.seconds) for d in decoded]

    def question_tokens(self, question: str) -> int:
        """Tokens of the question alone (prompt minus this = template and instructions)."""
        return len(self.tokenizer(question, add_special_tokens=False)["input_ids"])

    def adapter_generator(self, batch: Sequence[Item]) -> list[Generation]:
        return self._run([self.adapter_messages(it.question) for it in batch], adapter=True)

    def prompted_generator(self, batch: Sequence[Item]) -> list[Generation]:
        from ..prompts import schema_messages

        return self._run([schema_messages(it.question, self.info.schema.raw) for it in batch], adapter=False)

    def constrained_processor(self) -> Any:
        """(outlines model, processor) for the schema's grammar; raises SchemagenError when none compiles."""
        if self._outlines is None:
            import outlines

            from ..engines import EngineSet
            from ..generate.grammar import answer_schema

            om = outlines.from_transformers(self.hf_model, self.tokenizer)
            engines = EngineSet(om)
            self._answer_schema = answer_schema(self.info.schema)
            engine, processor, failures = engines.pick(self._answer_schema)
            self._outlines = (om, processor, engines.get(engine).row_constraint(processor))
            self.engine, self.engine_failures = engine, failures
            self._engines = engines
        return self._outlines

    def generator_for(self, system: str) -> Generator:
        """The batched generator of one system (`metrics.SYSTEMS`)."""
        return {ADAPTER: self.adapter_generator, ADAPTER_GRAMMAR: self.adapter_grammar_generator,
                PROMPTED: self.prompted_generator, CONSTRAINED: self.constrained_generator}[system]

    def engine_label(self) -> str:
        """The grammar engine's name as the answer log records it (compiles the grammar: a SchemagenError
        where it cannot)."""
        self.constrained_processor()
        if not self.grounds:
            return str(self.engine)
        return f"{self.engine}, {' and '.join(kinds(self.grounded))} grounded"

    @property
    def grounds(self) -> bool:
        """Whether the grammar systems really ground their strings: asked for, and an engine with a grammar
        a row (outlines-core's path decodes every row under the one schema grammar)."""
        return bool(kinds(self.grounded)) and self.constrained_processor()[2] is not None

    def _grounded_rows(self, question: str, rows: Callable[[], Any]) -> Callable[[], Any]:
        """The row factory of the answer grammar with its strings (and numbers) grounded in `question`."""
        from ..engines import grounded_rows

        picked = self._engines.last
        made = None if picked is None else grounded_rows(self._engines, picked.engine, picked.dropped,
                                                         self._answer_schema, question,
                                                         numbers="numbers" in kinds(self.grounded))
        return rows if made is None else made

    def _grammar(self, messages: list[list[dict[str, str]]], adapter: bool,
                 questions: Sequence[str] = ()) -> list[Generation]:
        om, processor, rows = self.constrained_processor()
        if rows is not None:
            constraint = [self._grounded_rows(q, rows) for q in questions] if kinds(self.grounded) else rows
            gens = self._run(messages, adapter=adapter, constraint=constraint)
        else:
            gens = self._constrained_outlines(om, processor, messages, adapter=adapter)
        for g in gens:  # under the grammar, output that does not parse can only be a cut-off
            g.truncated = g.truncated or not parse_json(g.text)[0]
        return gens

    def constrained_generator(self, batch: Sequence[Item]) -> list[Generation]:
        """The base model (adapter off), the schema in its prompt, under the schema's grammar."""
        from ..prompts import schema_messages

        return self._grammar([schema_messages(it.question, self.info.schema.raw) for it in batch], adapter=False,
                             questions=[it.question for it in batch])

    def adapter_grammar_generator(self, batch: Sequence[Item]) -> list[Generation]:
        """The adapter (merged) with its short prompt, under the schema's grammar: the production system,
        and the guard's retry."""
        return self._grammar([self.adapter_messages(it.question) for it in batch], adapter=True,
                             questions=[it.question for it in batch])

    def _constrained_outlines(self, om: Any, processor: Any, messages: list[list[dict[str, str]]],
                              adapter: bool = False) -> list[Generation]:
        """Engines without a row matcher (outlines-core): outlines and `transformers.generate`."""
        import torch
        from outlines.generator import SteerableGenerator
        from outlines.inputs import Chat

        prompt_tokens = [len(self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=True,
                                                                return_dict=True)["input_ids"]) for m in messages]
        generator = SteerableGenerator.from_processor(om, processor)
        torch.manual_seed(self.seed)
        t0 = time.perf_counter()
        if adapter and not self._merged:
            self.model.merge_adapter()
            self._merged = True
        ctx = contextlib.nullcontext() if adapter else self.model.disable_adapter()
        with ctx, torch.inference_mode():
            texts = generator.batch([Chat(m) for m in messages], max_new_tokens=self.max_new_tokens,
                                    pad_token_id=self.tokenizer.pad_token_id, **self._sampling())
        if not adapter:
            self._merged = False
        per = (time.perf_counter() - t0) / len(messages)
        if self.on_row is not None:
            self.on_row(len(messages))
        gens = []
        for text, p in zip(texts, prompt_tokens, strict=True):
            n = len(self.tokenizer.encode(str(text), add_special_tokens=False))
            gens.append(Generation(str(text), p, min(n, self.max_new_tokens), n >= self.max_new_tokens, per))
        return gens


