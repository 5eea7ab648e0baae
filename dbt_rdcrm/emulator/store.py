"""In-memory records (contacts, organizations, deals), custom field definitions, deal products
and webhooks, behind one lock; reference data lives in :mod:`.reference`.

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

from dbt_rdcrm.emulator import custom_fields as cf
from dbt_rdcrm.emulator.fixtures import RECORD_SECTIONS, FixtureError
from dbt_rdcrm.emulator.reference import Reference
from dbt_rdcrm.emulator.schemas import ENTITIES, is_object_id
from dbt_rdcrm.emulator.shapes import BLANK, apply_payload, clean, finish_deal
from dbt_rdcrm.emulator.validation import ValidationFailed, required_problems, validate

RESOURCES = ("contacts", "organizations", "deals")
DUPLICATE_ORGANIZATION = "Nome Empresa já cadastrada."
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


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
        self.lock = threading.Lock()
        self.started = iso_timestamp(int(clock() * 1000))
        self.reference = Reference(fixtures, self.started)
        self._records: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._org_names: dict[str, str] = {}  # casefolded name -> id
        self.fields: dict[str, dict[str, Any]] = {}  # custom field definitions by id
        self._id_random = os.urandom(5).hex()
        self._counter = int.from_bytes(os.urandom(3), "big")
        self._last_ms = 0
        self.reset()

    def reset(self) -> None:
        """Back to the fixtures; raises FixtureError if their records break the API's rules."""
        with self.lock:
            for records in self._records.values():
                records.clear()
            self._org_names.clear()
            self.fields = {
                entry["id"]: cf.from_fixture(entry, order, self.started)
                for order, entry in enumerate(self._fixtures["custom_fields"])
            }
            problems = self._seed()
        if problems:
            raise FixtureError(problems)

    # --- the account as validation sees it (lock held) ----------------------------------------

    def exists(self, kind: str, record_id: str) -> bool:
        if kind in self._records:
            return record_id in self._records[kind]
        return record_id in self.reference.ids[kind]

    def stage_pipeline(self, stage_id: str) -> str | None:
        return self.reference.stage_pipeline.get(stage_id)

    def custom_fields(self, entity: str) -> dict[str, dict[str, Any]]:
        return {d["slug"]: d for d in self.fields.values() if d["entity"] == entity}

    def value_taken(self, entity: str, slug: str, value: Any, own_id: str | None) -> bool:
        resource = {v: k for k, v in ENTITIES.items()}.get(entity)
        return resource is not None and any(
            record["custom_fields"].get(slug) == value
            for record_id, record in self._records[resource].items()
            if record_id != own_id
        )

    # --- records --------------------------------------------------------------------------

    def create(self, resource: str, payload: Mapping[str, Any], *, owner_id: str) -> dict[str, Any]:
        with self.lock:
            self._check(resource, payload, "create", None)
            self._check_unique_name(resource, payload, None)
            return self._insert(resource, payload, self._new_id(), owner_id, None)

    def update(self, resource: str, record_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            current = self._records[resource].get(record_id)
            if current is None:
                raise NotFound(record_id)
            self._check(resource, payload, "update", record_id)
            self._check_unique_name(resource, payload, record_id)
            record = apply_payload(current, clean(resource, payload))
            now = self._timestamp()
            if resource == "deals":
                finish_deal(record, payload, current, self.reference, now)
            errors = required_problems(ENTITIES[resource], record, self, payload)
            if errors:
                raise ValidationFailed(errors)
            self._learn_options(resource, payload)
            record["updated_at"] = now
            self._put(resource, record, previous=current)
            return record

    def delete(self, resource: str, record_id: str) -> None:
        """Remove a record, as a user deleting it in the CRM's UI would (v2 has no DELETE);
        references to it from other records are left as they are."""
        with self.lock:
            record = self._records[resource].pop(record_id, None)
            if record is None:
                raise NotFound(record_id)
            if resource == "organizations":
                self._org_names.pop(record["name"].casefold(), None)

    def get(self, resource: str, record_id: str) -> dict[str, Any]:
        with self.lock:
            record = self._records[resource].get(record_id)
        if record is None:
            raise NotFound(record_id)
        return record

    def select(
        self, resource: str, predicate: Callable[[dict[str, Any]], bool]
    ) -> list[dict[str, Any]]:
        """Matching records in creation order (shared: do not mutate)."""
        with self.lock:
            return [record for record in self._records[resource].values() if predicate(record)]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            return {r: copy.deepcopy(list(self._records[r].values())) for r in RESOURCES}

    def timestamp(self) -> str:
        with self.lock:
            return self._timestamp()

    def new_id(self) -> str:
        """A fresh 24-hex id (lock held)."""
        return self._new_id()

    def now(self) -> str:
        """A fresh timestamp (lock held)."""
        return self._timestamp()

    # --- custom field definitions (lock held by the caller: see :mod:`.fieldstore`) ----------

    def drop_custom_field(self, definition: Mapping[str, Any]) -> None:
        """Forget a deleted field's values on every record of its entity."""
        resource = {v: k for k, v in ENTITIES.items()}.get(definition["entity"])
        if resource is None:
            return
        slug = definition["slug"]
        for record_id, record in list(self._records[resource].items()):
            if slug in record["custom_fields"]:
                values = {k: v for k, v in record["custom_fields"].items() if k != slug}
                self._records[resource][record_id] = {**record, "custom_fields": values}

    # --- internals, called with the lock held -------------------------------------------------

    def _check(self, resource: str, payload: Mapping[str, Any], mode: Any, own: str | None) -> None:
        errors = validate(resource, payload, self, mode=mode, own_id=own)
        if errors:
            raise ValidationFailed(errors)

    def _learn_options(self, resource: str, payload: Mapping[str, Any]) -> None:
        """Options new to fields with ``allow_new_option`` become part of the field."""
        values = payload.get("custom_fields") or {}
        for slug, definition in self.custom_fields(ENTITIES[resource]).items():
            added = cf.new_options(definition, values.get(slug)) if slug in values else []
            if added:
                options = definition["options"] + added
                self.fields[definition["id"]] = {**definition, "options": options}

    def _insert(
        self,
        resource: str,
        payload: Mapping[str, Any],
        record_id: str,
        owner_id: str,
        timestamps: tuple[str, str] | None,
        closed_at: str | None = None,
    ) -> dict[str, Any]:
        record = {
            "id": record_id,
            **apply_payload(copy.deepcopy(BLANK[resource]), clean(resource, payload)),
        }
        now = self._timestamp()
        record["created_at"], record["updated_at"] = timestamps or (now, now)
        if resource == "deals":
            record["owner_id"] = record["owner_id"] or owner_id
            finish_deal(record, payload, None, self.reference, closed_at or record["updated_at"])
        errors = required_problems(ENTITIES[resource], record, self)
        if errors:
            raise ValidationFailed(errors)
        self._learn_options(resource, payload)
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
        closed = payload.pop("closed_at", None) if section == "deals" else None
        problems = _seed_problems(where, record_id, created, updated, closed)
        if not problems and any(record_id in records for records in self._records.values()):
            problems.append(f"{where}.id: duplicate id {record_id}")
        for error in validate(section, payload, self, mode="seed"):
            problems.append(f"{where}.{error.path.replace('/', '.')}: {error.detail}")
        if problems:
            return problems
        try:
            self._check_unique_name(section, payload, None)
        except DuplicateName:
            return [f"{where}.name: {DUPLICATE_ORGANIZATION}"]
        owner_id = self.reference.default_user["id"]
        stamps = (created, updated) if created else None
        try:
            self._insert(section, payload, record_id, owner_id, stamps, closed)
        except ValidationFailed as exc:
            return [f"{where}.{e.path.replace('/', '.')}: {e.detail}" for e in exc.errors]
        return []


def _seed_problems(
    where: str, record_id: Any, created: Any, updated: Any, closed: Any
) -> list[str]:
    problems = []
    if not is_object_id(record_id):
        problems.append(f"{where}.id: must be a 24-character lowercase hex id, got {record_id!r}")
    for key, value in (("created_at", created), ("updated_at", updated), ("closed_at", closed)):
        if value is not None and not (isinstance(value, str) and TIMESTAMP.fullmatch(value)):
            problems.append(f"{where}.{key}: must be an ISO-8601 UTC timestamp ending in Z")
    return problems
