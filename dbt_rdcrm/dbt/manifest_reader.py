"""``target/manifest.json`` read once into the manifest model (no dbt imports).

:func:`load_manifest` reads the file and checks its schema version and shape;
:func:`manifest_from_dict` is pure and turns it into :class:`~dbt_rdcrm.dbt.manifest.ModelNode`
objects. Nothing past this module walks the raw JSON.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from dbt_rdcrm.config.specs import Relation
from dbt_rdcrm.dbt.manifest import ABSENT, Manifest, ModelNode
from dbt_rdcrm.errors import UsageError

SUPPORTED_SCHEMA_VERSIONS = range(10, 13)
UNIQUE_CONSTRAINTS = frozenset({"unique", "primary_key"})
NOT_NULL_CONSTRAINTS = frozenset({"not_null", "primary_key"})


def load_manifest(path: Path) -> dict:
    """Read the manifest; a missing or unreadable file is a UsageError that says what to run."""
    if not path.is_file():
        raise UsageError(
            f"no dbt manifest at {path}: run `dbt build` (or `dbt parse`) first, "
            "or point --project-dir/--target-path at the project"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UsageError(f"cannot read dbt manifest {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("metadata", {}), dict):
        raise UsageError(f"invalid dbt manifest {path}: expected a JSON object with metadata")
    version = str(data.get("metadata", {}).get("dbt_schema_version", ""))
    number = version.rstrip("/").rsplit("/v", 1)[-1].removesuffix(".json")
    if not number.isdigit() or int(number) not in SUPPORTED_SCHEMA_VERSIONS:
        raise UsageError(
            f"unsupported manifest schema {version or '(none)'} in {path}: "
            "dbt-rdcrm reads manifests of dbt 1.8 to 1.11 (schema v10-v12)"
        )
    broken = shape_problem(data)
    if broken:
        raise UsageError(
            f"invalid dbt manifest {path}: {broken}: run `dbt parse` (or `dbt build`) again"
        )
    return data


_TEXT, _OPTIONAL_TEXT = (str,), (str, type(None))
# What this module reads of a node, and the types it needs (absent keys are fine unless listed
# in _REQUIRED).
_NODE_FIELDS = {
    "name": _TEXT,
    "schema": _TEXT,
    "resource_type": _TEXT,
    "database": _OPTIONAL_TEXT,
    "alias": _OPTIONAL_TEXT,
    "relation_name": _OPTIONAL_TEXT,
    "original_file_path": _OPTIONAL_TEXT,
    "config": (dict, type(None)),
    "meta": (dict, type(None)),
    "tags": (list, type(None)),
    "fqn": (list, type(None)),
    "columns": (dict, type(None)),
    "constraints": (list, type(None)),
}
_REQUIRED = ("name", "schema", "resource_type")
_TEST_FIELDS = {
    "test_metadata": (dict, type(None)),
    "attached_node": _OPTIONAL_TEXT,
    "column_name": _OPTIONAL_TEXT,
}


def _dicts(value: object) -> bool:
    """None or a list of objects."""
    return value is None or (isinstance(value, list) and all(isinstance(v, dict) for v in value))


def shape_problem(data: dict) -> str | None:
    """Where the manifest is not shaped as dbt writes it (as far as this tool reads it)."""
    nodes = data.get("nodes", {})
    if not isinstance(nodes, dict):
        return f"'nodes' is {type(nodes).__name__}, expected an object"
    disabled = data.get("disabled") or {}
    if not isinstance(disabled, dict) or not all(isinstance(v, list) for v in disabled.values()):
        return "'disabled' is not an object of lists"
    entries = [(f"nodes[{uid!r}]", node) for uid, node in nodes.items()]
    entries += [
        (f"disabled[{uid!r}][{n}]", node)
        for uid, versions in disabled.items()
        for n, node in enumerate(versions)
    ]
    for where, node in entries:
        if not isinstance(node, dict):
            return f"{where} is {type(node).__name__}, expected an object"
        kind = node.get("resource_type")
        fields = {**_NODE_FIELDS, **_TEST_FIELDS} if kind == "test" else _NODE_FIELDS
        for key, types in fields.items():
            if key not in node:
                if key in _REQUIRED and kind == "model":
                    return f"{where} has no {key!r}"
                continue
            if not isinstance(node[key], types):
                return f"{where}.{key} is {type(node[key]).__name__}"
        for name, column in (node.get("columns") or {}).items():
            if not isinstance(column, dict) or not _dicts(column.get("constraints")):
                return f"{where}.columns[{name!r}] is not an object with a list of constraints"
        if not _dicts(node.get("constraints")):
            return f"{where}.constraints is not a list of objects"
        kwargs = (node.get("test_metadata") or {}).get("kwargs")
        if not isinstance(kwargs or {}, dict):
            return f"{where}.test_metadata.kwargs is {type(kwargs).__name__}"
        config_meta = (node.get("config") or {}).get("meta")
        if not isinstance(config_meta or {}, dict):
            return f"{where}.config.meta is {type(config_meta).__name__}"
        if not all(
            isinstance(item, str) for item in [*(node.get("tags") or ()), *(node.get("fqn") or ())]
        ):
            return f"{where}: tags and fqn must be lists of strings"
    return None


def _rdcrm_block(node: Mapping) -> object:
    config_meta = (node.get("config") or {}).get("meta") or {}
    if "rdcrm" in config_meta:
        return config_meta["rdcrm"]
    return (node.get("meta") or {}).get("rdcrm", ABSENT)


def _tests(data: Mapping) -> tuple[dict, dict]:
    """model unique_id -> column -> generic test names; and -> combination tests' columns."""
    columns: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    combinations: dict[str, list[frozenset[str]]] = defaultdict(list)
    for node in (data.get("nodes") or {}).values():
        if node.get("resource_type") != "test":
            continue
        meta = node.get("test_metadata") or {}
        kwargs = meta.get("kwargs") or {}
        attached = node.get("attached_node")
        column = node.get("column_name") or kwargs.get("column_name")
        if attached and column and meta.get("name"):
            columns[attached][column.strip('"`').lower()].add(meta["name"])
        combination = kwargs.get("combination_of_columns")
        if attached and isinstance(combination, list):
            combinations[attached].append(frozenset(str(c).lower() for c in combination))
    return columns, combinations


