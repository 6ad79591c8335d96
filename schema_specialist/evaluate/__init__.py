"""The eval stage: how often a format specialist answers with valid JSON, against baselines, with a gate.

    report = evaluate("adapters/agent_status", n=300, target=0.999)
    report.adapter.validity.rate, report.gate.passed

The steps: `inputs` (held-out, property-based), `runner` (the systems: the adapter with a short prompt and
free decoding, the base model with the schema in its prompt, the base model under the schema's grammar),
`scoring` (parse, validate, field match, summarize), `metrics` (pure: Wilson, gate), `report`, and `api`,
which runs them.
"""

from __future__ import annotations

from .api import evaluate, run_system
from .inputs import (
    Generation,
    Generator,
    Item,
    hypothesis_instances,
    hypothesis_items,
    select_inputs,
    subset,
    test_items,
)
from .metrics import (
    ADAPTER,
    CONSTRAINED,
    FAILURE_KINDS,
    PROMPTED,
    SYSTEM_LABELS,
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
from .report import Report
from .runner import AdapterMeta, ModelRunner, load_adapter_meta
from .scoring import Scored, SystemResult, score, summarize

__all__ = [
    "ADAPTER", "CONSTRAINED", "FAILURE_KINDS", "PROMPTED", "SYSTEM_LABELS", "AdapterMeta", "Gate", "Generation",
    "Generator", "Item", "ModelRunner", "Rate", "Report", "Scored", "SystemResult", "check_target",
    "classify_failure", "evaluate", "field_match", "gate", "hypothesis_instances", "hypothesis_items",
    "load_adapter_meta", "looks_unterminated", "n_needed", "parse_json", "run_system", "same_scalar", "score",
    "select_inputs", "subset", "summarize", "test_items", "wilson",
]
