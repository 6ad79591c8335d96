"""One request through the batcher: its rows (a first answer, maybe a strict retry), its stream, its answer.

A `Plan` is what the router decided for a request (path, adapter, prompt ids, grammar, sampling).
A `Job` turns it into `continuous.Row`s for the batcher, validates each finished row, queues the
constrained retry that `strict` asks for, and reports to whoever waits: a thread (`wait`) or the
server's event loop (`listener`, called from the batcher thread with text deltas and the answer).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import SchemagenError
from ..schema import Schema

_ids = itertools.count()


class JobError(SchemagenError):
    """A request that ended without an answer (server closed, timed out, cancelled, queue full)."""


class QueueFullError(JobError):
    """The bounded queue is full: answered 429 with Retry-After."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerClosedError(JobError):
    """The batcher is shutting down: answered 503."""


class RequestTimeoutError(JobError):
    """The request ran past its deadline (queued and decoding): answered 503 with Retry-After."""


class CancelledError(JobError):
    """The client went away; the request left the batch."""


class InternalError(JobError):
    """The decoder failed on a batch (a bug): answered 500."""


@dataclass
class Answer:
    """One routed answer and how it was made."""

    json_text: str
    value: Any
    adapter: str | None
    # "adapter" | "constrained" | "adapter+constrained-retry" | "base" (no schema, no adapter); "+capped" when the
    # grammar's answer ran out of tokens and was decoded again under the capped grammar (`Plan.capped`)
    path: str
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


@dataclass
class Plan:
    """What the router decided for one request; everything the batcher needs to decode it."""

    path: str  # "adapter" | "constrained" | "base"
    prompt: list[int]
    max_new_tokens: int
    adapter: str | None = None  # registry name
    peft_name: str = "__base__"  # the adapter's PEFT name, "__base__" for base rows
    checked: Schema | None = None
    strict: bool = False
    grammar: Any = None  # grammars.Grammar: the constrained path's, or the strict retry's
    # () -> grammars.Grammar: strings and arrays capped, for an answer under `grammar` that ran out of tokens
    capped: Callable[[], Any] | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0

    @property
    def schema_sha256(self) -> str | None:
        return self.checked.sha256 if self.checked is not None else None


def _error_lines(errors: list[Any], limit: int = 5) -> list[str]:
    lines = []
    for err in errors[:limit]:
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        lines.append(f"{where}: {' '.join(str(err.message).split())[:200]}")
    return lines


