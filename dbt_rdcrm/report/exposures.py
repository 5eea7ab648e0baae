"""``dbt-rdcrm exposures``: one dbt exposure per declared sync, so the DAG (``dbt docs``,
``dbt ls -s +exposure:...``) shows each sync downstream of its model. Pure: specs in, YAML out.
"""

from __future__ import annotations

import yaml

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.dbt.manifest import ModelNode
from dbt_rdcrm.dbt.staleness import EXPOSURES_MARK

HEADER = f"""\
{EXPOSURES_MARK}: one exposure per declared RD Station CRM sync.
# Do not edit: run `dbt-rdcrm exposures` again after changing meta.rdcrm (in CI,
# `dbt-rdcrm exposures --check` fails when this file is out of step).
"""


def exposure_name(spec: SyncSpec) -> str:
    return f"rdcrm_{spec.model}_{spec.mode.value}"


def _ref(node: ModelNode, project_name: str | None) -> str:
    args = [repr(node.name)]
    if node.package_name and node.package_name != project_name:
        args.insert(0, repr(node.package_name))
    if node.version is not None and not node.is_latest:
        args.append(f"v={node.version!r}")
    return f"ref({', '.join(args)})"


def exposures_yaml(
    specs: list[SyncSpec], nodes: dict[str, ModelNode], project_name: str | None
) -> str:
    """The exposures file for ``specs`` (sorted by model, so the text is stable)."""
    exposures = []
    for spec in sorted(specs, key=lambda s: s.model):
        key = ", ".join(spec.key)
        exposures.append(
            {
                "name": exposure_name(spec),
                "label": f"RD Station CRM: {spec.model} -> {spec.mode.value}",
                "type": "application",
                "description": (
                    f"`dbt-rdcrm sync` writes each row of {spec.model} to RD Station CRM as "
                    f"{spec.mode.value} (key: {key})."
                ),
                "owner": {"name": "dbt-rdcrm"},
                "depends_on": [_ref(nodes[spec.model], project_name)],
                "meta": {"rdcrm": {"model": spec.model, "mode": spec.mode.value}},
            }
        )
    body = yaml.safe_dump(
        {"version": 2, "exposures": exposures}, sort_keys=False, allow_unicode=True, width=100
    )
    return HEADER + body
