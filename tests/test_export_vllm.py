"""`schemagen export ADAPTER --vllm`: vLLM's LoRA constraints checked, the launch line and requests printed."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_router import FLAG, build_registry

from schema_specialist.cli import main
from schema_specialist.training.export import vllm_problems, vllm_rank


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path) -> Path:
    root = build_registry(tmp_path_factory, tiny_mistral_dir, "vllm")
    return root


def _edit(src: Path, dst: Path, **changes: Any) -> Path:
    shutil.copytree(src, dst)
    config = json.loads((dst / "adapter_config.json").read_text())
    config.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(config))
    return dst


def test_one_adapter_prints_the_launch_line_and_its_request(registry: Path, tiny_mistral_dir: Path) -> None:
    result = CliRunner().invoke(main, ["export", str(registry / "flag"), "--vllm", "--port", "8100"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    argv = shlex.split(lines[0])
    assert argv[:3] == ["vllm", "serve", str(tiny_mistral_dir)] and "--enable-lora" in argv
    assert argv[argv.index("--max-lora-rank") + 1] == "8"  # r=4 fits vLLM's smallest choice above it
    assert argv[argv.index("--port") + 1] == "8100" and argv[argv.index("--max-loras") + 1] == "1"
    assert argv[argv.index("--lora-modules") + 1] == f"flag={(registry / 'flag').resolve()}"
    body = json.loads(lines[1])
    assert body["model"] == "flag" and body["messages"][0] == {"role": "system", "content": "Reply with the JSON only."}
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "flag", "schema": FLAG,
                                                                              "strict": True}}


def test_a_registry_gives_one_line_for_all_its_adapters(registry: Path) -> None:
    result = CliRunner().invoke(main, ["export", str(registry), "--vllm"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    argv = shlex.split(lines[0])
    assert argv[argv.index("--max-loras") + 1] == "2"
    assert {a.split("=")[0] for a in argv[argv.index("--lora-modules") + 1:]} == {"flag", "color"}
    assert sorted(json.loads(line)["model"] for line in lines[1:]) == ["color", "flag"]


@pytest.mark.parametrize("changes,needle", [
    ({"bias": "all"}, "bias"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"use_dora": True}, "DoRA"),
    ({"r": 1024}, "rank 1024"),
    ({"rank_pattern": {"q_proj": 600}}, "rank 600"),
    ({"target_modules": ["q_proj", "embed_tokens"]}, "embed_tokens"),
])
def test_what_vllm_refuses_is_a_one_line_error(registry: Path, tmp_path: Path, changes: dict[str, Any],
                                               needle: str) -> None:
    bad = _edit(registry / "flag", tmp_path / "bad", **changes)
    result = CliRunner().invoke(main, ["export", str(bad), "--vllm"])
    assert result.exit_code == 2
    err = result.output.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "vLLM cannot load it" in err and needle in err


def test_not_an_adapter_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["export", str(tmp_path), "--vllm"])
    assert result.exit_code == 2 and "no adapter_config.json" in result.output


def test_rank_rounding_and_a_clean_config() -> None:
    assert [vllm_rank(r) for r in (1, 2, 8, 9, 16, 300, 512)] == [1, 8, 8, 16, 16, 320, 512]
    clean = {"peft_type": "LORA", "r": 16, "bias": "none", "modules_to_save": None, "use_dora": False,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
    assert vllm_problems(clean) == []
