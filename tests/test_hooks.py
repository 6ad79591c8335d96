"""The pre-commit hooks: `files`/`types` match the right paths, and a real `pre-commit try-repo` run passes
a good schema and dataset and fails a broken schema and a stale dataset.

`try-repo` installs the hook repository into a fresh virtualenv (`language: python`, `pip install .`).
The real dependency list pulls torch (a 183 MB wheel) and the model stack: minutes per run. The hook repo
here is therefore a git copy of the project whose pyproject keeps only the light dependencies; the hooks
file, the package, the virtualenv, the pip install and the `schemagen` entry point are all the real ones.
Without the engines installed, `schemagen check` reports the compile check as skipped (a warning).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from identify import identify

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
HEAVY = ("torch", "transformers", "outlines", "llguidance", "peft", "accelerate", "gguf", "safetensors",
         "matplotlib", "hypothesis")


def hooks(config: Path = ROOT / ".pre-commit-hooks.yaml") -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(config.read_text())
    items = data if isinstance(data, list) else [h for repo in data["repos"] for h in repo["hooks"]]
    return {h["id"]: h for h in items}


PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "schemagen-check": {
        "good": ("schemas/order.json", "schemas/nested/person.json", "schemas/event.yaml", "schemas/event.yml"),
        "bad": ("order.json", "tests/schemas/order.json", "schemas/README.md", "src/schemas/order.json",
                "schemas/order.json.bak"),
    },
    "schemagen-check-data": {
        "good": ("generated/order/manifest.json", "manifest.json", "adapters/order/schemagen.json",
                 "generated/order/train.jsonl", "generated/order/val.jsonl", "generated/order/test.jsonl"),
        "bad": ("generated/order/rejected.jsonl", "generated/order/card.md", "generated/order/mymanifest.json",
                "schemas/order.json", "generated/order/schema.json", "adapters/order/adapter_config.json"),
    },
}


def _selected(hook: dict[str, Any], rel: str, root: Path) -> bool:
    """pre-commit's own filter: `files` (re.search), `exclude`, then `types`/`types_or` via identify."""
    if not re.search(hook.get("files", ""), rel) or re.search(hook.get("exclude", "^$"), rel):
        return False
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    tags = identify.tags_from_path(str(path))
    types_or = set(hook.get("types_or", []))
    return set(hook.get("types", ["file"])) <= tags and (not types_or or bool(types_or & tags))


@pytest.mark.parametrize("config", [".pre-commit-hooks.yaml", ".pre-commit-config.yaml"])
@pytest.mark.parametrize("hook_id,rel,want", [(h, p, kind == "good") for h, by_kind in PATHS.items()
                                              for kind, ps in by_kind.items() for p in ps])
def test_hook_file_matches(tmp_path: Path, config: str, hook_id: str, rel: str, want: bool) -> None:
    assert _selected(hooks(ROOT / config)[hook_id], rel, tmp_path) is want


def test_manifest_and_config_agree_and_validate() -> None:
    published, own = hooks(), hooks(ROOT / ".pre-commit-config.yaml")
    assert set(published) == set(own) == set(PATHS)
    for hid, hook in published.items():
        assert hook["language"] == "python" and hook["entry"].startswith("schemagen ")
        assert own[hid]["files"] == hook["files"] and own[hid]["entry"].endswith(hook["entry"])
    for cmd in (["validate-manifest", ".pre-commit-hooks.yaml"], ["validate-config", ".pre-commit-config.yaml"]):
        subprocess.run([str(PRE_COMMIT), *cmd], cwd=ROOT, check=True, capture_output=True)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false",
                    *args], cwd=cwd, check=True, capture_output=True)


def _hook_repo(tmp: Path) -> Path:
    """A committed git copy of the project (package + hooks file), with a light dependency list."""
    repo = tmp / "hook-repo"
    shutil.copytree(ROOT / "schema_specialist", repo / "schema_specialist",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / ".pre-commit-hooks.yaml", repo)
    text = (ROOT / "pyproject.toml").read_text()
    heavy = "|".join(map(re.escape, HEAVY))
    text = re.sub(rf'\n\s*"({heavy})\b[^"]*",', "", text)
    (repo / "pyproject.toml").write_text(text)
    (repo / "README.md").write_text("schemagen (test copy)\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "hooks")
    return repo


def _work_repo(tmp: Path) -> Path:
    from tests.conftest import ORDER_SCHEMA, write_dataset

    work = tmp / "work"
    (work / "schemas").mkdir(parents=True)
    shutil.copy(DATA / "good_schemas" / "order.json", work / "schemas" / "good.json")
    shutil.copy(DATA / "broken_schemas" / "wrong_type_name.json", work / "schemas" / "broken.json")
    schema_file = work / "schemas" / "dataset_order.json"
    schema_file.write_text(json.dumps(ORDER_SCHEMA))
    pairs = [(f"Order A{i:03d} is new, total {i}.", {"id": f"A{i:03d}", "status": "new", "total": i})
             for i in range(10)]
    write_dataset(work / "generated" / "ok", ORDER_SCHEMA, pairs, schema_path=schema_file)
    stale_schema = work / "schemas" / "dataset_stale.json"
    stale_schema.write_text(json.dumps(ORDER_SCHEMA))
    write_dataset(work / "generated" / "stale", ORDER_SCHEMA, pairs, schema_path=stale_schema)
    stale_schema.write_text(json.dumps({**ORDER_SCHEMA, "title": "order v2"}))  # edited after generation
    for ds in ("ok", "stale"):  # relative, as `schemagen generate` run from the repo root would write
        m = json.loads((work / "generated" / ds / "manifest.json").read_text())
        m["schema"]["path"] = os.path.relpath(m["schema"]["path"], work)
        (work / "generated" / ds / "manifest.json").write_text(json.dumps(m, indent=2))
    _git(work, "init", "-q")
    _git(work, "add", "-A")
    return work


def _try_repo(repo: Path, work: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_COLOR": "never", "PRE_COMMIT_HOME": str(work.parent / "pc-home"),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "VIRTUALENV_NO_PERIODIC_UPDATE": "1"}
    return subprocess.run([str(PRE_COMMIT), "try-repo", str(repo), "--verbose", "--files", *files], cwd=work,
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(shutil.which("git") is None or not PRE_COMMIT.exists(), reason="needs git and pre-commit")
def test_pre_commit_try_repo_passes_good_and_fails_broken(tmp_path: Path) -> None:
    repo, work = _hook_repo(tmp_path), _work_repo(tmp_path)

    good = _try_repo(repo, work, "schemas/good.json", "generated/ok/manifest.json", "generated/ok/train.jsonl")
    out = good.stdout + good.stderr
    assert good.returncode == 0, out
    assert re.search(r"Check JSON Schemas with schemagen\.+Passed", out), out
    assert re.search(r"Check schemagen datasets and adapters\.+Passed", out), out

    bad = _try_repo(repo, work, "schemas/broken.json", "generated/stale/manifest.json")
    out = bad.stdout + bad.stderr
    assert bad.returncode == 1, out
    assert re.search(r"Check JSON Schemas with schemagen\.+Failed", out), out
    assert re.search(r"Check schemagen datasets and adapters\.+Failed", out), out
    assert "schemas/broken.json: error: #/properties/age/type: invalid schema: 'integr'" in out
    assert "generated/stale/manifest.json:" in out and "stale dataset" in out
    assert "Traceback" not in out
