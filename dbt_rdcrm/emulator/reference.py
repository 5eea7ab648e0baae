"""Read-only reference data derived from the fixtures, as the API serves it, plus the lookups
validation needs (:class:`AccountView`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REFERENCE_KINDS = ("users", "pipelines", "stages", "campaigns", "segments", "custom_fields")


class Reference:
    """Users, pipelines, stages, campaigns, segments and custom field definitions."""

    def __init__(self, fixtures: Mapping[str, Any]):
        self.default_user: dict[str, Any] = dict(fixtures["users"][0])
        self.default_pipeline_id: str = fixtures["pipelines"][0]["id"]
        stages = [
            {
                "id": stage["id"],
                "name": stage["name"],
                "pipeline_id": pipeline["id"],
                "order": order,
            }
            for pipeline in fixtures["pipelines"]
            for order, stage in enumerate(pipeline["stages"], start=1)
        ]
        custom_fields = [
            {
                "id": field["id"],
                "slug": field["slug"],
                "label": field["label"],
                "entity": field["entity"],
                "type": field["type"],
                "required": field.get("required", False),
                "options": list(field.get("options") or []),
            }
            for field in fixtures["custom_fields"]
        ]
        self.lists: dict[str, list[dict[str, Any]]] = {
            "users": [
                {"id": u["id"], "name": u["name"], "email": u["email"]} for u in fixtures["users"]
            ],
            "pipelines": [{"id": p["id"], "name": p["name"]} for p in fixtures["pipelines"]],
            "stages": stages,
            "campaigns": [{"id": c["id"], "name": c["name"]} for c in fixtures["campaigns"]],
            "segments": [{"id": s["id"], "name": s["name"]} for s in fixtures["segments"]],
            "custom_fields": custom_fields,
        }
        self.ids = {
            kind: frozenset(entry["id"] for entry in entries)
            for kind, entries in self.lists.items()
        }
        self.stage_pipeline = {stage["id"]: stage["pipeline_id"] for stage in stages}
        self.first_stage = {p["id"]: p["stages"][0]["id"] for p in fixtures["pipelines"]}
        self.custom_fields: dict[str, dict[str, dict[str, Any]]] = {}
        for field in custom_fields:
            self.custom_fields.setdefault(field["entity"], {})[field["slug"]] = field

    def view(self, records: Mapping[str, Mapping[str, Any]]) -> AccountView:
        return AccountView(self, records)


class AccountView:
    """What validation may ask about the account; ``records`` is the store's live id index,
    so every call must happen with the store lock held."""

    def __init__(self, reference: Reference, records: Mapping[str, Mapping[str, Any]]):
        self._reference = reference
        self._records = records

    def exists(self, kind: str, record_id: str) -> bool:
        if kind in self._records:
            return record_id in self._records[kind]
        return record_id in self._reference.ids[kind]

    def stage_pipeline(self, stage_id: str) -> str | None:
        return self._reference.stage_pipeline.get(stage_id)

    def first_stage(self, pipeline_id: str) -> str:
        return self._reference.first_stage[pipeline_id]

    def default_pipeline(self) -> str:
        return self._reference.default_pipeline_id

    def custom_fields(self, entity: str) -> Mapping[str, Mapping[str, Any]]:
        return self._reference.custom_fields.get(entity, {})
