"""An OpenAI-compatible HTTP teacher (vLLM, llama.cpp server, ...) using `response_format: json_schema`."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import SchemagenError
from ..prompts import paraphrase_messages
from .base import Completion, Prepared, Teacher, register_teacher


@register_teacher
class OpenAITeacher(Teacher):
    """`openai:http://host:port/v1#model-name`; the API key comes from $OPENAI_API_KEY if set."""

    kind = "openai"

    def __init__(self, spec: str, *, timeout: float = 120.0, **_: Any) -> None:  # threads/dtype: n/a
        super().__init__(spec)
        url, _sep, model = spec.partition("#")
        if not url.startswith(("http://", "https://")):
            raise SchemagenError(f"bad --teacher 'openai:{spec}': expected openai:http(s)://HOST/v1#MODEL")
        self.url = url.rstrip("/")
        self.model = model or "default"
        self.timeout = timeout
        self._schema: dict[str, Any] = {}

    def prepare(self, schema: dict[str, Any], engine: str = "auto") -> Prepared:
        self._schema = schema
        return Prepared("server")

    def _one(self, client: Any, messages: list[dict[str, str]], temperature: float, max_tokens: int,
             seed: int, constrained: bool = True) -> Completion:
        import httpx

        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": temperature,
                                "max_tokens": max_tokens, "seed": seed}
        if constrained:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "schemagen", "schema": self._schema, "strict": True}}
        try:
            r = client.post(f"{self.url}/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise SchemagenError(f"teacher {self.url} unreachable: {exc}") from None
        if r.status_code >= 400:
            raise SchemagenError(f"teacher {self.url} answered HTTP {r.status_code}: {r.text[:200]}")
        try:
            data = r.json()
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError):
            raise SchemagenError(f"teacher {self.url} sent a malformed response: {r.text[:200]}") from None
        return Completion(text, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)))

    def _all(self, prompts: list[list[dict[str, str]]], temperature: float, max_new_tokens: int, seed: int,
             constrained: bool) -> list[Completion]:
        import os

        import httpx

        headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY', 'none')}"}
        with httpx.Client(timeout=self.timeout, headers=headers) as client, \
                ThreadPoolExecutor(max_workers=max(1, min(16, len(prompts)))) as pool:
            futures = [pool.submit(self._one, client, p, temperature, max_new_tokens, seed + i, constrained)
                       for i, p in enumerate(prompts)]
            return [f.result() for f in futures]

    def complete(self, prompts: list[list[dict[str, str]]], *, temperature: float, max_new_tokens: int,
                 seed: int) -> list[Completion]:
        return self._all(prompts, temperature, max_new_tokens, seed, constrained=True)

    def paraphrase(self, texts: list[str], *, temperature: float, max_new_tokens: int,
                   seed: int) -> list[Completion | None]:
        """A plain chat request a text (no response_format): the server writes freely."""
        if not texts:
            return []
        return list(self._all([paraphrase_messages(t) for t in texts], temperature, max_new_tokens, seed,
                              constrained=False))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "model": self.model}
