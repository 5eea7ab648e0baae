"""``dbt-rdcrm ls``: the declared syncs a selection picks, as the YAML declares them."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dbt_rdcrm import __version__
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.report.results import SCHEMA_VERSION


def describe(spec: SyncSpec) -> dict:
    """One sync as JSON, shaped like its ``meta.rdcrm`` block (mapping, values, links)."""
    mapping = {s.column: s.field for s in spec.sources if s.column is not None}
    values = {
        s.field: s.template if s.template is not None else s.constant
        for s in spec.sources
        if s.column is None and s.link is None
    }
    links = {s.field: {"model": s.link.model, "columns": list(s.link.columns)} for s in spec.links}
    return {
        "model": spec.model,
        "unique_id": spec.unique_id,
        "relation": spec.relation.rendered if spec.relation else None,
        "original_file_path": spec.original_file_path,
        "tags": list(spec.tags),
        "mode": spec.mode.value,
        "key": list(spec.key),
        "match": spec.match,
        "partial_success": spec.partial_success,
        "mapping": mapping,
        "values": values,
        "links": links,
    }


def to_dict(specs: list[SyncSpec], unreadable: Mapping[str, str]) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "dbt_rdcrm_version": __version__,
        "command": "ls",
        "models": [describe(spec) for spec in specs],
        "not_syncable": [
            {"model": name, "reason": why} for name, why in sorted(unreadable.items())
        ],
    }


def human_lines(specs: list[SyncSpec], unreadable: Mapping[str, str]) -> list[str]:
    """Per sync (in sync order): a header line, then its mapping, values and links."""
    lines: list[str] = []
    for spec in specs:
        info = describe(spec)
        head = f"{spec.model} ({spec.mode.value}) key: {', '.join(spec.key)}"
        if spec.match:
            head += f", match: {spec.match}"
        head += f", partial_success: {'true' if spec.partial_success else 'false'}"
        lines.append(head)
        for column, field in info["mapping"].items():
            lines.append(f"  {column} -> {field}")
        for field, value in info["values"].items():
            lines.append(f"  {field} = {json.dumps(value, ensure_ascii=False)}")
        for field, link in info["links"].items():
            lines.append(f"  {field} <- {link['model']} (by {', '.join(link['columns'])})")
    for name, why in sorted(unreadable.items()):
        lines.append(f"not syncable: {name}: {why}")
    count = len(specs)
    lines.append(f"{count} sync{'s' * (count != 1)} selected")
    return lines
