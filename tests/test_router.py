"""The adapter registry (`schemagen adapters list`) and `Router.answer` on the tiny random Mistral."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from schema_specialist.cli import main
from schema_specialist.errors import SchemagenError
from schema_specialist.registry import check_name, scan, write_meta
from schema_specialist.schema import schema_hash

FLAG = {"title": "flag", "type": "object", "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"], "additionalProperties": False}
COLOR = {"title": "color", "type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}},
         "required": ["color"], "additionalProperties": False}
OTHER = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9},
                                          "yes": {"type": "boolean"}},
         "required": ["n", "yes"], "additionalProperties": False}


def build_adapter(base_dir: Path, root: Path, name: str, schema: dict[str, Any], seed: int) -> Path:
    """A LoRA adapter (random, non-zero weights) on `base_dir`, saved as safetensors with its schemagen.json."""
    import torch
    from peft import LoraConfig, get_peft_model

    from schema_specialist.models import load_model

    torch.manual_seed(seed)
    model = load_model(str(base_dir)).model
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    out = root / name
    peft_model.save_pretrained(str(out), safe_serialization=True)
    write_meta(out, name, schema, str(base_dir), base_dir)
    return out


def build_registry(tmp_path_factory: pytest.TempPathFactory, base_dir: Path, label: str) -> Path:
    """A fresh registry of two adapters on `base_dir`: `flag` (FLAG) and `color` (COLOR)."""
    root = tmp_path_factory.mktemp(label) / "adapters"
    build_adapter(base_dir, root, "flag", FLAG, seed=1)
    build_adapter(base_dir, root, "color", COLOR, seed=2)
    return root


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, tiny_mistral_dir: Path) -> Path:
    root = build_registry(tmp_path_factory, tiny_mistral_dir, "reg")
    (root / "flag" / "eval.json").write_text(json.dumps(
        {"validity": 0.95, "n": 200, "ci95": [0.91, 0.97], "target": 0.9}), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def router(registry: Path) -> Any:
    from schema_specialist.serve.router import Router

    return Router(registry, max_new_tokens=24, dtype="float32")


def _copy_registry(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- registry ----------------------------------------------------------------------------------------


def test_adapters_list_table(registry: Path) -> None:
    result = CliRunner().invoke(main, ["adapters", "list", str(registry)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:5] == ["NAME", "SCHEMA", "HASH", "BASE", "VALIDITY"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"flag", "color"}
    assert schema_hash(FLAG)[:12] in rows["flag"] and "0.950" in rows["flag"] and "n=200" in rows["flag"]
    assert schema_hash(COLOR)[:12] in rows["color"] and rows["color"].rstrip().endswith("-")


def test_adapters_list_json(registry: Path, tiny_mistral_dir: Path) -> None:
    result = CliRunner().invoke(main, ["adapters", "list", str(registry), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = {d["name"]: d for d in json.loads(result.output)}
    assert data["flag"]["schema_sha256"] == schema_hash(FLAG)
    assert data["flag"]["schema_title"] == "flag"
    assert data["flag"]["validity"] == 0.95 and data["flag"]["n"] == 200 and data["flag"]["ci95"] == [0.91, 0.97]
    assert data["color"]["validity"] is None and data["color"]["ok"] is True
    assert data["color"]["base_model"] == str(tiny_mistral_dir)


def test_adapters_list_missing_dir(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["adapters", "list", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such adapters directory" in result.output


def test_registry_refuses_pickled_and_incomplete(registry: Path, tmp_path: Path) -> None:
    root = _copy_registry(registry, tmp_path / "adapters")
    shutil.copytree(root / "color", root / "pickled")
    (root / "pickled" / "adapter_model.safetensors").rename(root / "pickled" / "adapter_model.bin")
    shutil.copytree(root / "color", root / "nometa")
    (root / "nometa" / "schemagen.json").unlink()
    (root / "scratch").mkdir()  # not an adapter at all: ignored
    infos = {i.name: i for i in scan(root)}
    assert set(infos) == {"color", "flag", "nometa", "pickled"}
    assert "adapter_model.bin refused" in str(infos["pickled"].problem)
    assert "schemagen.json" in str(infos["nometa"].problem)
    assert infos["flag"].ok and infos["color"].ok
    result = CliRunner().invoke(main, ["adapters", "list", str(root)])
    assert "refused" in result.output


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "a\\b", "", ".hidden", "x" * 200, "a b"])
def test_check_name_rejects(name: str) -> None:
    with pytest.raises(SchemagenError):
        check_name(name)


def test_check_name_accepts() -> None:
    assert check_name("order-v2.1_final") == "order-v2.1_final"


# -- router ------------------------------------------------------------------------------------------


def test_router_loads_both_adapters(router: Any, tiny_mistral_dir: Path) -> None:
    from peft import PeftModel

    assert sorted(router.names) == ["color", "flag"]
    assert isinstance(router.model, PeftModel)
    assert router.by_hash == {schema_hash(FLAG): "flag", schema_hash(COLOR): "color"}
    assert Path(router.base_spec).resolve() == tiny_mistral_dir.resolve()


def test_answer_routes_each_schema_to_its_adapter(router: Any) -> None:
    for schema, name in ((FLAG, "flag"), (COLOR, "color")):
        ans = router.answer("Is it fine? yes. Colour: red.", schema=schema, strict=False)
        assert ans.adapter == name
        assert ans.path == "adapter"
        assert ans.schema_sha256 == schema_hash(schema)
        assert ans.prompt_tokens > 0 and 0 < ans.completion_tokens <= 24
        assert ans.valid is (not ans.errors)


def test_adapters_change_the_output_and_disable_restores_base(router: Any, tiny_mistral_dir: Path) -> None:
    from schema_specialist.models import load_model

    q = "Describe the weather."
    outs = {name: router.answer(q, adapter=name, strict=False).json_text for name in ("flag", "color")}
    base = router.answer(q)  # no schema, no adapter: the base with adapters disabled
    assert base.path == "base" and base.adapter is None
    plain = load_model(str(tiny_mistral_dir))
    enc = plain.tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                              return_tensors="pt", return_dict=True)
    ids = plain.model.generate(**enc, max_new_tokens=24, do_sample=False,
                               pad_token_id=plain.tokenizer.pad_token_id)
    expected = plain.tokenizer.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert base.json_text == expected
    assert outs["flag"] != outs["color"]
    assert expected not in (outs["flag"], outs["color"])
    # switching back gives the same answer again (set_adapter really switches)
    assert router.answer(q, adapter="flag", strict=False).json_text == outs["flag"]


def test_strict_retries_under_constraints(router: Any) -> None:
    for schema, name in ((FLAG, "flag"), (COLOR, "color")):
        ans = router.answer("Is it fine? yes. Colour: red.", schema=schema, strict=True)
        assert ans.adapter == name
        assert ans.valid is True, ans
        assert ans.path in ("adapter", "adapter+constrained-retry")
        if ans.path == "adapter+constrained-retry":
            assert ans.engine and ans.first_text is not None
        from schema_specialist.schema import schema_from_dict

        assert schema_from_dict(schema).errors(json.loads(ans.json_text)) == []
        assert ans.value == json.loads(ans.json_text)


def test_unknown_schema_uses_constrained_base(router: Any) -> None:
    ans = router.answer("n is 3 and yes", schema=OTHER)
    assert ans.adapter is None and ans.path == "constrained"
    assert ans.engine in ("xgrammar", "llguidance", "outlines_core")
    assert ans.valid is True and ans.errors == []
    assert isinstance(ans.value, dict) and set(ans.value) == {"n", "yes"}


def test_unknown_schema_prompts_reuse_the_cached_schema_prefix(registry: Path) -> None:
    from schema_specialist.serve.router import Router

    cached = Router(registry, max_new_tokens=24, dtype="float32")
    plain = Router(registry, max_new_tokens=24, dtype="float32", prefix_cache_tokens=0)
    try:
        assert plain.batcher.prefix_cache is None and plain.batcher.stats()["prefix_cache"] is None
        pc = cached.batcher.prefix_cache
        assert pc is not None
        questions = ["n is 3 and yes", "n is 12, no", "yes, and n = 7"]
        for q in questions:
            with_cache, without = cached.answer(q, schema=OTHER), plain.answer(q, schema=OTHER)
            assert with_cache.json_text == without.json_text and with_cache.valid is True
        stats = cached.batcher.stats()["prefix_cache"]
        schema_prompt = len(cached.plan("", schema=OTHER).prompt)
        assert stats["hits"] >= 2 and stats["tokens_reused"] >= 2 * (schema_prompt - 12)
        assert stats["tokens_prefilled"] < sum(len(cached.plan(q, schema=OTHER).prompt) for q in questions)
    finally:
        cached.close()
        plain.close()


def test_adapter_schema_mismatch_and_unknown(router: Any) -> None:
    from schema_specialist.serve.router import RouteError, UnknownAdapterError

    with pytest.raises(RouteError, match="different schema"):
        router.answer("q", schema=COLOR, adapter="flag")
    with pytest.raises(UnknownAdapterError):
        router.answer("q", adapter="nope")
    with pytest.raises(RouteError, match="invalid adapter name"):
        router.answer("q", adapter="../flag")


def test_invalid_and_remote_ref_schemas_refused(router: Any) -> None:
    with pytest.raises(SchemagenError):
        router.answer("q", schema={"type": "nonsense"})
    with pytest.raises(SchemagenError, match="only local"):
        router.answer("q", schema={"$ref": "/etc/passwd"})
    with pytest.raises(SchemagenError, match="only local"):
        router.answer("q", schema={"properties": {"a": {"$ref": "other.json"}}})
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(60):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(SchemagenError, match="nested deeper"):
        router.answer("q", schema=deep)


def test_base_mismatch_is_refused(registry: Path, tmp_path: Path, tiny_mistral_dir: Path) -> None:
    from schema_specialist.models import build_tiny_mistral
    from schema_specialist.serve.router import Router

    root = _copy_registry(registry, tmp_path / "adapters")
    other = build_tiny_mistral(tmp_path / "other-base", seed=3)
    build_adapter(other, root, "stranger", OTHER, seed=4)
    with pytest.raises(SchemagenError, match="'stranger'.*share one base"):
        Router(root)


def test_router_skips_refused_adapters(registry: Path, tmp_path: Path) -> None:
    from schema_specialist.serve.router import Router, UnknownAdapterError

    root = _copy_registry(registry, tmp_path / "adapters")
    shutil.copytree(root / "color", root / "pickled")
    (root / "pickled" / "adapter_model.safetensors").rename(root / "pickled" / "adapter_model.bin")
    router = Router(root, max_new_tokens=8)
    assert sorted(router.names) == ["color", "flag"]
    assert "pickled" in router.skipped
    with pytest.raises(UnknownAdapterError, match="refused"):
        router.answer("q", adapter="pickled")
