"""Load a JSON Schema: draft detection, metaschema check, `$ref` resolution, canonical hash, validation."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlparse

import jsonschema
import referencing
import referencing.exceptions
from jsonschema.validators import validator_for
from referencing.jsonschema import DRAFT202012

from .errors import SchemagenError

DRAFTS: dict[str, str] = {
    "http://json-schema.org/draft-04/schema": "draft4",
    "http://json-schema.org/draft-06/schema": "draft6",
    "http://json-schema.org/draft-07/schema": "draft7",
    "https://json-schema.org/draft/2019-09/schema": "draft2019-09",
    "https://json-schema.org/draft/2020-12/schema": "draft2020-12",
}

# Keywords whose value is a subschema, a list of subschemas or a map of them.
_SUB_ONE = ("additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
            "propertyNames", "unevaluatedProperties", "unevaluatedItems", "items")
_SUB_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SUB_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def canonical_json(obj: Any) -> str:
    """The canonical text of a JSON value: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def schema_hash(obj: Any) -> str:
    """sha256 of the canonical form: the identity that travels from schema to dataset to adapter."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


def iter_subschemas(schema: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (json-pointer, subschema) for the schema and every subschema below it."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key in _SUB_ONE:
        sub = schema.get(key)
        if isinstance(sub, dict):
            yield from iter_subschemas(sub, f"{path}/{key}")
    for key in _SUB_LIST:
        subs = schema.get(key)
        if isinstance(subs, list):
            for i, sub in enumerate(subs):
                yield from iter_subschemas(sub, f"{path}/{key}/{i}")
    for key in _SUB_MAP:
        subs = schema.get(key)
        if isinstance(subs, dict):
            for name, sub in subs.items():
                yield from iter_subschemas(sub, f"{path}/{key}/{_escape(name)}")
    deps = schema.get("dependencies")
    if isinstance(deps, dict):
        for name, sub in deps.items():
            if isinstance(sub, dict):
                yield from iter_subschemas(sub, f"{path}/dependencies/{_escape(name)}")


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def keywords_used(schema: Any) -> set[str]:
    """Every keyword that appears in a (sub)schema position, formats as `format:<name>`."""
    used: set[str] = set()
    for _, sub in iter_subschemas(schema):
        for key, value in sub.items():
            used.add(key)
            if key == "format" and isinstance(value, str):
                used.add(f"format:{value}")
    return used


def refs_in(schema: Any) -> list[tuple[str, str]]:
    """(json-pointer, $ref value) for every `$ref` in the schema."""
    return [(p, s["$ref"]) for p, s in iter_subschemas(schema) if isinstance(s.get("$ref"), str)]


def is_remote_ref(ref: str) -> bool:
    """A `$ref` that needs the network (http, https, any non-file scheme)."""
    scheme = urlparse(ref).scheme
    return scheme not in ("", "file", "urn", "tag")


@dataclass
class Schema:
    """A loaded, checked JSON Schema."""

    raw: dict[str, Any]
    path: Path | None = None
    allow_remote: bool = False
    _registry: referencing.Registry = field(default_factory=referencing.Registry, repr=False)

    @property
    def name(self) -> str:
        """The schema's short name: the file stem, else a slug of its title."""
        if self.path is not None:
            return self.path.name.removesuffix(".json").removesuffix(".schema")
        return re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_") or "schema"

    @property
    def title(self) -> str:
        return str(self.raw.get("title") or (self.path.stem if self.path else "record"))

    @property
    def description(self) -> str:
        return str(self.raw.get("description") or "")

    @cached_property
    def sha256(self) -> str:
        return schema_hash(self.raw)

    @cached_property
    def draft(self) -> str:
        uri = str(self.raw.get("$schema", "")).rstrip("#")
        return DRAFTS.get(uri, "draft2020-12" if not uri else f"unknown ({uri})")

    @cached_property
    def validator(self) -> jsonschema.protocols.Validator:
        cls = validator_for(self.raw, default=jsonschema.Draft202012Validator)
        return cls(self.raw, registry=self._registry, format_checker=cls.FORMAT_CHECKER)

    def errors(self, instance: Any) -> list[jsonschema.ValidationError]:
        """Every validation error of `instance`, formats checked."""
        try:
            return list(self.validator.iter_errors(instance))
        except (referencing.exceptions.Unresolvable, RecursionError) as exc:
            raise SchemagenError(f"cannot validate: {exc}", self.path) from None

    def is_valid(self, instance: Any) -> bool:
        return not self.errors(instance)

    def resolve(self, ref: str) -> Any:
        """Resolve a `$ref` against the schema's root (local pointers and registered files)."""
        resolver = self.validator._resolver  # type: ignore[attr-defined]
        return resolver.lookup(ref).contents


