"""A local transformers teacher: batched, grammar-constrained decoding through outlines."""

from __future__ import annotations

from typing import Any

from .base import Completion, Prepared, Teacher, register_teacher


@register_teacher
class LocalTeacher(Teacher):
    kind = "local"

    def __init__(self, spec: str, *, threads: int | None = None, loaded: Any = None, dtype: str = "auto") -> None:
        super().__init__(spec)
        import outlines

        from ..engines import EngineSet
        from ..models import load_model

        self.loaded = loaded or load_model(spec, threads=threads, dtype=dtype)
        self.outlines_model = outlines.from_transformers(self.loaded.model, self.loaded.tokenizer)
        self.engines = EngineSet(self.outlines_model)
        self._processor: Any = None
        self._schema: dict[str, Any] = {}
        self._dropped: list[str] = []
        self.ground_numbers = True  # `label` grounds numbers too (False: strings alone, for side-by-side runs)
        self.engine = ""

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        name, processor, failures = self.engines.pick(schema, engine)
        self._processor, self.engine, self._schema = processor, name, schema
        self._dropped = list(self.engines.last.dropped) if self.engines.last is not None else []
        seconds = max(self.engines.get(name).compile_seconds.values(), default=0.0)
        return Prepared(name, seconds, failures)

    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        rows = self.engines.get(self.engine).row_constraint(self._processor)
        if rows is None:
            return self._complete_outlines(prompts, temperature=temperature, max_new_tokens=max_new_tokens,
                                           seed=seed)
        return self._decode(prompts, temperature, max_new_tokens, seed, rows)

    def label(self, prompts: list[list[dict[str, str]]], requests: list[str], *, max_new_tokens: int,
              seed: int) -> list[Completion]:
        """Greedy, one grammar a row: the prepared schema with its free-text strings and numbers grounded in
        the row's request, so a label copies the request's words and numbers (`generate.grounding`)."""
        from ..engines import grounded_rows

        rows = self.engines.get(self.engine).row_constraint(self._processor)
        if rows is None:
            return super().label(prompts, requests, max_new_tokens=max_new_tokens, seed=seed)
        factories = [grounded_rows(self.engines, self.engine, self._dropped, self._schema, r,
                                   numbers=self.ground_numbers) or rows for r in requests]
        return self._decode(prompts, 0.0, max_new_tokens, seed, factories)

    def _decode(self, prompts: list[list[dict[str, str]]], temperature: float, max_new_tokens: int, seed: int,
                constraint: Any) -> list[Completion]:
        """The batched decoder, under `constraint` (a row matcher factory) or free (None)."""
        from ..generate.decoding import chat_ids, decode, pad_id_of, stop_ids_of

        tok, model = self.loaded.tokenizer, self.loaded.model
        ids = [chat_ids(tok, p) for p in prompts]
        decoded = decode(model, ids, stop_ids=stop_ids_of(model, tok), pad_id=pad_id_of(tok),
                         max_new_tokens=max_new_tokens, temperature=temperature, top_p=0.95, seed=seed,
                         batch_size=len(prompts), constraint=constraint)
        return [Completion(tok.decode(d.tokens, skip_special_tokens=True), d.prompt_tokens, len(d.tokens))
                for d in decoded]

    def paraphrase(self, texts: list[str], *, temperature: float, max_new_tokens: int,
                   seed: int) -> list[Completion | None]:
        """Free generation (temperature sampling, no grammar) with the model; off by default in the
        pipeline for the embedded 135M model, which rewrites poorly (see `generate --paraphrase`)."""
        from ..prompts import paraphrase_messages

        if not texts:
            return []
        return list(self._decode([paraphrase_messages(t) for t in texts], temperature, max_new_tokens, seed, None))

    def _complete_outlines(self, prompts: list[list[dict[str, str]]], *, temperature: float,
                           max_new_tokens: int, seed: int) -> list[Completion]:
        """The engines without a row matcher (outlines-core) go through outlines and `generate`."""
        import torch
        from outlines.generator import SteerableGenerator
        from outlines.inputs import Chat

        torch.manual_seed(seed)
        gen = SteerableGenerator.from_processor(self.outlines_model, self._processor)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=0.95)
        else:
            kwargs.update(do_sample=False)
        with torch.inference_mode():
            texts = gen.batch([Chat(p) for p in prompts], **kwargs)
        from ..generate.decoding import chat_ids

        tok = self.loaded.tokenizer
        return [Completion(t, len(chat_ids(tok, p)), len(tok(t, add_special_tokens=False)["input_ids"]))
                for p, t in zip(prompts, texts, strict=True)]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": self.spec, "model_path": str(self.loaded.path),
                "model_class": type(self.loaded.model).__name__, "dtype": str(self.loaded.model.dtype)}
