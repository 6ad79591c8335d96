"""One base model, many LoRA adapters: route each question to the adapter made for its schema.

    router = Router("adapters/")
    ans = router.answer("Order A17 was paid, 12.50 total", schema=order_schema)
    ans.value, ans.adapter, ans.path, ans.valid

Paths: `adapter` (the specialist, short prompt, free decoding), `constrained` (no adapter for the
schema: the base model with adapters disabled, the schema in the prompt, constrained decoding) and
`adapter+constrained-retry` (strict: the adapter's answer was invalid, so the adapter answers again
under constraints). Inference is serialized by a lock: one `Router` is safe to share across threads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from ..prompts import schema_messages, task_messages
from ..registry import AdapterInfo, check_name, scan
from ..schema import Schema, schema_from_dict, schema_hash

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 256
BASE_ID = "base"
AUTO = "auto"
_SCHEMA_CACHE = 256
MAX_SCHEMA_DEPTH = 100  # request schemas nesting deeper are refused (engines and validators recurse)


class RouteError(SchemagenError):
    """A request's adapter choice is unusable (bad name, or made for a different schema)."""


class UnknownAdapterError(RouteError):
    """A request named an adapter that the registry does not serve."""


class PromptTooLongError(SchemagenError):
    """The prompt does not fit the served context."""


@dataclass
class Answer:
    """One routed answer and how it was made."""

    json_text: str
    value: Any
    adapter: str | None
    path: str  # "adapter" | "constrained" | "adapter+constrained-retry" | "base" (no schema, no adapter)
    valid: bool | None  # None: no schema to check against
    errors: list[str] = field(default_factory=list)
    engine: str | None = None
    schema_sha256: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0
    first_text: str | None = None  # the adapter's invalid first answer when it was retried

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _base_key(spec: str) -> str:
    """A base model spec -> the resolved directory that identifies it."""
    from ..models import resolve_model_path

    return str(resolve_model_path(spec).resolve())


def _adapter_base(info: AdapterInfo) -> str:
    """The base an adapter was trained on: its recorded path when it still exists, else its spec."""
    if info.base_model_path and Path(info.base_model_path).is_dir():
        return info.base_model_path
    if info.base_model:
        return info.base_model
    raise SchemagenError(f"adapter {info.name!r} does not say which base model it was trained on", info.path)


def _peft_name(name: str, taken: set[str]) -> str:
    """A PEFT-safe adapter name (module dict keys cannot hold '.')."""
    base = re.sub(r"[^A-Za-z0-9_-]", "_", name)
    out, i = base, 1
    while out in taken:
        out, i = f"{base}_{i}", i + 1
    taken.add(out)
    return out


