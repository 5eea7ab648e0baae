"""Read ``target/manifest.json`` (plain JSON, no dbt imports) into sync specs."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dbt_rdcrm.config.fields import LINKABLE
from dbt_rdcrm.config.specs import Relation, SyncSpec, parse_sync
from dbt_rdcrm.errors import ConfigError, Problem, UsageError

SUPPORTED_SCHEMA_VERSIONS = range(10, 13)


@dataclass(frozen=True)
class Catalog:
    """Every declared sync in a project, plus models that declare one but cannot be read."""

    specs: tuple[SyncSpec, ...]
    unreadable: dict[str, str]  # model name -> why (disabled, ephemeral)
    invocation_id: str | None = None

    def by_name(self) -> dict[str, SyncSpec]:
        return {spec.model: spec for spec in self.specs}


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


ABSENT = object()  # a node without an rdcrm block (``rdcrm:`` left empty is None, an error)


def _rdcrm_block(node: dict) -> object:
    config_meta = (node.get("config") or {}).get("meta") or {}
    if "rdcrm" in config_meta:
        return config_meta["rdcrm"]
    return (node.get("meta") or {}).get("rdcrm", ABSENT)


def _column_tests(data: dict) -> dict[str, dict[str, set[str]]]:
    """model unique_id -> column -> names of generic tests on it (unique, not_null, ...)."""
    tests: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for node in data.get("nodes", {}).values():
        if node.get("resource_type") != "test":
            continue
        meta = node.get("test_metadata") or {}
        attached = node.get("attached_node")
        column = node.get("column_name") or (meta.get("kwargs") or {}).get("column_name")
        if attached and column and meta.get("name"):
            tests[attached][column.strip('"`').lower()].add(meta["name"])
    return tests


def specs_from_manifest(data: dict) -> Catalog:
    """Every model with ``meta.rdcrm``; all config problems are raised together."""
    catalog, problems = read_catalog(data)
    if problems:
        raise ConfigError(problems)
    return catalog


def read_catalog(data: dict) -> tuple[Catalog, list[Problem]]:
    """The syncs that parse, and every config problem of those that do not (or link badly)."""
    problems: list[Problem] = []
    specs: list[SyncSpec] = []
    unreadable: dict[str, str] = {}
    tests = _column_tests(data)
    declared: set[str] = set()
    for unique_id, node in sorted(data.get("nodes", {}).items()):
        if node.get("resource_type") != "model":
            continue
        raw = _rdcrm_block(node)
        if raw is ABSENT:
            continue
        name = node["name"]
        declared.add(name)
        path = f"models.{name}.config.meta.rdcrm"
        if not node.get("relation_name"):
            unreadable[name] = (
                f"model {name} is ephemeral: it has no table or view to read; "
                "materialize it as a table or view to sync it"
            )
            continue
        spec, found = parse_sync(
            name,
            unique_id,
            raw,
            path,
            relation=Relation(
                node.get("database"),
                node["schema"],
                node.get("alias") or name,
                node["relation_name"],
            ),
            tags=tuple(node.get("tags") or ()),
            fqn=tuple(node.get("fqn") or ()),
            original_file_path=node.get("original_file_path", ""),
            tested_columns={col: frozenset(names) for col, names in tests[unique_id].items()},
        )
        problems += found
        if spec is not None:
            specs.append(spec)
    for versions in (data.get("disabled") or {}).values():
        for node in versions:
            if node.get("resource_type") == "model" and _rdcrm_block(node) is not ABSENT:
                unreadable.setdefault(node["name"], f"model {node['name']} is disabled in dbt")
    problems += check_links(specs, invalid=declared - {s.model for s in specs})
    invocation_id = data.get("metadata", {}).get("invocation_id")
    return Catalog(tuple(specs), unreadable, invocation_id), problems


def check_links(specs: list[SyncSpec], invalid: set[str] = frozenset()) -> list[Problem]:
    """Linked models must be declared syncs of the right mode, with a key of the same width."""

    by_name = {spec.model: spec for spec in specs}
    problems = []
    for spec in specs:
        for source in spec.links:
            target = by_name.get(source.link.model)
            where = f"{source.path}.model"
            if target is None and source.link.model in invalid:
                continue  # its own problems are reported already
            if target is None:
                declared = ", ".join(sorted(by_name)) or "none"
                problems.append(
                    Problem(
                        where,
                        f"{source.link.model!r} is not a declared rdcrm "
                        f"sync (declared: {declared})",
                    )
                )
                continue
            wanted = LINKABLE[spec.mode][source.field]
            if target.mode is not wanted:
                problems.append(
                    Problem(
                        where,
                        f"{source.link.model!r} syncs {target.mode.value}, "
                        f"but {source.field} needs a model in mode "
                        f"{wanted.value}",
                    )
                )
            elif target.keyless:
                problems.append(
                    Problem(
                        f"{source.path}.model",
                        f"{source.link.model!r} declares no key, so its rows cannot be "
                        "linked to: declare key: on it",
                    )
                )
            elif len(target.key) != len(source.link.columns):
                problems.append(
                    Problem(
                        f"{source.path}.column",
                        f"{source.link.model!r} has a key "
                        f"of {len(target.key)} column(s) ({', '.join(target.key)}), "
                        f"got {len(source.link.columns)}",
                    )
                )
    return problems


def sync_order(specs: list[SyncSpec]) -> list[SyncSpec]:
    """Parents before children (by links); a cycle is a config error naming its models."""
    by_name = {spec.model: spec for spec in specs}
    order: list[SyncSpec] = []
    state: dict[str, str] = {}

    def visit(spec: SyncSpec, trail: list[str]) -> None:
        if state.get(spec.model) == "done":
            return
        if state.get(spec.model) == "visiting":
            cycle = " -> ".join([*trail[trail.index(spec.model) :], spec.model])
            raise ConfigError(
                [
                    Problem(
                        f"models.{spec.model}.config.meta.rdcrm.links",
                        f"links form a cycle: {cycle}",
                    )
                ]
            )
        state[spec.model] = "visiting"
        for source in spec.links:
            parent = by_name.get(source.link.model)
            if parent is not None and parent.model != spec.model:
                visit(parent, [*trail, spec.model])
            elif parent is not None:
                raise ConfigError(
                    [
                        Problem(
                            f"{source.path}.model",
                            f"links form a cycle: {spec.model} -> {spec.model}",
                        )
                    ]
                )
        state[spec.model] = "done"
        order.append(spec)

    for spec in sorted(specs, key=lambda s: s.model):
        visit(spec, [])
    return order
