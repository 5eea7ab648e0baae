"""The sources of a ``meta.rdcrm`` block: which destination field takes its value from which
column (``mapping``), constant or template (``values``) or linked model (``links``).

:func:`parse_sources` checks each against the fields of the mode, lets one source fill a field,
and records every problem with its YAML path; :func:`comma_list` and :func:`string_list` are the
wording and column-list checks the block's own keys share.
"""

from __future__ import annotations

from collections.abc import Mapping

from dbt_rdcrm.config.fields import FIELDS, LINKABLE, FieldDef, Mode, field_def, is_custom
from dbt_rdcrm.config.specs import Link, Source
from dbt_rdcrm.config.templates import TemplateInvalid, compile_template, is_template
from dbt_rdcrm.config.values import RowRejected, convert
from dbt_rdcrm.errors import Problem

LINK_KEYS = ("column", "model")


def comma_list(values) -> str:
    """The accepted values as a problem names them: ``contacts, deals, organizations``."""
    return ", ".join(values)


def string_list(value, path: str, what: str, problems: list[Problem]) -> tuple[str, ...]:
    """A column name or a non-empty list of them (each once); () and a problem otherwise."""
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        if len(set(value)) != len(value):
            problems.append(Problem(path, f"lists a column twice: {value}"))
        return tuple(value)
    problems.append(Problem(path, f"got {value!r}, expected {what}"))
    return ()


def _any_mode_field(name: str) -> FieldDef | None:
    return next((d for m in Mode if (d := field_def(m, name)) is not None), None)


def parse_sources(
    mode: Mode | None, raw: Mapping, path: str, problems: list[Problem]
) -> list[Source]:
    """The sources of a block; ``mode`` None (an invalid mode): checked against every mode."""
    every = dict.fromkeys(f for m in Mode for f in FIELDS[m])
    allowed = comma_list([*(FIELDS[mode] if mode else every), "@<custom_field_slug>"])
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
            choices = comma_list(linkable) or "none for this mode"
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
            Problem(f"{where}.{unknown}", f"unknown key, expected one of {comma_list(LINK_KEYS)}")
        )
        ok = False
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        problems.append(
            Problem(f"{where}.model", f"got {model!r}, expected the name of a synced model")
        )
        ok = False
    columns = string_list(
        spec.get("column"),
        f"{where}.column",
        "the column (or list of columns) holding the linked model's key",
        problems,
    )
    if not ok or not columns:
        return None
    return Link(model=model, columns=columns)
