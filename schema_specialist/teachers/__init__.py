"""Teachers: a local transformers model, or an OpenAI-compatible HTTP endpoint."""

from __future__ import annotations

from . import local, openai_http  # noqa: F401  (self-registering)
from .base import TEACHERS, Completion, Prepared, Teacher, make_teacher, register_teacher

__all__ = ["TEACHERS", "Completion", "Prepared", "Teacher", "make_teacher", "register_teacher"]
