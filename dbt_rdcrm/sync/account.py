"""``validate --crm``: what the CRM account must hold for the declared syncs to write, checked
read-only before any sync: the custom fields they map (and their identity fields), and the ids
they set as constants (pipeline, stage, owner, campaign, source, lost reason, segments)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.crm.client import CrmError
from dbt_rdcrm.sync.preflight import AccountFields, missing_custom_fields

# constant fields that name a record of the account, and where that record is read
REFERENCES = {
    "pipeline_id": "pipelines",
    "owner_id": "users",
    "campaign_id": "campaigns",
    "source_id": "sources",
    "lost_reason_id": "lost_reasons",
    "segment_ids": "segments",
}


@dataclass(frozen=True)
class AccountProblem:
    code: str
    path: str
    message: str


def account_problems(specs: list[SyncSpec], client) -> Iterator[AccountProblem]:
    """Every problem of the account for ``specs``; one request per entity and per constant."""
    fields = AccountFields(client)
    for spec in specs:
        missing = missing_custom_fields(spec, fields)
        if missing is not None:
            yield AccountProblem(
                "crm-custom-field", spec.path, missing.removeprefix("not attempted: ")
            )
        for source in spec.sources:
            if source.constant is None or source.field not in (*REFERENCES, "stage_id"):
                continue
            for path in _paths(spec, source.field, source.constant):
                try:
                    client.request("GET", path)
                except CrmError as exc:
                    if exc.status != 404:
                        raise
                    yield AccountProblem(
                        "crm-reference",
                        source.path,
                        f"{source.field} {source.constant!r} does not exist in the CRM account "
                        f"(GET {path} answered 404)",
                    )


def _paths(spec: SyncSpec, field: str, value: object) -> list[str]:
    if field == "stage_id":
        pipeline = next(
            (s.constant for s in spec.sources if s.field == "pipeline_id" and s.constant), None
        )
        return [f"/pipelines/{pipeline}/stages/{value}"] if pipeline else []
    values = value if isinstance(value, list) else str(value).split(",")
    return [f"/{REFERENCES[field]}/{str(v).strip()}" for v in values if str(v).strip()]
