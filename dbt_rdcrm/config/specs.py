"""Typed, validated sync declarations parsed from a model's ``meta.rdcrm``.

``parse_sync(model, raw, path)`` is pure: it returns a frozen :class:`SyncSpec` or the list of
every problem found, each naming its YAML path and what would be accepted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from dbt_rdcrm.config.fields import (
    FIELDS,
    LINKABLE,
    MATCHABLE,
    RECORD_ID,
    SLUG_PATTERN,
    FieldDef,
    Mode,
    field_def,
    is_custom,
)
from dbt_rdcrm.config.templates import Template, TemplateInvalid, compile_template, is_template
from dbt_rdcrm.config.values import RowRejected, convert
from dbt_rdcrm.errors import Problem

TOP_LEVEL_KEYS = (
    "identity",
    "key",
    "links",
    "mapping",
    "mass_change",
    "match",
    "mode",
    "partial_success",
    "status_on_create",
    "values",
)
LINK_KEYS = ("column", "model")


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


def _allowed(values) -> str:
    return ", ".join(values)


def _string_list(value, path: str, what: str, problems: list[Problem]) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        if len(set(value)) != len(value):
            problems.append(Problem(path, f"lists a column twice: {value}"))
        return tuple(value)
    problems.append(Problem(path, f"got {value!r}, expected {what}"))
    return ()


def parse_sync(
    model: str, unique_id: str, raw: object, path: str, **node_facts
) -> tuple[SyncSpec | None, list[Problem]]:
    """Validate one ``meta.rdcrm`` block; return the spec, or None and every problem found."""
    problems: list[Problem] = []
    if raw is None:
        return None, [
            Problem(
                path,
                "is empty: declare the sync (a mapping with keys "
                f"{_allowed(TOP_LEVEL_KEYS)}) or remove `rdcrm:`",
            )
        ]
    if not isinstance(raw, Mapping):
        return None, [
            Problem(
                path,
                f"got {type(raw).__name__}, expected a mapping with keys "
                f"{_allowed(TOP_LEVEL_KEYS)}",
            )
        ]
    for unknown in sorted(set(raw) - set(TOP_LEVEL_KEYS), key=str):
        problems.append(
            Problem(f"{path}.{unknown}", f"unknown key, expected one of {_allowed(TOP_LEVEL_KEYS)}")
        )

    modes = [m.value for m in Mode]
    mode_value = raw.get("mode")
    mode = Mode(mode_value) if mode_value in modes else None
    if mode is None:
        got = "nothing" if mode_value is None else repr(mode_value)
        problems.append(Problem(f"{path}.mode", f"got {got}, expected one of {_allowed(modes)}"))

    partial = raw.get("partial_success", False)
    if not isinstance(partial, bool):
        problems.append(
            Problem(f"{path}.partial_success", f"got {partial!r}, expected true or false")
        )
        partial = False

    # With an unknown mode the fields are still checked (against every mode), so one run
    # reports every problem.
    sources = _parse_sources(mode, raw, path, problems)

    key: tuple[str, ...] = ()
    if "key" in raw:
        key = _string_list(
            raw["key"], f"{path}.key", "a column name or a list of column names", problems
        )
    else:
        record_id = next((s for s in sources if s.field == RECORD_ID and s.column), None)
        if record_id is not None:
            key = (record_id.column,)
        # else: no key, as the original product's configuration: rows are identified by content

    guard = _parse_guard(raw.get("mass_change", True), f"{path}.mass_change", problems)

    status_on_create = raw.get("status_on_create", "reject")
    if status_on_create not in ("reject", "two_step") or (
        status_on_create == "two_step" and mode not in (None, Mode.DEALS)
    ):
        problems.append(
            Problem(
                f"{path}.status_on_create",
                f"got {status_on_create!r}, expected reject (a deal that is not ongoing is "
                "rejected, as the CRM refuses it on create) or two_step (deals only: create it "
                "ongoing, then set its status in a second request)",
            )
        )

    identity = raw.get("identity")
    if identity is not None:
        identity = _check_identity(identity, sources, f"{path}.identity", problems)

    match = raw.get("match")
    if match is not None and mode is not None:
        match = _check_match(mode, match, sources, f"{path}.match", problems)

    if problems or mode is None:
        return None, problems
    return SyncSpec(
        model=model,
        unique_id=unique_id,
        path=path,
        mode=mode,
        key=key,
        partial_success=partial,
        sources=tuple(sources),
        match=match,
        identity=identity,
        mass_change=guard,
        two_step_status=status_on_create == "two_step",
        **node_facts,
    ), []


def _any_mode_field(name: str) -> FieldDef | None:
    return next((d for m in Mode if (d := field_def(m, name)) is not None), None)


def _parse_sources(
    mode: Mode | None, raw: Mapping, path: str, problems: list[Problem]
) -> list[Source]:
    """The sources of a block; ``mode`` None (an invalid mode): checked against every mode."""
    every = dict.fromkeys(f for m in Mode for f in FIELDS[m])
    allowed = _allowed([*(FIELDS[mode] if mode else every), "@<custom_field_slug>"])
    for_mode = f"for mode {mode.value}" if mode else "in any mode"
    claimed: dict[str, str] = {}  # field -> path that claimed it
    sources: list[Source] = []

    def claim(field_name: str, where: str) -> FieldDef | None:
        definition = None
        if isinstance(field_name, str):
            definition = field_def(mode, field_name) if mode else _any_mode_field(field_name)
        if definition is None:
            if isinstance(field_name, str) and is_custom(field_name):
                problems.append(
                    Problem(
                        where,
                        f"malformed custom field {field_name!r}, expected "
                        "@ followed by the field's slug (letters, digits, _ or -)",
                    )
                )
            else:
                problems.append(
                    Problem(
                        where,
                        f"unknown field {field_name!r} {for_mode}, expected one of {allowed}",
                    )
                )
            return None
        if field_name in claimed:
            problems.append(
                Problem(
                    where,
                    f"field {field_name!r} is already filled by "
                    f"{claimed[field_name]}: one source per field",
                )
            )
            return None
        claimed[field_name] = where
        return definition

    mapping = raw.get("mapping", {})
    if not isinstance(mapping, Mapping):
        problems.append(Problem(f"{path}.mapping", "expected a mapping of column: field"))
        mapping = {}
    for column, field_name in mapping.items():
        where = f"{path}.mapping.{column}"
        if not isinstance(field_name, str):
            problems.append(
                Problem(where, f"got {field_name!r}, expected a destination field name")
            )
            continue
        definition = claim(field_name, where)
        if definition is not None:
            sources.append(Source(field_name, definition, where, column=str(column)))

    values = raw.get("values", {})
    if not isinstance(values, Mapping):
        problems.append(
            Problem(f"{path}.values", "expected a mapping of field: constant or template")
        )
        values = {}
    for field_name, value in values.items():
        where = f"{path}.values.{field_name}"
        definition = claim(field_name, where)
        if definition is None:
            continue
        source = _value_source(field_name, definition, value, where, problems)
        if source is not None:
            sources.append(source)

    links = raw.get("links", {})
    if not isinstance(links, Mapping):
        problems.append(Problem(f"{path}.links", "expected a mapping of field: {model, column}"))
        links = {}
    for field_name, spec in links.items():
        where = f"{path}.links.{field_name}"
        linkable = LINKABLE[mode] if mode else {f: m for m in Mode for f in LINKABLE[m]}
        if field_name not in linkable:
            choices = _allowed(linkable) or "none for this mode"
            where_linked = f"in mode {mode.value}" if mode else "in any mode"
            problems.append(
                Problem(
                    where,
                    f"field {field_name!r} cannot be linked {where_linked}, "
                    f"expected one of {choices}",
                )
            )
            continue
        definition = claim(field_name, where)
        link = _parse_link(spec, where, problems)
        if definition is not None and link is not None:
            sources.append(Source(field_name, definition, where, link=link))
    return sources


def _value_source(
    field_name: str, definition: FieldDef, value: object, where: str, problems: list[Problem]
) -> Source | None:
    if is_template(value):
        try:
            compiled = compile_template(value)
        except TemplateInvalid as exc:
            problems.append(Problem(where, str(exc)))
            return None
        return Source(field_name, definition, where, template=value, compiled=compiled)
    if value is None or isinstance(value, (str, int, float, bool, list)):
        try:
            convert(definition, value)
        except RowRejected as exc:
            problems.append(Problem(where, f"constant {value!r} is not valid: {exc.reason}"))
            return None
        return Source(field_name, definition, where, constant=value)
    problems.append(
        Problem(
            where,
            f"got {type(value).__name__}, expected a constant or a "
            'template such as "[[ first_name ]] [[ last_name ]]"',
        )
    )
    return None


def _parse_link(spec: object, where: str, problems: list[Problem]) -> Link | None:
    if not isinstance(spec, Mapping):
        problems.append(
            Problem(
                where, "expected {model: <synced model>, column: <column holding that model's key>}"
            )
        )
        return None
    ok = True
    for unknown in sorted(set(spec) - set(LINK_KEYS), key=str):
        problems.append(
            Problem(f"{where}.{unknown}", f"unknown key, expected one of {_allowed(LINK_KEYS)}")
        )
        ok = False
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        problems.append(
            Problem(f"{where}.model", f"got {model!r}, expected the name of a synced model")
        )
        ok = False
    columns = _string_list(
        spec.get("column"),
        f"{where}.column",
        "the column (or list of columns) holding the linked model's key",
        problems,
    )
    if not ok or not columns:
        return None
    return Link(model=model, columns=columns)


def _check_match(
    mode: Mode, match: object, sources: list[Source], where: str, problems: list[Problem]
) -> str | None:
    allowed = [*MATCHABLE[mode], "@<custom_field_slug>"]
    if not isinstance(match, str) or not (match in MATCHABLE[mode] or SLUG_PATTERN.match(match)):
        problems.append(Problem(where, f"got {match!r}, expected one of {_allowed(allowed)}"))
        return None
    if not any(s.field == match for s in sources):
        problems.append(
            Problem(
                where, f"matches on {match!r}, but no column, value or template fills that field"
            )
        )
        return None
    return match


def _check_identity(
    identity: object, sources: list[Source], where: str, problems: list[Problem]
) -> str | None:
    if not isinstance(identity, str) or not SLUG_PATTERN.match(identity):
        problems.append(
            Problem(
                where,
                f'got {identity!r}, expected a custom field written @slug (e.g. "@dbt_key") '
                "that holds each row's key in the CRM",
            )
        )
        return None
    taken = next((s.path for s in sources if s.field == identity), None)
    if taken is not None:
        problems.append(
            Problem(
                where, f"{identity} is also filled by {taken}: the identity field holds the key"
            )
        )
        return None
    return identity


def _parse_guard(raw: object, where: str, problems: list[Problem]) -> MassChangeGuard | None:
    if raw is True:
        return MassChangeGuard()
    if raw is False:
        return None
    if not isinstance(raw, Mapping):
        problems.append(
            Problem(where, f"got {raw!r}, expected false or {{max_fraction: 0.5, min_rows: 100}}")
        )
        return MassChangeGuard()
    for unknown in sorted(set(raw) - {"max_fraction", "min_rows"}, key=str):
        problems.append(
            Problem(f"{where}.{unknown}", "unknown key, expected one of max_fraction, min_rows")
        )
    fraction, rows = raw.get("max_fraction", 0.5), raw.get("min_rows", 100)
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        problems.append(
            Problem(f"{where}.max_fraction", f"got {fraction!r}, expected a number in (0, 1]")
        )
        fraction = 0.5
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        problems.append(Problem(f"{where}.min_rows", f"got {rows!r}, expected a whole number"))
        rows = 100
    return MassChangeGuard(float(fraction), rows)
