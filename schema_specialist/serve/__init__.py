"""The serve stage: one base model, many adapters; `router` picks the adapter of a request's schema,
`server` is the OpenAI-compatible ASGI app over it."""

from __future__ import annotations
