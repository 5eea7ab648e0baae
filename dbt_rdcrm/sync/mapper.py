"""Rows to v2 payloads: pure functions, no I/O.

A value that the CRM would surely refuse raises :class:`RowRejected` with a reason that names the
field and the problem, never the value (rows may hold personal data).
"""

from __future__ import annotations

from collections.abc import Mapping

import jinja2

from dbt_rdcrm.config.fields import RECORD_ID, Kind, Mode
from dbt_rdcrm.config.specs import Source, SyncSpec
from dbt_rdcrm.config.templates import TemplateRefused
from dbt_rdcrm.config.values import RowRejected, convert
from dbt_rdcrm.errors import ConfigError, Problem

__all__ = ["RowRejected", "build_payload", "check_create", "convert", "raw_value"]

TEMPLATE_ERRORS = (
    jinja2.TemplateError,
    ArithmeticError,
    AttributeError,
    LookupError,
    TypeError,
    ValueError,
)


def _render(source: Source, row: Mapping[str, object]) -> object:
    try:
        text = source.renderer.render(row)
    except TemplateRefused as exc:  # the config asks for something unsafe: no row can pass
        raise ConfigError(
            [Problem(source.path, f"template refused by the sandbox: {exc}")]
        ) from None
    except TEMPLATE_ERRORS as exc:  # what a template may raise on one row's values
        raise RowRejected(
            f"template for {source.field} failed: {type(exc).__name__}", source.field
        ) from None
    return text or None


def raw_value(source: Source, row: Mapping[str, object], link_ids: Mapping[str, str | None]):
    if source.column is not None:
        return row.get(source.column)
    if source.link is not None:
        return link_ids.get(source.field)
    if source.template is not None:
        return _render(source, row)
    return source.constant


def build_payload(
    spec: SyncSpec, row: Mapping[str, object], link_ids: Mapping[str, str | None] | None = None
) -> tuple[dict, str | None]:
    """The v2 ``data`` object for ``row`` and the CRM id it targets (from ``_id``), if any.

    NULL values are left out (the CRM keeps what it has); custom fields go under ``custom_fields``.
    """
    link_ids = link_ids or {}
    data: dict[str, object] = {}
    custom: dict[str, object] = {}
    record_id: str | None = None
    for source in spec.sources:
        value = raw_value(source, row, link_ids)
        if value is None:
            continue
        shaped = convert(source.definition, value)
        if source.field == RECORD_ID:
            record_id = shaped
        elif source.definition.kind is Kind.CUSTOM:
            custom[source.field[1:]] = shaped
        elif isinstance(shaped, list) and not shaped and source.definition.kind is not Kind.CUSTOM:
            continue  # an empty list column: nothing to send
        else:
            data[source.definition.payload_key] = shaped
    if custom:
        data["custom_fields"] = custom
    return data, record_id


def check_create(mode: Mode, data: Mapping[str, object]) -> None:
    """Rules the CRM enforces only on create."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RowRejected("name is required to create a record", "name")
    if mode is Mode.DEALS and data.get("status", "ongoing") != "ongoing":
        raise RowRejected("deals can only be created with status ongoing", "status")