def _constraints(node: Mapping) -> tuple[set[str], set[str], list[frozenset[str]]]:
    unique: set[str] = set()
    not_null: set[str] = set()
    combinations: list[frozenset[str]] = []
    for name, column in (node.get("columns") or {}).items():
        kinds = {c.get("type") for c in column.get("constraints") or []}
        if kinds & UNIQUE_CONSTRAINTS:
            unique.add(name.lower())
        if kinds & NOT_NULL_CONSTRAINTS:
            not_null.add(name.lower())
    for constraint in node.get("constraints") or []:
        columns = frozenset(c.lower() for c in constraint.get("columns") or [])
        if constraint.get("type") in UNIQUE_CONSTRAINTS:
            combinations.append(columns)
        if constraint.get("type") == "primary_key":
            not_null |= columns
    return unique, not_null, combinations


def folder_rdcrm_path(project_file: Mapping, fqn: tuple[str, ...], block: object) -> str | None:
    """Where ``block`` comes from when dbt_project.yml sets it for a folder (``+meta:
    {rdcrm: ...}`` under ``models:``): dbt merges ``meta`` shallowly, so a model's ``rdcrm``
    equal to the deepest folder-level one was inherited from there."""
    tree = project_file.get("models") if isinstance(project_file, Mapping) else None
    found: tuple[str, object] | None = None
    trail = ["models"]
    for part in fqn[:-1]:
        if not isinstance(tree, Mapping) or part not in tree:
            break
        tree, trail = tree[part], [*trail, part]
        for key in ("+meta", "meta"):
            meta = tree.get(key) if isinstance(tree, Mapping) else None
            if isinstance(meta, Mapping) and "rdcrm" in meta:
                found = (f"dbt_project.yml:{'.'.join(trail)}.{key}.rdcrm", meta["rdcrm"])
    if found is not None and found[1] == block:
        return found[0]
    return None


def _model(
    unique_id: str, node: Mapping, tests: tuple[dict, dict], project_file: Mapping, enabled: bool
) -> ModelNode:
    name = node["name"]
    rdcrm = _rdcrm_block(node)
    fqn = tuple(node.get("fqn") or ())
    path = f"models.{name}.config.meta.rdcrm"
    if rdcrm is not ABSENT:
        path = folder_rdcrm_path(project_file, fqn, rdcrm) or path
    relation = None
    if node.get("relation_name"):
        relation = Relation(
            node.get("database"),
            node["schema"],
            node.get("alias") or name,
            node["relation_name"],
        )
    unique, not_null, combinations = _constraints(node)
    columns, combination_tests = tests
    version = node.get("version")
    latest = node.get("latest_version")
    return ModelNode(
        unique_id=unique_id,
        name=name,
        package_name=node.get("package_name") or "",
        relation=relation,
        rdcrm=rdcrm,
        rdcrm_path=path,
        version=None if version is None else str(version),
        latest_version=None if latest is None else str(latest),
        tags=tuple(node.get("tags") or ()),
        fqn=fqn,
        original_file_path=node.get("original_file_path", ""),
        enabled=enabled,
        tested_columns={c: frozenset(t) for c, t in columns.get(unique_id, {}).items()},
        unique_columns=frozenset(unique),
        not_null_columns=frozenset(not_null),
        unique_combinations=(*combinations, *combination_tests.get(unique_id, ())),
    )


def manifest_from_dict(data: Mapping, project_file: Mapping | None = None) -> Manifest:
    """The models of a loaded manifest. ``project_file``: dbt_project.yml as written, to tell
    where a folder-level ``meta.rdcrm`` comes from."""
    project_file = project_file or {}
    tests = _tests(data)
    models = [
        _model(uid, node, tests, project_file, True)
        for uid, node in sorted((data.get("nodes") or {}).items())
        if node.get("resource_type") == "model"
    ]
    for uid, versions in sorted((data.get("disabled") or {}).items()):
        for node in versions:
            if node.get("resource_type") == "model":
                models.append(_model(uid, node, tests, project_file, False))
    metadata = data.get("metadata") or {}
    return Manifest(
        tuple(models),
        invocation_id=metadata.get("invocation_id"),
        project_name=metadata.get("project_name"),
        adapter_type=metadata.get("adapter_type"),
    )
