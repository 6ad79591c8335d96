"""One base model, many LoRA adapters: route each question to the adapter made for its schema.

    router = Router("adapters/")
    ans = router.answer("Order A17 was paid, 12.50 total", schema=order_schema)
    ans.value, ans.adapter, ans.path, ans.valid

Paths: `adapter` (the specialist, short prompt, free decoding), `constrained` (no adapter for the
schema: the base model, the schema in the prompt, constrained decoding) and
`adapter+constrained-retry` (strict: the adapter's answer was invalid, so the adapter answers again
under the schema's grammar). An answer under the schema's grammar that runs out of tokens (a string or
a list that never ends) is decoded once more under the capped grammar (path `...+capped`). Every
request becomes a `Plan` (checked and routed in the caller's thread) and then a `Job` for the `Batcher`, whose one thread decodes all concurrent requests in one
batch: adapters mixed through PEFT's per-row `adapter_names`, bf16 weights where the CPU has them.
`answer` is safe to call from many threads at once; that is how they share a batch.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import SchemagenError
from ..prompts import schema_messages, task_messages
from ..registry import AdapterInfo, check_name, scan
from ..schema import Schema, schema_from_dict, schema_hash
from .batcher import DEFAULT_GATHER_MS, DEFAULT_MAX_BATCH, DEFAULT_MAX_QUEUE, Batcher
from .jobs import Answer, Job, Plan
from .prefix import DEFAULT_PREFIX_TOKENS, PrefixCache

__all__ = ["Answer", "Plan", "PromptTooLongError", "RouteError", "Router", "UnknownAdapterError"]

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


class Router:
    """The base model loaded once, every registry adapter loaded with PEFT, and per-request routing."""

    def __init__(self, adapters_dir: str | Path, base: str | None = None, *,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, max_prompt_tokens: int | None = None,
                 dtype: str = "auto", threads: int | None = None, max_batch: int = DEFAULT_MAX_BATCH,
                 gather_ms: float = DEFAULT_GATHER_MS, max_queue: int = DEFAULT_MAX_QUEUE,
                 request_timeout: float | None = None, prefix_cache_tokens: int = DEFAULT_PREFIX_TOKENS,
                 prefill_thread: bool = True, grounded: bool = True) -> None:
        from ..generate.decoding import pad_id_of, stop_ids_of
        from ..models import load_model
        from ..quiet import quiet_libraries

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
                with quiet_libraries():  # PEFT's FutureWarnings on transformers' deprecated names
                    if not self._peft:
                        from peft import PeftModel

                        # LoRA weights stay fp32 (PEFT's default upcast): with bf16 base weights the small
                        # LoRA matmuls of a decoding step run faster in fp32 on CPU.
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
        self.dtype = str(self.hf_model.dtype).removeprefix("torch.")
        from .attention import use_decode_attention

        # Decoding steps: two matmuls, not torch's CPU SDPA kernel, over a cache that grows in place.
        grow = use_decode_attention(self.hf_model)
        self._cache_lock = threading.Lock()
        self._schemas: dict[str, Schema] = {}
        from .grammars import Grammars

        self.grammars = Grammars(self.hf_model, self.tokenizer)
        self.grounded = grounded  # grammar strings copy only the request's words (`generate.grounding`)
        self.request_timeout = request_timeout
        forward = None
        if self._peft:
            from .lora import MixedAdapterForward

            forward = MixedAdapterForward(self.model)
        self.batcher = Batcher(self.model, stop_ids=stop_ids_of(self.hf_model, self.tokenizer),
                               pad_id=pad_id_of(self.tokenizer), max_batch=max_batch, gather_ms=gather_ms,
                               max_queue=max_queue, forward=forward,
                               prefix_cache=PrefixCache(prefix_cache_tokens) if prefix_cache_tokens > 0 else None,
                               grow_cache=grow, prefill_thread=prefill_thread)
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

    # -- planning and answering ----------------------------------------------------------------------

    def _prompt(self, messages: list[dict[str, str]]) -> list[int]:
        from ..generate.decoding import chat_ids

        ids = chat_ids(self.tokenizer, messages)
        if len(ids) > self.max_prompt_tokens:
            raise PromptTooLongError(f"prompt is {len(ids)} tokens, more than the {self.max_prompt_tokens} served")
        return ids

    def _task_messages(self, info: AdapterInfo, question: str) -> list[dict[str, str]]:
        messages = task_messages(question)
        system = info.meta.get("system_prompt") if isinstance(info.meta, dict) else None
        if isinstance(system, str) and system:
            messages[0] = {"role": "system", "content": system}  # the prompt the adapter was trained with
        return messages

    def plan(self, question: str, schema: dict[str, Any] | None = None, *, adapter: str | None = None,
             strict: bool = True, max_new_tokens: int | None = None, temperature: float = 0.0,
             top_p: float = 1.0, seed: int | None = None) -> Plan:
        """Check and route one request (raising the one-line errors a 4xx reports); nothing is decoded."""
        if not isinstance(question, str):
            raise SchemagenError("question must be a string")
        checked = self.check_schema(schema) if schema is not None else None
        info = self.route(schema, adapter)
        if checked is None and info is not None and info.schema is not None:
            checked = self.check_schema(info.schema)
        max_new = max(1, min(int(max_new_tokens or self.max_new_tokens), self.max_new_tokens))
        if info is not None:
            grammar = self._grammar(checked, question) if strict and checked is not None else None
            plan = Plan("adapter", self._prompt(self._task_messages(info, question)), max_new, info.name,
                        self._peft[info.name], checked, strict, grammar)
        elif checked is not None:
            plan = Plan("constrained", self._prompt(schema_messages(question, checked.raw)), max_new,
                        checked=checked, grammar=self._grammar(checked, question))
        else:
            plan = Plan("base", self._prompt([{"role": "user", "content": question}]), max_new)
        if plan.grammar is not None and checked is not None:
            plan.capped = functools.partial(self.grammars.capped, checked)
        plan.temperature, plan.top_p = max(0.0, float(temperature)), min(1.0, max(0.0, float(top_p)))
        plan.seed = int(seed) if seed is not None else 0
        return plan

    def _grammar(self, schema: Schema, question: str) -> Any:
        return self.grammars.grounded(schema, question) if self.grounded else self.grammars.get(schema)

    def submit(self, plan: Plan, *, stream: bool = False, listener: Callable[[str, Any], None] | None = None,
               timeout: float | None = None) -> Job:
        """Queue a planned request for the batcher; raises QueueFullError / ServerClosedError at once."""
        job = Job(plan, self.tokenizer, stream=stream, listener=listener,
                  timeout=timeout if timeout is not None else self.request_timeout)
        self.batcher.submit(job)
        return job

    def cancel(self, job: Job) -> None:
        self.batcher.cancel(job)

    def answer(self, question: str, schema: dict[str, Any] | None = None, *, adapter: str | None = None,
               strict: bool = True, max_new_tokens: int | None = None, temperature: float = 0.0,
               top_p: float = 1.0, seed: int | None = None) -> Answer:
        """Answer `question` as JSON for `schema` (routed by its hash) or with the adapter named `adapter`.

        With `strict`, an adapter answer that fails validation is retried under the schema's grammar.
        Without a schema or an adapter, the base model answers freely (path "base"). Calls from
        several threads at once are decoded in one batch.
        """
        plan = self.plan(question, schema, adapter=adapter, strict=strict, max_new_tokens=max_new_tokens,
                         temperature=temperature, top_p=top_p, seed=seed)
        return self.submit(plan).wait()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Hold the model: no decoding step runs inside this block (tests)."""
        with self.batcher.paused():
            yield

    def close(self) -> None:
        """Stop the decoding thread (queued requests fail with ServerClosedError)."""
        self.batcher.close()