def load_schema(path: str | Path, *, allow_remote: bool = False) -> Schema:
    """Read, check and return a schema file; any problem is a one-line `SchemagenError`."""
    p = Path(path)
    if not p.exists():
        raise SchemagenError("no such file", p)
    if p.is_dir():
        raise SchemagenError("is a directory, not a schema file", p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemagenError(f"cannot read: {exc}", p) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemagenError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", p) from None
    return schema_from_dict(raw, path=p, allow_remote=allow_remote)


def schema_from_dict(raw: Any, *, path: Path | None = None, allow_remote: bool = False) -> Schema:
    """Check a schema given as a Python value (metaschema, `$ref`s) and wrap it."""
    if isinstance(raw, bool):
        raise SchemagenError(f"boolean schema `{str(raw).lower()}` has no structure to learn", path)
    if not isinstance(raw, dict):
        raise SchemagenError(f"a schema must be a JSON object, got {type(raw).__name__}", path)
    uri = str(raw.get("$schema", "")).rstrip("#")
    if uri and uri not in DRAFTS:
        raise SchemagenError(f"unsupported $schema {uri!r} (drafts 4, 6, 7, 2019-09 and 2020-12 are)", path)
    check_metaschema(raw, path)
    registry = _local_registry(raw, path, allow_remote)
    schema = Schema(raw=raw, path=path, allow_remote=allow_remote, _registry=registry)
    for pointer, ref in refs_in(raw):
        try:
            schema.resolve(ref)
        except referencing.exceptions.Unresolvable:
            raise SchemagenError(f"$ref {ref!r} at {pointer} does not resolve", path) from None
    return schema


def check_metaschema(raw: dict[str, Any], path: Path | None = None) -> None:
    """Validate a schema against its own draft's metaschema (regex patterns included)."""
    cls = validator_for(raw, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(raw)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(x) for x in exc.absolute_path) or "(root)"
        raise SchemagenError(f"invalid schema at {where}: {_short(exc.message)}", path) from None
    except RecursionError:
        raise SchemagenError("invalid schema: too deeply nested", path) from None
    for pointer, sub in iter_subschemas(raw):
        pattern = sub.get("pattern")
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SchemagenError(f"bad regex at {pointer}/pattern: {exc}", path) from None


def _short(message: str, limit: int = 160) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _local_registry(raw: dict[str, Any], path: Path | None, allow_remote: bool) -> referencing.Registry:
    """Register local files that `$ref`s point to; refuse remote refs unless allowed."""
    resources: dict[str, referencing.Resource[Any]] = {}
    base_dir = path.parent if path is not None else Path.cwd()
    pending = [(raw, path)]
    seen: set[str] = set()
    while pending:
        doc, doc_path = pending.pop()
        for pointer, ref in refs_in(doc):
            target = urldefrag(ref).url
            if not target or target in seen:
                continue
            seen.add(target)
            if is_remote_ref(target):
                if not allow_remote:
                    raise SchemagenError(
                        f"remote $ref {ref!r} at {pointer} refused (no network access; "
                        "pass --allow-remote-refs to fetch it)", path)
                continue  # referencing's default retrieval is not set: it will report Unresolvable
            if doc.get("$id") and not target.startswith(("./", "../")) and "/" not in target and \
                    not (base_dir / target).exists():
                continue  # an $id-relative name resolved by referencing itself
            file = (doc_path.parent if doc_path else base_dir) / urlparse(target).path
            try:
                sub = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise SchemagenError(f"$ref {ref!r} at {pointer}: cannot load {file}: {exc}", path) from None
            resources[target] = referencing.Resource.from_contents(
                sub, default_specification=DRAFT202012)
            pending.append((sub, file))
    registry: referencing.Registry = referencing.Registry().with_resources(resources.items())
    return registry
