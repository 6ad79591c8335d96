"""The report of one eval run: console text, report.md, report.png, report.json, eval.json.

report.json (`schemagen-eval/1`): `systems`, `inputs` (counts), `guard` and the `gate` are about the main
inputs (held-out + property-based); `input_files` holds one section a `--inputs` file:
`{"name", "path", "n", "answered", "styles": {style: n}, "systems": {name: system}, "guard": guard | null}`.
A system is `SystemResult.to_dict()` (rates as `{"k", "n", "rate", "ci95"}`, `failures` by kind,
`failures_by_path`, `fields_by_path`, `by_source`, `by_style`); a guard is `Guard.to_dict()`. The
top-level `failures_by_path` and `fields_by_path` pool the adapter's free answers over every source
(the shape is in `failures.py`): what `generate --focus REPORT.json` reads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .guard import Guard
from .metrics import ADAPTER, CONSTRAINED, PROMPTED, Gate
from .scoring import SystemResult

PATHS_SHOWN = 8


@dataclass
class Section:
    """The systems on one `--inputs` file."""

    name: str
    path: str
    n: int
    answered: int
    styles: dict[str, int]
    systems: dict[str, SystemResult]
    guard: Guard | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "n": self.n, "answered": self.answered,
                "styles": self.styles, "systems": {k: v.to_dict() for k, v in self.systems.items()},
                "guard": self.guard.to_dict() if self.guard is not None else None}


def _table(systems: dict[str, SystemResult]) -> list[list[str]]:
    rows = [["system", "n", "parse", "validity [95% CI]", "field acc.", "exact", "prompt tok", "s/answer"]]
    for s in systems.values():
        rows.append([s.label + (f" [{s.engine}]" if s.engine else ""), str(s.n), f"{s.parse.rate:.3f}",
                     s.validity.text(), f"{s.fields.rate:.3f}" if s.fields.n else "-",
                     f"{s.exact.rate:.3f}" if s.exact.n else "-", f"{s.prompt_tokens:.0f}", f"{s.latency_s:.3f}"])
    return rows


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for i, r in enumerate(rows):
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def _md_table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + [
        "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]


def _paths_text(groups: dict[str, dict[str, Any]], limit: int = PATHS_SHOWN) -> list[str]:
    lines = []
    for path, g in list(groups.items())[:limit]:
        kinds = ", ".join(f"{k} {c}" for k, c in g["kinds"].items())
        ex = g["examples"][0]
        lines.append(f"  {path}: {g['count']} ({kinds})  e.g. {json.dumps(ex['answer'][:70])}")
    if len(groups) > limit:
        lines.append(f"  ... {len(groups) - limit} more paths in report.json")
    return lines


def _styles_text(s: SystemResult) -> str:
    return ", ".join(f"{name} {d['validity']['rate']:.2f}" + (f"/{d['fields']['rate']:.2f}" if d["fields"]["n"] else "")
                     + f" (n={d['n']})" for name, d in s.by_style.items())


@dataclass
class Report:
    """Everything one eval run measured."""

    adapter_path: str
    adapter_name: str
    schema_title: str
    schema_sha256: str
    dataset: str
    n: int
    inputs: dict[str, int]
    systems: dict[str, SystemResult]
    gate: Gate
    settings: dict[str, Any]
    notes: list[str]
    answers: list[dict[str, Any]] = field(default_factory=list)
    created: str = ""
    out_dir: str = ""
    sections: list[Section] = field(default_factory=list)  # one per --inputs file
    guard: Guard | None = None  # on the main inputs
    failures_by_path: dict[str, dict[str, Any]] = field(default_factory=dict)  # adapter, every source pooled
    fields_by_path: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the run (resumed answers cost nothing here)

    @property
    def adapter(self) -> SystemResult:
        return self.systems[ADAPTER]

    @property
    def exit_code(self) -> int:
        return self.gate.exit_code

    def _baseline(self) -> SystemResult | None:
        other = self.systems.get(PROMPTED) or self.systems.get(CONSTRAINED)
        return other if other is not None and other.prompt_tokens else None

    def prompt_reduction(self) -> tuple[float, float, float] | None:
        """(adapter tokens, schema-prompt tokens, % shorter) when a schema-prompt baseline ran."""
        other = self._baseline()
        if other is None:
            return None
        a, b = self.adapter.prompt_tokens, other.prompt_tokens
        return a, b, 100.0 * (1 - a / b)

    def overhead_reduction(self) -> tuple[float, float, float] | None:
        """The same for the prompt minus the question: what the schema costs on every request."""
        other, a = self._baseline(), self.adapter.overhead_tokens
        if other is None or a is None or not other.overhead_tokens:
            return None
        return a, other.overhead_tokens, 100.0 * (1 - a / other.overhead_tokens)

    def to_dict(self) -> dict[str, Any]:
        red, over = self.prompt_reduction(), self.overhead_reduction()
        return {
            "format": "schemagen-eval/1", "created": self.created, "adapter": self.adapter_path,
            "name": self.adapter_name, "schema_title": self.schema_title, "schema_sha256": self.schema_sha256,
            "dataset": self.dataset, "n": self.n, "inputs": self.inputs, "settings": self.settings,
            "systems": {k: v.to_dict() for k, v in self.systems.items()},
            "gate": asdict(self.gate),
            "prompt_reduction": None if red is None else
            {"adapter_tokens": red[0], "schema_prompt_tokens": red[1], "percent_shorter": red[2]},
            "overhead_reduction": None if over is None else
            {"adapter_tokens": over[0], "schema_prompt_tokens": over[1], "percent_shorter": over[2]},
            "guard": self.guard.to_dict() if self.guard is not None else None,
            "input_files": [sec.to_dict() for sec in self.sections],
            "failures_by_path": self.failures_by_path, "fields_by_path": self.fields_by_path,
            "seconds": self.seconds, "notes": self.notes, "answers": self.answers,
        }

    def summary(self, report_path: str) -> dict[str, Any]:
        """The short `eval.json` the registry reads."""
        v = self.adapter.validity
        out = {"validity": v.rate, "n": v.n, "ci95": list(v.ci95), "target": self.gate.target,
               "passed": self.gate.passed, "report": report_path, "created": self.created,
               "field_accuracy": self.adapter.fields.rate, "strict": self.gate.strict,
               "gate_on": self.settings.get("gate_on", "main")}
        if self.sections:
            out["input_files"] = {sec.name: {"n": sec.n, "validity": sec.systems[ADAPTER].validity.rate,
                                             "field_accuracy": sec.systems[ADAPTER].fields.rate}
                                  for sec in self.sections if ADAPTER in sec.systems}
        return out

    def table(self) -> list[list[str]]:
        return _table(self.systems)

    def text(self) -> str:
        """The console report."""
        lines = [f"schemagen eval: {self.adapter_name} ({self.schema_title}), n={self.n} "
                 f"({', '.join(f'{k} {v}' for k, v in self.inputs.items())})", "", *_aligned(self.table())]
        red = self.prompt_reduction()
        if red is not None:
            lines += ["", f"adapter prompt: {red[0]:.0f} tokens vs {red[1]:.0f} with the schema in the prompt "
                          f"({red[2]:.0f}% shorter)"]
            over = self.overhead_reduction()
            if over is not None:
                lines.append(f"beyond the question itself: {over[0]:.0f} tokens vs {over[1]:.0f} "
                             f"({over[2]:.0f}% shorter)")
        if self.guard is not None:
            lines += ["", self.guard.text()]
        fails = self.adapter.failures
        if fails:
            lines += ["", "adapter failures:"]
            for kind, g in fails.items():
                lines.append(f"  {kind}: {g['count']}  e.g. {g['example']['detail']}  "
                             f"answer {json.dumps(g['example']['answer'][:80])}")
            lines += ["adapter failures by field:", *_paths_text(self.adapter.failures_by_path)]
        for sec in self.sections:
            lines += ["", f"inputs {sec.name} ({sec.path}): n={sec.n}, {sec.answered} with answers",
                      *_aligned(_table(sec.systems))]
            a = sec.systems.get(ADAPTER)
            if a is not None and a.by_style:
                lines.append(f"adapter by style (validity/field acc.): {_styles_text(a)}")
            if sec.guard is not None:
                lines.append(sec.guard.text())
            if a is not None and a.failures_by_path:
                lines += ["adapter failures by field:", *_paths_text(a.failures_by_path, 5)]
        lines.append("")
        for note in self.notes:
            lines.append(f"note: {note}")
        lines.append(self.gate.message)
        return "\n".join(lines)

    def markdown(self) -> str:
        """report.md: the tables, prompt savings, the guard, failures by kind and field with examples, the gate."""
        md = [f"# Eval: {self.adapter_name}", "",
              f"- schema: {self.schema_title} (`{self.schema_sha256[:12]}`)", f"- adapter: `{self.adapter_path}`",
              f"- dataset: `{self.dataset}`",
              f"- inputs: n={self.n} ({', '.join(f'{k} {v}' for k, v in self.inputs.items())})"
              + "".join(f"; `{sec.path}` {sec.n}" for sec in self.sections),
              f"- settings: {', '.join(f'{k}={v}' for k, v in self.settings.items())}",
              f"- created: {self.created}" + (f"; {self.seconds:.0f} s" if self.seconds else ""), "",
              "## Held-out and property-based inputs", "", *_md_table(self.table())]
        red = self.prompt_reduction()
        if red is not None:
            md += ["", f"The adapter's prompt is **{red[2]:.0f}% shorter**: {red[0]:.0f} tokens instead of "
                       f"{red[1]:.0f} with the schema in the prompt."]
            over = self.overhead_reduction()
            if over is not None:
                md[-1] += (f" Beyond the question itself (chat template and instructions, what every request "
                           f"pays), {over[0]:.0f} tokens instead of {over[1]:.0f}: **{over[2]:.0f}% shorter**.")
        if self.guard is not None:
            md += ["", f"The {self.guard.text()}."]
        md += ["", "Validity = valid JSON that validates against the schema (formats checked); field acc. = "
                   "share of gold leaf values reproduced at the same path; intervals are Wilson 95%; "
                   "s/answer = batch wall time / batch size."]
        for sec in self.sections:
            md += ["", f"## Inputs: {sec.name}", "", f"`{sec.path}`: n={sec.n}, {sec.answered} with a gold "
                   f"answer (field accuracy and exact are over those).", "", *_md_table(_table(sec.systems))]
            a = sec.systems.get(ADAPTER)
            if a is not None and a.by_style:
                md += ["", "| style | n | adapter validity | adapter field acc. |", "|---|---|---|---|"]
                md += [f"| {name} | {d['n']} | {d['validity']['rate']:.3f} | "
                       f"{d['fields']['rate']:.3f} |" if d["fields"]["n"] else
                       f"| {name} | {d['n']} | {d['validity']['rate']:.3f} | - |" for name, d in a.by_style.items()]
            if sec.guard is not None:
                md += ["", f"The {sec.guard.text()}."]
        sources = [("", self.systems)] + [(f" ({sec.name})", sec.systems) for sec in self.sections]
        for suffix, systems in sources:
            for s in systems.values():
                if not s.failures:
                    continue
                md += ["", f"## Failures: {s.label}{suffix}", "", "| kind | count | examples |", "|---|---|---|"]
                for kind, g in s.failures.items():
                    cells = [f"{ex['detail']}<br>answer: `{ex['answer'][:120]}`" for ex in g.get("examples") or [g["example"]]]
                    cell = "<br>".join(cells).replace("|", "\\|").replace("\n", " ")
                    md.append(f"| {kind} | {g['count']} | {cell} |")
                if s.failures_by_path:
                    md += ["", "| field | count | kinds | example |", "|---|---|---|---|"]
                    for path, g in list(s.failures_by_path.items())[:20]:
                        ex = g["examples"][0]
                        cell = f"{ex['detail']}<br>answer: `{ex['answer'][:120]}`".replace("|", "\\|").replace("\n", " ")
                        kinds = ", ".join(f"{k} {c}" for k, c in g["kinds"].items())
                        md.append(f"| `{path}` | {g['count']} | {kinds} | {cell} |")
        if self.notes:
            md += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        md += ["", "## Gate", "", self.gate.message, ""]
        return "\n".join(md)

    def chart(self, path: Path) -> None:
        """report.png: validity and field accuracy per system with intervals; prompt tokens."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        systems = list(self.systems.values())
        names = [s.name for s in systems]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
        x = list(range(len(systems)))
        for offset, metric, colour in ((-0.2, "validity", "#2b8cbe"), (0.2, "fields", "#fdae6b")):
            rates = [getattr(s, metric).rate for s in systems]
            lo = [max(0.0, r - getattr(s, metric).ci95[0]) for r, s in zip(rates, systems, strict=True)]
            hi = [max(0.0, getattr(s, metric).ci95[1] - r) for r, s in zip(rates, systems, strict=True)]
            ax1.bar([i + offset for i in x], rates, 0.4, yerr=[lo, hi], capsize=4, color=colour,
                    label="validity" if metric == "validity" else "field accuracy")
        if self.gate.target is not None:
            ax1.axhline(self.gate.target, color="red", linestyle="--", linewidth=1,
                        label=f"target {self.gate.target:g}")
        ax1.set_xticks(x, names)
        ax1.set_ylim(0, 1.05)
        ax1.set_title(f"{self.adapter_name}: n={self.n} (95% Wilson)")
        ax1.legend(loc="lower right", fontsize=8)
        ax2.bar(x, [s.prompt_tokens for s in systems], color="#74c476")
        ax2.set_xticks(x, names, rotation=15)
        ax2.set_title("prompt tokens per answer")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def write(self, out_dir: str | Path, adapter_dir: str | Path | None = None) -> dict[str, Path]:
        """Write report.json/.md/.png into `out_dir` and eval.json into the adapter directory."""
        from ..dataset import atomic_write_json, atomic_write_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
        self.out_dir = str(out)
        atomic_write_json(paths["json"], self.to_dict())
        atomic_write_text(paths["md"], self.markdown())
        self.chart(paths["png"])
        if adapter_dir is not None:
            paths["eval"] = Path(adapter_dir) / "eval.json"
            atomic_write_json(paths["eval"], self.summary(str(paths["json"])))
        return paths


