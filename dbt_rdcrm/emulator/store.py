"""In-memory records (contacts, organizations, deals) and reference data, behind one lock.

Records are copy-on-write: an update stores a new dict and never mutates the old one, so a
record handed out by :meth:`Store.select` can be serialized after the lock is released.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from dbt_rdcrm.emulator.fields import is_object_id
from dbt_rdcrm.emulator.fixtures import RECORD_SECTIONS, FixtureError
from dbt_rdcrm.emulator.reference import Reference
from dbt_rdcrm.emulator.validation import ValidationFailed, validate

RESOURCES = ("contacts", "organizations", "deals")
DUPLICATE_ORGANIZATION = "Nome Empresa já cadastrada."
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")

_BLANK: dict[str, dict[str, Any]] = {
    "contacts": {
        "name": None,
        "job_title": None,
        "birthday": None,
        "organization_id": None,
        "emails": [],
        "phones": [],
        "custom_fields": {},
    },
    "organizations": {
        "name": None,
        "url": None,
        "description": None,
        "phones": [],
        "owner_id": None,
        "segment_ids": [],
        "custom_fields": {},
    },
    "deals": {
        "name": None,
        "status": "ongoing",
        "contact_ids": [],
        "organization_id": None,
        "pipeline_id": None,
        "stage_id": None,
        "owner_id": None,
        "campaign_id": None,
        "expected_close_date": None,
        "rating": None,
        "one_time_price": None,
        "recurrence_price": None,
        "custom_fields": {},
    },
}


class NotFound(LookupError):
    pass


class DuplicateName(ValueError):
    """An organization with this name (case-insensitive) already exists."""


def iso_timestamp(epoch_ms: int) -> str:
    """``2026-11-27T21:40:00.123Z`` for a count of milliseconds since the epoch."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, tz=timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


