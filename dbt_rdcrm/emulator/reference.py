"""Read-only account data derived from the fixtures, in the shapes the reference pages document:
users (``crm-v2-list-users``), pipelines (``crm-v2-list-pipelines``), their stages
(``crm-v2-list-stages-from-pipeline``), campaigns, segments, sources, lost reasons and products.
Every entry carries ``created_at``/``updated_at`` (the time the emulator started).

Users also keep ``active``/``visible`` (default true) for ``is:active``/``is:visible``; the
reference does not list them among a user's fields, so responses leave them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REFERENCE_KINDS = (
    "users",
    "pipelines",
    "campaigns",
    "segments",
    "sources",
    "lost_reasons",
    "products",
)
HIDDEN = {"users": ("active", "visible")}


class Reference:
    def __init__(self, fixtures: Mapping[str, Any], stamp: str):
        def stamped(entry: dict[str, Any]) -> dict[str, Any]:
            return {**entry, "created_at": stamp, "updated_at": stamp}

        self.default_user: dict[str, Any] = dict(fixtures["users"][0])
        self.default_pipeline_id: str = fixtures["pipelines"][0]["id"]
        self.stages: dict[str, list[dict[str, Any]]] = {
            pipeline["id"]: [
                stamped(
                    {
                        "id": stage["id"],
                        "name": stage["name"],
                        "description": stage.get("description"),
                        "objective": stage.get("objective"),
                        "order": order,
                    }
                )
                for order, stage in enumerate(pipeline["stages"], start=1)
            ]
            for pipeline in fixtures["pipelines"]
        }
        users = [
            stamped(
                {
                    "id": u["id"],
                    "name": u["name"],
                    "email": u["email"],
                    "phone": u.get("phone"),
                    "active": u.get("active", True),
                    "visible": u.get("visible", True),
                }
            )
            for u in fixtures["users"]
        ]
        pipelines = [
            stamped(
                {
                    "id": p["id"],
                    "name": p["name"],
                    "order": order,
                    "stage_ids": [s["id"] for s in p["stages"]],
                }
            )
            for order, p in enumerate(fixtures["pipelines"], start=1)
        ]
        self.lists: dict[str, list[dict[str, Any]]] = {
            "users": users,
            "pipelines": pipelines,
            "campaigns": [
                stamped({"id": c["id"], "name": c["name"], "description": c.get("description")})
                for c in fixtures["campaigns"]
            ],
            "segments": [stamped({"id": s["id"], "name": s["name"]}) for s in fixtures["segments"]],
            "sources": [
                stamped({"id": s["id"], "name": s["name"], "description": s.get("description")})
                for s in fixtures["sources"]
            ],
            "lost_reasons": [
                stamped({"id": r["id"], "name": r["name"]}) for r in fixtures["lost_reasons"]
            ],
            "products": [
                stamped(
                    {
                        "id": p["id"],
                        "name": p["name"],
                        "description": p.get("description"),
                        "price": p.get("price"),
                        "visible": p.get("visible", True),
                        "custom_fields": dict(p.get("custom_fields") or {}),
                    }
                )
                for p in fixtures["products"]
            ],
        }
        self.ids = {kind: {e["id"]: e for e in entries} for kind, entries in self.lists.items()}
        self.ids["stages"] = {s["id"]: s for stages in self.stages.values() for s in stages}
        self.stage_pipeline = {
            stage["id"]: pipeline_id
            for pipeline_id, stages in self.stages.items()
            for stage in stages
        }

    def first_stage(self, pipeline_id: str) -> str:
        return self.stages[pipeline_id][0]["id"]


def public(kind: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as the API returns it."""
    hidden = HIDDEN.get(kind, ())
    return {key: value for key, value in entry.items() if key not in hidden}