def check_text(text: str, checked: Schema | None) -> tuple[Any, bool | None, list[str]]:
    """(parsed value, valid, error lines) of an answer against its schema (valid None without one)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, (False if checked is not None else None), [f"not valid JSON: {exc}"[:200]]
    if checked is None:
        return value, None, []
    errors = checked.errors(value)
    return value, not errors, _error_lines(errors)


class Job:
    """One request: built from a `Plan`, run by a `Batcher`, finished exactly once."""

    def __init__(self, plan: Plan, tokenizer: Any, *, stream: bool = False, timeout: float | None = None,
                 listener: Callable[[str, Any], None] | None = None) -> None:
        self.id = next(_ids)
        self.plan = plan
        self.tokenizer = tokenizer
        self.created = time.monotonic()
        self.deadline = self.created + timeout if timeout else None
        self.listener = listener
        self.cancelled = False
        self.retrying = False
        self.rescuing = False  # decoding again under the capped grammar (the grammar's answer ran out of tokens)
        self._truncated = (0, 0)  # (prompt, completion) tokens of the grammar's decode that ran out of tokens
        self.first: Answer | None = None
        self.answer: Answer | None = None
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._tokens: list[int] = []
        self._sent = ""
        # Text is streamed as it is written unless a strict adapter answer may still be replaced.
        self.live = stream and not (plan.path == "adapter" and plan.strict)
        self._strip = plan.path != "base"

    # -- the batcher's side -----------------------------------------------------------------------

    def row(self) -> Any:
        """The row to decode now: the first answer, or the strict retry under the grammar."""
        from .continuous import Row

        p = self.plan
        grammar = p.grammar if (p.path == "constrained" or self.retrying) else None
        if self.rescuing and p.capped is not None:
            grammar = p.capped()
        return Row(p.prompt, p.max_new_tokens, key=self, adapter=p.peft_name,
                   constraint=grammar.rows() if grammar is not None else None,
                   temperature=p.temperature, top_p=p.top_p, seed=p.seed)

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now > self.deadline

    def on_token(self, token: int) -> None:
        self._tokens.append(token)
        if self.live and self.listener is not None:
            text = self._text()
            if self._strip:
                text = text.lstrip()
            safe = text.rstrip() if self._strip else text
            safe = safe.rstrip("\ufffd")  # an incomplete UTF-8 character: wait for its other bytes
            if len(safe) > len(self._sent) and safe.startswith(self._sent):
                self._emit("delta", safe[len(self._sent):])
                self._sent = safe

    def on_done(self, decoded: Any) -> bool:
        """A row ended; True when the job needs another row (the strict retry)."""
        p = self.plan
        text = self._text()
        text = text.strip() if self._strip else text
        value, valid, errors = check_text(text, p.checked)
        if decoded.error:
            errors = [decoded.error, *errors]
        finish = "length" if decoded.truncated else "stop"
        engine = p.grammar.engine if (p.grammar is not None and (p.path == "constrained" or self.retrying)) else None
        if self.rescuing and p.capped is not None:
            engine = p.capped().engine
        self._tokens = []
        if p.path == "base":
            ans = Answer(text, value, None, "base", None, [], None, None, decoded.prompt_tokens,
                         len(decoded.tokens), finish)
        elif p.path == "constrained":
            ans = Answer(text, value, None, "constrained", valid, errors, engine, p.schema_sha256,
                         decoded.prompt_tokens, len(decoded.tokens), finish)
        elif not self.retrying:
            ans = Answer(text, value, p.adapter, "adapter", valid, errors, None, p.schema_sha256,
                         decoded.prompt_tokens, len(decoded.tokens), finish)
            if p.strict and valid is False and p.grammar is not None:
                self.first, self.retrying = ans, True
                return True
        else:
            first = self.first
            assert first is not None
            ans = Answer(text, value, p.adapter, "adapter+constrained-retry", valid, errors, engine,
                         p.schema_sha256, first.prompt_tokens + decoded.prompt_tokens,
                         first.completion_tokens + len(decoded.tokens), finish, first_text=first.json_text)
        if self.rescuing:
            ans.path += "+capped"
            ans.prompt_tokens += self._truncated[0]
            ans.completion_tokens += self._truncated[1]
        elif (p.capped is not None and ans.valid is False and decoded.truncated
              and (p.path == "constrained" or self.retrying)):
            # Under the schema's grammar the answer ran out of tokens (a string or list that never ends):
            # decode it once more under the capped grammar, whose values end in time.
            self._truncated, self.rescuing = (decoded.prompt_tokens, len(decoded.tokens)), True
            return True
        rest = ans.json_text[len(self._sent):] if ans.json_text.startswith(self._sent) else ""
        if self.listener is not None and rest:
            self._emit("delta", rest)  # a buffered (strict) answer goes out whole, once validated
        self.finish(ans)
        return False

    def finish(self, answer: Answer | None = None, error: BaseException | None = None) -> None:
        """Settle the job once, with its answer or its error."""
        if self._done.is_set():
            return
        if answer is not None:
            answer.seconds = time.monotonic() - self.created
        self.answer, self.error = answer, error
        self._done.set()
        if error is not None:
            self._emit("error", error)
        else:
            self._emit("answer", answer)

    # -- the caller's side ------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Answer:
        """Block until the job ends; its answer, or its error raised."""
        if not self._done.wait(timeout):
            raise RequestTimeoutError("no answer in time")
        if self.error is not None:
            raise self.error
        assert self.answer is not None
        return self.answer

    def _text(self) -> str:
        return str(self.tokenizer.decode(self._tokens, skip_special_tokens=True))

    def _emit(self, kind: str, payload: Any) -> None:
        if self.listener is not None:
            try:
                self.listener(kind, payload)
            except Exception:  # a listener whose client or event loop is gone must not stop the batch
                self.listener = None
