"""CRM v2 routes below ``/crm/v2``: contacts, organizations and deals (create, read, partial
update, list) and the read-only reference data. Authentication, rate limit and faults are
applied before these handlers run."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from dbt_rdcrm.emulator.listing import link_base, page_body, parse_list_query, sort_records
from dbt_rdcrm.emulator.rdql import FILTERABLE, Filter, RdqlError, compile_filter
from dbt_rdcrm.emulator.reference import REFERENCE_KINDS
from dbt_rdcrm.emulator.schemas import ENTITIES
from dbt_rdcrm.emulator.server import (
    BadRequest,
    Request,
    Response,
    error_response,
    gateway_not_found,
    json_response,
)
from dbt_rdcrm.emulator.store import (
    DUPLICATE_ORGANIZATION,
    RESOURCES,
    DuplicateName,
    NotFound,
    Store,
)
from dbt_rdcrm.emulator.validation import ValidationFailed

_VIRTUAL_FIELDS = {"email", "phone", "contact_id", "segment_ids"}
Select = Callable[[str, Filter], list[dict[str, Any]]]


def handle(store: Store, request: Request, path: str, user_id: str) -> Response:
    """Answer ``request``; ``path`` is relative to ``/crm/v2`` (``/contacts/…``)."""
    parts = path.strip("/").split("/")
    try:
        return _route(store, request, parts, user_id)
    except BadRequest as exc:
        return exc.response()
    except RdqlError as exc:
        return BadRequest(str(exc), "filter").response()


def _route(store: Store, request: Request, parts: list[str], user_id: str) -> Response:
    match request.method, parts:
        case "GET", [resource] if resource in RESOURCES:
            slugs = store.reference.custom_fields.get(ENTITIES[resource], {})
            return _list(store.select, resource, request, slugs)
        case "POST", [resource] if resource in RESOURCES:
            return _create(store, resource, _read_data(request), user_id)
        case "GET", [resource, record_id] if resource in RESOURCES:
            return _get(store, resource, record_id)
        case "PUT", [resource, record_id] if resource in RESOURCES:
            return _update(store, resource, record_id, _read_data(request))
        case "GET", [kind] if kind in REFERENCE_KINDS:
            entries = store.reference.lists[kind]
            return _list(lambda _, match: [e for e in entries if match(e)], kind, request, ())
        case "GET", ["pipelines", pipeline_id, "stages"]:
            if pipeline_id not in store.reference.ids["pipelines"]:
                return _not_found("pipeline", pipeline_id)
            stages = [s for s in store.reference.lists["stages"] if s["pipeline_id"] == pipeline_id]
            return _list(lambda _, match: [s for s in stages if match(s)], "stages", request, ())
    return gateway_not_found()


def _list(select: Select, resource: str, request: Request, slugs: Collection[str]) -> Response:
    query = parse_list_query(request.query)
    matches = compile_filter(query.filter, resource, slugs)
    sortable = (FILTERABLE[resource] - _VIRTUAL_FIELDS) | {"name", "created_at", "updated_at"}
    records = sort_records(select(resource, matches), query.sort, sortable)
    base = link_base(request.host, request.path.removeprefix("/crm/v2"))
    return json_response(200, page_body(records, query, base))


def _create(store: Store, resource: str, payload: dict[str, Any], user_id: str) -> Response:
    try:
        record = store.create(resource, payload, owner_id=user_id)
    except ValidationFailed as exc:
        return _unprocessable(exc)
    except DuplicateName:
        return json_response(400, {"detail": DUPLICATE_ORGANIZATION})
    return json_response(201, {"data": record})


def _update(store: Store, resource: str, record_id: str, payload: dict[str, Any]) -> Response:
    try:
        record = store.update(resource, record_id, payload)
    except NotFound:
        return _not_found(ENTITIES[resource], record_id)
    except ValidationFailed as exc:
        return _unprocessable(exc)
    except DuplicateName:
        return json_response(400, {"detail": DUPLICATE_ORGANIZATION})
    return json_response(200, {"data": record})


def _get(store: Store, resource: str, record_id: str) -> Response:
    try:
        return json_response(200, {"data": store.get(resource, record_id)})
    except NotFound:
        return _not_found(ENTITIES[resource], record_id)


def _read_data(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise BadRequest('the body must be a JSON object with a "data" object')
    return body["data"]


def _unprocessable(exc: ValidationFailed) -> Response:
    return json_response(422, {"errors": [error.as_json() for error in exc.errors]})


def _not_found(entity: str, record_id: str) -> Response:
    return error_response(404, "NOT_FOUND", f"{entity} {record_id} not found")
