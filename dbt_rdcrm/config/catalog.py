"""The declared syncs of a project: one typed spec per model that declares ``meta.rdcrm``.

Built from the manifest model (:mod:`dbt_rdcrm.dbt.manifest`); pure. Every problem of every
declared sync is collected, each once, with its YAML path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dbt_rdcrm.config.fields import LINKABLE
from dbt_rdcrm.config.spec_parsing import parse_sync
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.dbt.manifest import Manifest, ModelNode
from dbt_rdcrm.errors import ConfigError, Problem


@dataclass(frozen=True)
class Catalog:
    """Every declared sync, plus models that declare one but cannot be read."""

    specs: tuple[SyncSpec, ...]
    nodes: Mapping[str, ModelNode]  # model name -> the node (version) its spec reads
    unreadable: Mapping[str, str]  # model name -> why (disabled, ephemeral)
    problems: tuple[Problem, ...] = ()
    invocation_id: str | None = None
    declared: frozenset[str] = field(default_factory=frozenset)

    def by_name(self) -> dict[str, SyncSpec]:
        return {spec.model: spec for spec in self.specs}


def build_catalog(manifest: Manifest, pinned: Mapping[str, ModelNode] | None = None) -> Catalog:
    """One sync per declared model: the version ``pinned`` names, else the latest (as ``ref``
    resolves it). Problems are returned in the catalog, not raised."""
    pinned = pinned or {}
    problems: list[Problem] = []
    specs: list[SyncSpec] = []
    nodes: dict[str, ModelNode] = {}
    unreadable: dict[str, str] = {}
    declared: set[str] = set()
    for name in sorted(manifest.versions()):
        node = pinned.get(name) or manifest.latest(name)
        if node is None or not node.declares_sync:
            continue
        declared.add(name)
        nodes[name] = node
        if node.relation is None:
            unreadable[name] = (
                f"model {name} is ephemeral: it has no table or view to read; "
                "materialize it as a table or view to sync it"
            )
            continue
        spec, found = parse_sync(
            name,
            node.unique_id,
            node.rdcrm,
            node.rdcrm_path,
            relation=node.relation,
            tags=node.tags,
            fqn=node.fqn,
            original_file_path=node.original_file_path,
            tested_columns=node.tested_columns,
        )
        problems += found
        if spec is not None:
            specs.append(spec)
    for node in manifest.models:
        if not node.enabled and node.declares_sync and node.name not in nodes:
            unreadable.setdefault(node.name, f"model {node.name} is disabled in dbt")
    problems += check_links(specs, invalid=declared - {s.model for s in specs})
    return Catalog(
        tuple(specs),
        nodes,
        unreadable,
        tuple(_once(problems)),
        manifest.invocation_id,
        frozenset(declared),
    )


def _once(problems: Iterable[Problem]) -> list[Problem]:
    """A folder-level block shared by several models is reported once."""
    return list(dict.fromkeys(problems))


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
            raise ConfigError([Problem(f"{spec.path}.links", f"links form a cycle: {cycle}")])
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
