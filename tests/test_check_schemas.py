"""`schemagen check`: the broken-schema corpus is reported file by file, good schemas pass, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from schema_specialist.checks import exit_code
from schema_specialist.checks.regex_risk import has_lookaround, risky_pattern
from schema_specialist.checks.schemas import check_schema_file, check_schema_files
from schema_specialist.cli import main

DATA = Path(__file__).parent / "data"
BROKEN = DATA / "broken_schemas"
GOOD = DATA / "good_schemas"

# file -> (issue code, a word the reason must contain)
EXPECTED: dict[str, tuple[str, str]] = {
    "wrong_type_name.json": ("metaschema", "integr"),
    "required_not_array.json": ("metaschema", "not of type 'array'"),
    "dangling_ref.json": ("dangling-ref", "#/$defs/address"),
    "dangling_file_ref.json": ("dangling-ref", "no_such_address.json"),
    "bad_regex.json": ("bad-regex", "does not compile"),
    "bad_regex_pattern_properties.json": ("bad-regex", "does not compile"),
    "remote_ref.json": ("remote-ref", "https://example.com/schemas/address.json"),
    "redos_nested_quantifier.json": ("regex-backtracking", "nested quantifiers"),
    "redos_alternation.json": ("regex-backtracking", "overlapping alternatives"),
    "redos_dot_star.json": ("regex-backtracking", "nested quantifiers"),
    "unknown_keyword.json": ("unsupported-keyword", "minLenght"),
    "unknown_format.json": ("unsupported-keyword", "hex-colour"),
    "json_syntax_error.json": ("json-syntax", "not valid JSON"),
    "yaml_syntax_error.yaml": ("yaml-syntax", "not valid YAML"),
    "not_an_object.json": ("not-object", "JSON object"),
    "boolean_schema.json": ("not-object", "boolean schema"),
    "unsupported_draft.json": ("draft", "draft-03"),
    "not_utf8.json": ("unreadable", "UTF-8"),
}


def test_corpus_is_fully_listed() -> None:
    assert sorted(p.name for p in BROKEN.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_broken_schema_is_reported_with_its_reason(name: str) -> None:
    code, word = EXPECTED[name]
    report = check_schema_file(BROKEN / name, compile=False)
    assert report.failed(), report.issues
    hits = [i for i in report.issues if i.code == code and i.severity == "error"]
    assert hits, f"{name}: expected {code}, got {[(i.code, i.message) for i in report.issues]}"
    assert any(word in i.message or word in (i.pointer or "") for i in hits)
    assert all(i.path == str(BROKEN / name) for i in report.issues)
    assert not any(i.code == "internal" for i in report.issues)


def test_line_numbers_for_syntax_errors() -> None:
    assert check_schema_file(BROKEN / "json_syntax_error.json", compile=False).issues[0].line == 3
    assert check_schema_file(BROKEN / "yaml_syntax_error.yaml", compile=False).issues[0].line == 4


@pytest.mark.parametrize("name", sorted(p.name for p in GOOD.iterdir() if p.is_file()))
def test_good_schemas_are_clean(name: str) -> None:
    report = check_schema_file(GOOD / name, compile=False)
    assert not report.failed(strict=True), [i.render() for i in report.issues]


def test_good_schemas_compile_with_every_engine() -> None:
    reports = check_schema_files([GOOD], compile=True)
    assert len(reports) == 4
    for r in reports:
        assert not r.failed(), [i.render() for i in r.issues]
        assert all(e["compiles"] for e in r.info["engines"].values()), r.info["engines"]
        assert r.info["decoding_engine"] in r.info["engines"]


def test_lookaround_compiles_only_with_some_engines(tmp_path: Path) -> None:
    p = tmp_path / "password.json"
    p.write_text(json.dumps({"type": "object", "properties": {
        "pw": {"type": "string", "pattern": "^(?=.*[0-9])[a-z0-9]{8,}$"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}))
    report = check_schema_file(p, compile=True)
    codes = {i.code for i in report.issues}
    assert {"regex-lookaround", "engine-compile", "validation-only"} <= codes
    assert report.info["engines"]["xgrammar"]["compiles"] is True
    assert report.info["engines"]["llguidance"]["compiles"] is False
    assert "uniqueItems" in report.info["validation_only"]
    assert not report.failed() and report.failed(strict=True)


def test_cli_whole_corpus_human_output() -> None:
    result = CliRunner().invoke(main, ["check", "--no-compile", str(BROKEN), str(GOOD)])
    assert result.exit_code == 2, result.output  # not_utf8.json is unreadable
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    for name, (code, _) in EXPECTED.items():
        assert any(line.startswith(str(BROKEN / name)) and f"[{code}]" in line for line in result.output.splitlines()), name
    for p in GOOD.iterdir():
        assert f"{p}: ok" in result.output
    assert "22 checked: 4 ok, 18 with problems (1 unreadable)" in result.output


def test_cli_json_output_and_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "--no-compile", "--format", "json", str(GOOD / "order.json")])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["exit_code"] == 0 and data["files"][0]["status"] == "ok" and data["files"][0]["draft"] == "draft2020-12"
    bad = runner.invoke(main, ["check", "--no-compile", "--format", "json", str(BROKEN / "remote_ref.json"),
                               str(GOOD / "order.json")])
    assert bad.exit_code == 1
    files = json.loads(bad.output)["files"]
    assert [f["status"] for f in files] == ["problems", "ok"]
    assert files[0]["issues"][0]["code"] == "remote-ref"
    usage = runner.invoke(main, ["check"])
    assert usage.exit_code == 2


def test_huge_and_missing_files_are_one_line_each_and_the_rest_still_checked(tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text('{"type": "object", "description": "' + "x" * (6 * 1024 * 1024) + '"}')
    (tmp_path / "dir.json").mkdir()
    args = ["check", "--no-compile", str(huge), str(tmp_path / "missing.json"), str(tmp_path / "dir.json"),
            str(GOOD / "order.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert sum(str(huge) in line for line in lines) == 1 and "[too-large]" in result.output
    assert sum("missing.json" in line for line in lines) == 1
    assert f"{GOOD / 'order.json'}: ok" in result.output
    assert "Traceback" not in result.output


def test_local_file_refs_resolve(tmp_path: Path) -> None:
    (tmp_path / "address.json").write_text(json.dumps({"$defs": {"a": {"type": "string"}}, "type": "object"}))
    main_schema = tmp_path / "main.json"
    main_schema.write_text(json.dumps({"type": "object", "properties": {
        "home": {"$ref": "address.json"}, "city": {"$ref": "address.json#/$defs/a"},
        "bad": {"$ref": "address.json#/$defs/nope"}}}))
    report = check_schema_file(main_schema, compile=False)
    dangling = [i for i in report.issues if i.code == "dangling-ref"]
    assert len(dangling) == 1 and "nope" in dangling[0].message


def test_exit_code_rules() -> None:
    good = check_schema_file(GOOD / "order.json", compile=False)
    bad = check_schema_file(BROKEN / "bad_regex.json", compile=False)
    unreadable = check_schema_file(BROKEN / "not_utf8.json", compile=False)
    assert exit_code([good]) == 0 and exit_code([good, bad]) == 1 and exit_code([bad, unreadable]) == 2


@pytest.mark.parametrize("pattern", ["(a+)+", "^(a|a)*$", "(.*)*", "(\\w+\\s?)*$", "(x+x+)+y", "([a-z]+[0-9]*)*$",
                                     "^(a+|b)+$", "(?:(?:ab)*c*)*"])
def test_risky_patterns(pattern: str) -> None:
    assert risky_pattern(pattern)


@pytest.mark.parametrize("pattern", ["^[a-z]+$", "^(\\d+,)*$", "^([a-zA-Z0-9]+\\s)*$", "^\\d{4}-\\d{2}-\\d{2}$",
                                     "^(https?|ftp)://[^ ]+$", "(\\.[a-z]+|-[a-z]+)*", "^(a|b)*$", "[", "(a|ab)*"])
def test_safe_patterns(pattern: str) -> None:
    assert risky_pattern(pattern) is None


def test_lookaround_detection() -> None:
    assert has_lookaround("^(?=.*\\d).+$") and has_lookaround("a(?!b)") and not has_lookaround("^[a-z]+$")


@pytest.mark.parametrize("key, value, severity, word", [
    ("self", {"vendor": "com.example", "name": "event", "version": "1-0-0"}, "warning", "'self'"),  # Snowplow
    ("_format", "uuid", "warning", "'_format'"),  # a deliberately switched-off keyword
    ("category", "billing", "warning", "constrains nothing"),
    ("decription", "the id", "warning", "a typo of 'description'"),  # a misspelt annotation constrains nothing
    ("mininum", 3, "error", "a typo of 'minimum'"),  # a misspelt rule: the schema means a bound nobody enforces
    ("oneof", [{"type": "string"}, {"type": "integer"}], "error", "a typo of 'oneOf'"),
    ("maxlength", 5, "error", "a typo of 'maxLength'"),
])
def test_an_unknown_keyword_fails_only_where_it_looks_like_a_misspelt_rule(
        tmp_path: Path, key: str, value: object, severity: str, word: str) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"id": {"type": "string", key: value}}}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    report = check_schema_file(path, compile=False)
    hits = [i for i in report.issues if key in i.message]
    assert [i.severity for i in hits] == [severity], report.issues
    assert word in hits[0].message and hits[0].pointer == "#/properties/id"
    assert report.failed() == (severity == "error")


def test_bench_check_counts_failing_schemas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_check", Path(__file__).parent.parent / "scripts" /
                                                  "bench_check.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "good.json").write_text('{"type": "object", "self": {"name": "x"}}', encoding="utf-8")
    (tmp_path / "sub" / "typo.json").write_text('{"type": "string", "maxlength": 3}', encoding="utf-8")
    assert bench.main(["--bench", str(tmp_path), "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "**1 of 2 fail**" in out and "| keyword 'maxlength' | 1 | `sub/typo.json` |" in out
    assert "| `unknown-keyword` | 0 | 1 |" in out
