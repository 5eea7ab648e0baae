"""Each sync's column names resolved against its relation in the warehouse."""

from __future__ import annotations

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.errors import ConfigError, Problem


def resolve_columns(specs: list[SyncSpec], warehouse) -> dict[str, dict[str, str]]:
    """Each spec's column names mapped to the relation's real names; every problem at once."""
    problems: list[Problem] = []
    resolved: dict[str, dict[str, str]] = {}
    for spec in specs:
        rel = spec.relation
        columns = warehouse.get_columns(rel.database, rel.schema, rel.identifier)
        if columns is None:
            problems.append(
                Problem(
                    f"models.{spec.model}",
                    f"relation {rel.rendered} does not exist: build the model "
                    f"first (dbt build -s {spec.model})",
                )
            )
            continue
        actual = {c.name.lower(): c.name for c in columns}
        resolved[spec.model] = {}
        for column in spec.columns:
            if column.lower() in actual:
                resolved[spec.model][column] = actual[column.lower()]
                continue
            where = next((s.path for s in spec.sources if column in s.columns), f"{spec.path}.key")
            problems.append(
                Problem(
                    where,
                    f"column {column!r} not found in {rel.rendered} "
                    f"(columns: {', '.join(c.name for c in columns)})",
                )
            )
    if problems:
        raise ConfigError(problems)
    return resolved
