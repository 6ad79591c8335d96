"""The eval stage: how often a format specialist answers with valid JSON, against baselines, with a gate.

    report = evaluate("adapters/agent_status", n=300, target=0.999, inputs=["requests.jsonl"])
    report.adapter.validity.rate, report.gate.passed, report.guard, report.sections[0].systems

The steps: `inputs` (held-out, property-based, the user's `--inputs` files), `runner` (the systems: the
adapter with a short prompt, free or under the schema's grammar; the base model with the schema in its
prompt, free or under the grammar), `resume` (the answer log), `progress`, `scoring` (parse, validate,
field match, summarize), `failures` (where answers break, by field path), `guard` (free answer, then a
constrained retry), `metrics` (pure: Wilson, gate), `report`, and `api`,
which runs them.
"""

from __future__ import annotations

from .api import GATE_ON, evaluate, run_system
from .failures import error_sites, fields_by_path, group_by_path, read_failures_by_path
from .guard import Guard
from .inputs import (
    Generation,
    Generator,
    Item,
    file_items,
    hypothesis_instances,
    hypothesis_items,
    select_inputs,
    subset,
    test_items,
)
from .metrics import (
    ADAPTER,
    ADAPTER_GRAMMAR,
    CONSTRAINED,
    FAILURE_KINDS,
    PROMPTED,
    SYSTEM_LABELS,
    SYSTEMS,
    Gate,
    Rate,
    check_target,
    classify_failure,
    field_match,
    gate,
    looks_unterminated,
    n_needed,
    parse_json,
    same_scalar,
    wilson,
)
from .report import Report, Section
from .resume import AnswerLog
from .runner import AdapterMeta, ModelRunner, load_adapter_meta
from .scoring import Scored, SystemResult, score, summarize

__all__ = [
    "ADAPTER", "ADAPTER_GRAMMAR", "CONSTRAINED", "FAILURE_KINDS", "GATE_ON", "PROMPTED", "SYSTEMS",
    "SYSTEM_LABELS", "AdapterMeta", "AnswerLog", "Gate", "Generation", "Generator", "Guard", "Item",
    "ModelRunner", "Rate", "Report", "Scored", "Section", "SystemResult", "check_target",
    "classify_failure", "error_sites", "evaluate", "field_match", "fields_by_path", "file_items", "gate",
    "group_by_path", "hypothesis_instances", "hypothesis_items", "load_adapter_meta", "looks_unterminated",
    "n_needed", "parse_json", "read_failures_by_path", "run_system", "same_scalar", "score",
    "select_inputs", "subset", "summarize", "test_items", "wilson",
]
