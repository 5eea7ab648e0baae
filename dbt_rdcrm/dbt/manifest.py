"""The models of a dbt manifest as the sync sees them (no dbt imports, no raw JSON).

A frozen :class:`ModelNode` holds what the sync needs of one model: its relation, its
``meta.rdcrm`` block and where that block was written, its version, tags, tests and constraints;
:class:`Manifest` holds them all. :mod:`dbt_rdcrm.dbt.manifest_reader` builds them from
``target/manifest.json``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from dbt_rdcrm.config.specs import Relation


class _Absent:
    """No rdcrm block at all (``rdcrm:`` left empty is None: a config error)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True)
class ModelNode:
    """One model (one version of a versioned model) as the manifest describes it."""

    unique_id: str
    name: str
    package_name: str
    relation: Relation | None  # None: ephemeral, nothing to read
    rdcrm: object  # the meta.rdcrm block as dbt rendered it; ABSENT when there is none
    rdcrm_path: str  # where that block was written, as a YAML path
    version: str | None = None
    latest_version: str | None = None
    tags: tuple[str, ...] = ()
    fqn: tuple[str, ...] = ()
    original_file_path: str = ""
    enabled: bool = True
    tested_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # lower-cased column names kept unique / not null by constraints, and sets of columns that
    # are unique together (model constraints, combination tests)
    unique_columns: frozenset[str] = frozenset()
    not_null_columns: frozenset[str] = frozenset()
    unique_combinations: tuple[frozenset[str], ...] = ()

    @property
    def declares_sync(self) -> bool:
        return self.rdcrm is not ABSENT

    @property
    def is_latest(self) -> bool:
        return self.version is None or self.version == self.latest_version


@dataclass(frozen=True)
class Manifest:
    """The models of a manifest (enabled and disabled) and the facts of the run that wrote it."""

    models: tuple[ModelNode, ...]
    invocation_id: str | None = None
    project_name: str | None = None
    adapter_type: str | None = None

    @property
    def enabled(self) -> tuple[ModelNode, ...]:
        return tuple(m for m in self.models if m.enabled)

    def by_id(self) -> dict[str, ModelNode]:
        return {m.unique_id: m for m in self.models if m.enabled}

    def versions(self) -> dict[str, list[ModelNode]]:
        """Model name -> its enabled nodes (one per version), oldest first."""
        found: dict[str, list[ModelNode]] = defaultdict(list)
        for model in self.enabled:
            found[model.name].append(model)
        return {name: sorted(nodes, key=_version_order) for name, nodes in found.items()}

    def latest(self, name: str) -> ModelNode | None:
        """The version ``ref(name)`` resolves to: ``latest_version``, else the highest."""
        nodes = self.versions().get(name) or []
        for node in nodes:
            if node.version is not None and node.version == node.latest_version:
                return node
        return nodes[-1] if nodes else None


def _version_order(node: ModelNode) -> tuple:
    version = node.version or ""
    return (0, float(version), version) if _is_number(version) else (1, 0.0, version)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
