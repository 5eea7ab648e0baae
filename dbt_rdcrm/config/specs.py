"""The typed, validated sync declarations a model's ``meta.rdcrm`` becomes: frozen
:class:`SyncSpec` objects and their parts (sources, links, the mass-change guard, the relation).

They are built by :func:`dbt_rdcrm.config.spec_parsing.parse_sync`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from dbt_rdcrm.config.fields import RECORD_ID, FieldDef, Mode
from dbt_rdcrm.config.templates import Template, compile_template


@dataclass(frozen=True)
class Relation:
    database: str | None
    schema: str
    identifier: str
    rendered: str  # dbt's relation_name, already quoted


@dataclass(frozen=True)
class Link:
    """Fill ``field`` with the CRM id that ``model`` recorded for the key held in ``columns``."""

    model: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """Where one destination field takes its value from: a column, a constant, a template or a link."""

    field: str
    definition: FieldDef
    path: str
    column: str | None = None
    constant: object = None
    template: str | None = None
    link: Link | None = None
    compiled: Template | None = field(default=None, compare=False, repr=False)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        if self.column is not None:
            return (self.column,)
        if self.link is not None:
            return self.link.columns
        if self.template is not None:
            return self.renderer.columns
        return ()

    @cached_property
    def renderer(self) -> Template:
        """The compiled template (compiled here when the source was built without it)."""
        return self.compiled or compile_template(self.template or "")

    def describe(self) -> dict:
        if self.column is not None:
            return {"column": self.column}
        if self.link is not None:
            return {"link": {"model": self.link.model, "columns": list(self.link.columns)}}
        if self.template is not None:
            return {"template": self.template}
        return {"constant": self.constant}


@dataclass(frozen=True)
class MassChangeGuard:
    """Stop a model whose run would rewrite more than ``max_fraction`` of its synced rows,
    once it has at least ``min_rows`` of them (a bad join, a mapping typo)."""

    max_fraction: float = 0.5
    min_rows: int = 100


@dataclass(frozen=True)
class SyncSpec:
    model: str
    unique_id: str
    path: str  # YAML path of the rdcrm block, e.g. models.crm_contacts.config.meta.rdcrm
    mode: Mode
    key: tuple[str, ...]
    partial_success: bool
    sources: tuple[Source, ...]
    match: str | None = None
    identity: str | None = None  # "@slug": a custom field that holds the row's key in the CRM
    mass_change: MassChangeGuard | None = MassChangeGuard()  # None: no guard
    two_step_status: bool = False  # deals: create as ongoing, then set won/lost/paused
    relation: Relation | None = None
    tags: tuple[str, ...] = ()
    fqn: tuple[str, ...] = ()
    original_file_path: str = ""
    tested_columns: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def keyless(self) -> bool:
        """No key declared: a row is identified by its content (each distinct row once)."""
        return not self.key

    @property
    def record_id_source(self) -> Source | None:
        return next((s for s in self.sources if s.field == RECORD_ID), None)

    @property
    def links(self) -> tuple[Source, ...]:
        return tuple(s for s in self.sources if s.link is not None)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Every column the sync reads: the key first, then each source's columns, no repeats."""
        seen: dict[str, None] = dict.fromkeys(self.key)
        for source in self.sources:
            seen.update(dict.fromkeys(source.columns))
        return tuple(seen)

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever the way rows become payloads changes (so every row is resent)."""
        described = [[self.mode.value]] + [[s.field, s.describe()] for s in self.sources]
        text = json.dumps(described, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