def _depth(value: Any) -> int:
    """How deeply a JSON value nests (iterative: safe on any depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = list(v.values())
        if isinstance(v, list):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in v)
    return deepest


def _error_lines(errors: list[Any], limit: int = 5) -> list[str]:
    lines = []
    for err in errors[:limit]:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        lines.append(f"{where}: {' '.join(str(err.message).split())[:200]}")
    return lines


class Router:
    """The base model loaded once, every registry adapter loaded with PEFT, and per-request routing."""

    def __init__(self, adapters_dir: str | Path, base: str | None = None, *,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, max_prompt_tokens: int | None = None,
                 dtype: str = "float32", threads: int | None = None) -> None:
        from ..models import load_model

        self.root = Path(adapters_dir)
        self.max_new_tokens = max_new_tokens
        infos = scan(self.root)
        self.skipped: dict[str, str] = {i.name: str(i.problem) for i in infos if not i.ok}
        for name, why in self.skipped.items():
            log.warning("adapter %s skipped: %s", name, why)
        good = [i for i in infos if i.ok]
        if base is None:
            base = _adapter_base(good[0]) if good else None
        self.base_spec = base or "smollm2"
        key = _base_key(self.base_spec)
        for info in good:
            theirs = _adapter_base(info)
            try:
                same = _base_key(theirs) == key
            except SchemagenError:
                same = False
            if not same:
                raise SchemagenError(
                    f"adapter {info.name!r} was trained on base {theirs!r}, not on the served base "
                    f"{self.base_spec!r}: all adapters must share one base (move it out of {self.root})")

        loaded = load_model(self.base_spec, dtype=dtype, threads=threads)
        self.tokenizer = loaded.tokenizer
        self.hf_model = loaded.model
        self.base_path = loaded.path
        self.adapters: dict[str, AdapterInfo] = {}
        self.by_hash: dict[str, str] = {}
        self._peft: dict[str, str] = {}
        taken: set[str] = set()
        self.model: Any = self.hf_model
        for info in good:
            pname = _peft_name(info.name, taken)
            try:
                if not self._peft:
                    from peft import PeftModel

                    self.model = PeftModel.from_pretrained(
                        self.hf_model, str(info.path), adapter_name=pname, is_trainable=False)
                else:
                    self.model.load_adapter(str(info.path), adapter_name=pname, is_trainable=False)
            except Exception as exc:  # PEFT raises many types for a broken adapter
                raise SchemagenError(f"adapter {info.name!r} does not load: {str(exc).splitlines()[0][:200]}",
                                     info.path) from None
            self._peft[info.name] = pname
            self.adapters[info.name] = info
        # One adapter per schema: the best evaluated one wins, then the first by name.
        for info in sorted(good, key=lambda i: (-(i.validity if i.validity is not None else -1.0), i.name)):
            self.by_hash.setdefault(info.schema_sha256, info.name)
        self.model.eval()
        self._active: str | None = next(iter(self._peft.values()), None)
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._outlines: Any = None
        self._engines: Any = None
        self._schemas: dict[str, Schema] = {}
        limit = int(getattr(self.hf_model.config, "max_position_embeddings", 0) or 4096)
        self.max_prompt_tokens = max_prompt_tokens or max(16, min(limit, 8192) - max_new_tokens)
        self.base_aliases = {BASE_ID, self.base_spec, Path(self.base_spec).name, self.base_path.name}

    # -- routing -----------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.adapters)

    def check_schema(self, schema: Any) -> Schema:
        """A request schema, checked once and cached by hash; `$ref`s must be local (`#...`)."""
        try:
            return self._check_schema(schema)
        except RecursionError:
            raise SchemagenError("invalid schema: too deeply nested") from None

    def _check_schema(self, schema: Any) -> Schema:
        if _depth(schema) > MAX_SCHEMA_DEPTH:
            raise SchemagenError(f"invalid schema: nested deeper than {MAX_SCHEMA_DEPTH} levels")
        if isinstance(schema, dict):
            hit = self._schemas.get(schema_hash(schema))
            if hit is not None:
                return hit
        from ..schema import refs_in

        if isinstance(schema, dict):
            for pointer, ref in refs_in(schema):
                if not ref.startswith("#"):
                    raise SchemagenError(f"$ref {ref[:80]!r} at {pointer} refused: only local '#...' refs are served")
        checked = schema_from_dict(schema)
        with self._cache_lock:
            if len(self._schemas) >= _SCHEMA_CACHE:
                self._schemas.pop(next(iter(self._schemas)))
            self._schemas[checked.sha256] = checked
        return checked

    def route(self, schema: dict[str, Any] | None = None, adapter: str | None = None) -> AdapterInfo | None:
        """The adapter that serves this request, or None (the base model).

        `adapter` names one directly; None, "auto" or the base's name route by the schema's hash.
        """
        if adapter not in self.adapters and (adapter in self.base_aliases or adapter == AUTO):
            adapter = None  # "route by schema"
        if adapter is not None:
            try:
                check_name(adapter)
            except SchemagenError as exc:
                raise RouteError(str(exc)) from None
            if adapter not in self.adapters:
                why = f" ({self.skipped[adapter]})" if adapter in self.skipped else ""
                raise UnknownAdapterError(f"no adapter named {adapter!r}{why}")
            info = self.adapters[adapter]
            if schema is not None and schema_hash(schema) != info.schema_sha256:
                raise RouteError(f"adapter {adapter!r} was made for a different schema "
                                     f"({info.schema_sha256[:12]}, request {schema_hash(schema)[:12]})")
            return info
        if schema is not None:
            name = self.by_hash.get(schema_hash(schema))
            return self.adapters[name] if name else None
        return None

    # -- generation --------------------------------------------------------------------------------

    def _activate(self, name: str) -> None:
        pname = self._peft[name]
        if self._active != pname:
            self.model.set_adapter(pname)
            self._active = pname

    @contextlib.contextmanager
    def _base_only(self) -> Iterator[None]:
        """Adapters off for the duration (PEFT's context manager), a no-op without adapters."""
        if self._peft:
            with self.model.disable_adapter():
                yield
        else:
            yield

    def _outlines_model(self) -> Any:
        if self._outlines is None:
            import outlines

            from ..engines import EngineSet

            # The bare HF model: LoRA layers are injected into it in place, so the active adapter
            # (or `disable_adapter`) applies to outlines' calls too.
            self._outlines = outlines.from_transformers(self.hf_model, self.tokenizer)
            self._engines = EngineSet(self._outlines)
        return self._outlines

    def _prompt_ids(self, messages: list[dict[str, str]]) -> Any:
        enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        n = int(enc["input_ids"].shape[1])
        if n > self.max_prompt_tokens:
            raise PromptTooLongError(f"prompt is {n} tokens, more than the {self.max_prompt_tokens} served")
        return enc

    def _generate_free(self, messages: list[dict[str, str]], max_new: int) -> tuple[str, int, int, str]:
        import torch

        enc = self._prompt_ids(messages)
        with torch.inference_mode():
            out = self.model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                      pad_token_id=self.tokenizer.pad_token_id)
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        eos = self.tokenizer.eos_token_id
        stop = eos in new if eos is not None else False
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return text, int(enc["input_ids"].shape[1]), len(new), "stop" if stop or len(new) < max_new else "length"

    def _generate_constrained(self, messages: list[dict[str, str]], schema: dict[str, Any],
                              max_new: int) -> tuple[str, int, int, str, str]:
        import torch
        from outlines.generator import SteerableGenerator
        from outlines.inputs import Chat

        model = self._outlines_model()
        prompt_tokens = int(self._prompt_ids(messages)["input_ids"].shape[1])
        engine, processor, _failures = self._engines.pick(schema)
        generator = SteerableGenerator.from_processor(model, processor)
        with torch.inference_mode():
            text = generator(Chat(messages), max_new_tokens=max_new, do_sample=False,
                             pad_token_id=self.tokenizer.pad_token_id)
        text = str(text)
        n = len(self.tokenizer.encode(text, add_special_tokens=False))
        return text, prompt_tokens, n, "length" if n >= max_new else "stop", engine

    @staticmethod
    def _check(text: str, checked: Schema | None) -> tuple[Any, bool | None, list[str]]:
        try:
            value = json.loads(text)
        except ValueError as exc:
            return None, (False if checked is not None else None), [f"not valid JSON: {exc}"[:200]]
        if checked is None:
            return value, None, []
        errors = checked.errors(value)
        return value, not errors, _error_lines(errors)

    def answer(self, question: str, schema: dict[str, Any] | None = None, *, adapter: str | None = None,
               strict: bool = True, max_new_tokens: int | None = None) -> Answer:
        """Answer `question` as JSON for `schema` (routed by its hash) or with the adapter named `adapter`.

        With `strict`, an adapter answer that fails validation is retried under constrained decoding.
        Without a schema or an adapter, the base model answers freely (path "base").
        """
        t0 = time.perf_counter()
        if not isinstance(question, str):
            raise SchemagenError("question must be a string")
        checked = self.check_schema(schema) if schema is not None else None
        info = self.route(schema, adapter)
        if checked is None and info is not None and info.schema is not None:
            checked = self.check_schema(info.schema)
        max_new = max(1, min(int(max_new_tokens or self.max_new_tokens), self.max_new_tokens))
        with self._lock:
            if info is not None:
                self._activate(info.name)
                msgs = task_messages(question)
                text, p, c, finish = self._generate_free(msgs, max_new)
                value, valid, errors = self._check(text.strip(), checked)
                ans = Answer(text.strip(), value, info.name, "adapter", valid, errors, None,
                             info.schema_sha256, p, c, finish)
                if strict and valid is False and checked is not None:
                    text2, p2, c2, finish2, engine = self._generate_constrained(msgs, checked.raw, max_new)
                    value, valid, errors = self._check(text2.strip(), checked)
                    ans = Answer(text2.strip(), value, info.name, "adapter+constrained-retry", valid, errors,
                                 engine, info.schema_sha256, p + p2, c + c2, finish2, first_text=ans.json_text)
            elif checked is not None:
                with self._base_only():
                    text, p, c, finish, engine = self._generate_constrained(
                        schema_messages(question, checked.raw), checked.raw, max_new)
                value, valid, errors = self._check(text.strip(), checked)
                ans = Answer(text.strip(), value, None, "constrained", valid, errors, engine,
                             checked.sha256, p, c, finish)
            else:
                with self._base_only():
                    text, p, c, finish = self._generate_free([{"role": "user", "content": question}], max_new)
                ans = Answer(text, None, None, "base", None, [], None, None, p, c, finish)
                with contextlib.suppress(ValueError):
                    ans.value = json.loads(text)
        ans.seconds = time.perf_counter() - t0
        return ans