class Store:
    def __init__(self, fixtures: Mapping[str, Any], clock: Callable[[], float]):
        self._fixtures = fixtures
        self._clock = clock
        self._lock = threading.Lock()
        self.reference = Reference(fixtures)
        self._records: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._org_names: dict[str, str] = {}  # casefolded name -> id
        self._world = self.reference.view(self._records)
        self._id_random = os.urandom(5).hex()
        self._counter = int.from_bytes(os.urandom(3), "big")
        self._last_ms = 0
        self.reset()

    def reset(self) -> None:
        """Back to the fixtures' records; raises FixtureError if they break the API's rules."""
        with self._lock:
            for records in self._records.values():
                records.clear()
            self._org_names.clear()
            problems = self._seed()
        if problems:
            raise FixtureError(problems)

    def create(self, resource: str, payload: Mapping[str, Any], *, owner_id: str) -> dict[str, Any]:
        with self._lock:
            errors = validate(resource, payload, self._world, mode="create")
            if errors:
                raise ValidationFailed(errors)
            self._check_unique_name(resource, payload, None)
            return self._insert(resource, payload, self._new_id(), owner_id, None)

    def update(self, resource: str, record_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            current = self._records[resource].get(record_id)
            if current is None:
                raise NotFound(record_id)
            errors = validate(resource, payload, self._world, mode="update")
            if errors:
                raise ValidationFailed(errors)
            self._check_unique_name(resource, payload, record_id)
            record = _apply(current, payload)
            if resource == "deals":
                record["pipeline_id"], record["stage_id"] = self._stage_for(payload, current)
            record["updated_at"] = self._timestamp()
            self._put(resource, record, previous=current)
            return record

    def delete(self, resource: str, record_id: str) -> None:
        """Remove a record, as a user deleting it in the CRM's UI would (v2 has no DELETE);
        references to it from other records are left as they are."""
        with self._lock:
            record = self._records[resource].pop(record_id, None)
            if record is None:
                raise NotFound(record_id)
            if resource == "organizations":
                self._org_names.pop(record["name"].casefold(), None)

    def get(self, resource: str, record_id: str) -> dict[str, Any]:
        with self._lock:
            record = self._records[resource].get(record_id)
        if record is None:
            raise NotFound(record_id)
        return record

    def select(
        self, resource: str, predicate: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        """Matching records in creation order (shared: do not mutate)."""
        with self._lock:
            return [record for record in self._records[resource].values() if predicate(record)]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {r: copy.deepcopy(list(self._records[r].values())) for r in RESOURCES}

    def timestamp(self) -> str:
        with self._lock:
            return self._timestamp()

    # --- internals, called with the lock held -------------------------------------------------

    def _insert(
        self,
        resource: str,
        payload: Mapping[str, Any],
        record_id: str,
        owner_id: str,
        timestamps: tuple[str, str] | None,
    ) -> dict[str, Any]:
        record = {"id": record_id, **_apply(copy.deepcopy(_BLANK[resource]), payload)}
        if resource == "deals":
            record["status"] = record["status"] or "ongoing"
            record["owner_id"] = record["owner_id"] or owner_id
            record["pipeline_id"], record["stage_id"] = self._stage_for(payload, None)
        now = self._timestamp()
        record["created_at"], record["updated_at"] = timestamps or (now, now)
        self._put(resource, record, previous=None)
        return record

    def _put(self, resource: str, record: dict[str, Any], previous: dict[str, Any] | None) -> None:
        self._records[resource][record["id"]] = record
        if resource == "organizations":
            if previous is not None:
                self._org_names.pop(previous["name"].casefold(), None)
            self._org_names[record["name"].casefold()] = record["id"]

    def _check_unique_name(
        self, resource: str, payload: Mapping[str, Any], own_id: str | None
    ) -> None:
        if resource != "organizations" or "name" not in payload:
            return
        holder = self._org_names.get(payload["name"].casefold())
        if holder is not None and holder != own_id:
            raise DuplicateName(payload["name"])

    def _stage_for(
        self, payload: Mapping[str, Any], current: Mapping[str, Any] | None
    ) -> tuple[str, str]:
        """Pipeline and stage of a deal: a stage alone brings its pipeline; a pipeline alone keeps
        the current stage if it belongs to it, else takes the pipeline's first stage."""
        world = self._world
        pipeline_id, stage_id = payload.get("pipeline_id"), payload.get("stage_id")
        if stage_id:
            return world.stage_pipeline(stage_id) or "", stage_id
        if pipeline_id:
            if current is not None and current["pipeline_id"] == pipeline_id:
                return pipeline_id, current["stage_id"]
            return pipeline_id, world.first_stage(pipeline_id)
        if current is not None:
            return current["pipeline_id"], current["stage_id"]
        default = world.default_pipeline()
        return default, world.first_stage(default)

    def _new_id(self) -> str:
        """ObjectId-like: 4 bytes of seconds, 5 random bytes, a 3-byte counter."""
        while True:
            self._counter = (self._counter + 1) % 0x1000000
            seconds = int(self._clock()) & 0xFFFFFFFF
            record_id = f"{seconds:08x}{self._id_random}{self._counter:06x}"
            if not any(record_id in records for records in self._records.values()):
                return record_id

    def _timestamp(self) -> str:
        """Now, strictly after every timestamp handed out before (so order is meaningful)."""
        self._last_ms = max(int(self._clock() * 1000), self._last_ms + 1)
        return iso_timestamp(self._last_ms)

    def _seed(self) -> list[str]:
        """Insert the fixtures' records with the API's rules; the problems of those refused."""
        problems: list[str] = []
        for section in RECORD_SECTIONS:
            for i, raw in enumerate(self._fixtures.get(section, [])):
                problems += self._seed_one(section, f"{section}[{i}]", copy.deepcopy(raw))
        return problems

    def _seed_one(self, section: str, where: str, payload: dict[str, Any]) -> list[str]:
        record_id = payload.pop("id", None) or self._new_id()
        created, updated = payload.pop("created_at", None), payload.pop("updated_at", None)
        created, updated = created or updated, updated or created
        problems = _seed_problems(where, record_id, created, updated)
        if not problems and any(record_id in records for records in self._records.values()):
            problems.append(f"{where}.id: duplicate id {record_id}")
        for error in validate(section, payload, self._world, mode="seed"):
            problems.append(f"{where}.{error.path.replace('/', '.')}: {error.detail}")
        if problems:
            return problems
        try:
            self._check_unique_name(section, payload, None)
        except DuplicateName:
            return [f"{where}.name: {DUPLICATE_ORGANIZATION}"]
        owner_id = self.reference.default_user["id"]
        self._insert(section, payload, record_id, owner_id, (created, updated) if created else None)
        return []


def _seed_problems(where: str, record_id: Any, created: Any, updated: Any) -> list[str]:
    problems = []
    if not is_object_id(record_id):
        problems.append(f"{where}.id: must be a 24-character lowercase hex id, got {record_id!r}")
    for key, value in (("created_at", created), ("updated_at", updated)):
        if value is not None and not (isinstance(value, str) and TIMESTAMP.fullmatch(value)):
            problems.append(f"{where}.{key}: must be an ISO-8601 UTC timestamp ending in Z")
    return problems


def _apply(base: Mapping[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    """A new record: ``base`` with the payload's keys; lists replaced, custom fields merged,
    ``null`` clearing a field (lists become empty, custom field keys are removed)."""
    record = dict(base)
    for key, value in payload.items():
        if key == "custom_fields":
            merged = {**base.get("custom_fields", {}), **value}
            record[key] = {slug: v for slug, v in merged.items() if v is not None}
        elif value is None and isinstance(base.get(key), list):
            record[key] = []
        else:
            record[key] = value
    return record
