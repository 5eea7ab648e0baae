"""CRM v2 routes below ``/crm/v2``, as the reference documents them: contacts, organizations and
deals (create, get, partial update, list); custom fields (list, get, create, update, delete);
users, pipelines and their stages, campaigns, segments, sources, lost reasons and products
(list, get); products on a deal and webhooks (list, create, update, delete). Authentication,
rate limit and faults are applied before these handlers run."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from dbt_rdcrm.emulator import custom_fields as cf
from dbt_rdcrm.emulator.catalog import Catalog
from dbt_rdcrm.emulator.filters import SORTS, compile_filter
from dbt_rdcrm.emulator.listing import link_base, page_body, parse_list_query, sort_records
from dbt_rdcrm.emulator.rdql import RdqlError
from dbt_rdcrm.emulator.reference import REFERENCE_KINDS, public
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

Record = dict[str, Any]
Predicate = Callable[[Record], bool]
Select = Callable[[Predicate], list[Record]]
NO_CONTENT = Response(status=204, body=b"")
_FLAGS: dict[str, Callable[[Record], bool]] = {
    "users:is:active": lambda user: bool(user["active"]),
    "users:is:visible": lambda user: bool(user["visible"]),
    "custom_fields:is:required": cf.is_required,
    "custom_fields:is:visible": cf.is_visible,
    "products:is:visible": lambda product: bool(product["visible"]),
}


def handle(store: Store, catalog: Catalog, request: Request, path: str, user_id: str) -> Response:
    """Answer ``request``; ``path`` is relative to ``/crm/v2`` (``/contacts/…``)."""
    parts = path.strip("/").split("/")
    try:
        return _route(store, catalog, request, parts, user_id)
    except BadRequest as exc:
        return exc.response()
    except RdqlError as exc:
        return BadRequest(str(exc), "filter").response()
    except ValidationFailed as exc:
        return json_response(422, {"errors": [error.as_json() for error in exc.errors]})
    except DuplicateName:
        return json_response(400, {"detail": DUPLICATE_ORGANIZATION})
    except NotFound as exc:
        what = ENTITIES.get(parts[0], parts[0].rstrip("s"))
        return error_response(404, "NOT_FOUND", f"{what} {exc.args[0]} not found")


def _route(
    store: Store, catalog: Catalog, request: Request, parts: list[str], user_id: str
) -> Response:
    def ok(data: Record, status: int = 200) -> Response:
        return json_response(status, {"data": data})

    match request.method, parts:
        case "GET", [resource] if resource in RESOURCES:
            return _records(store, catalog, resource, request)
        case "POST", [resource] if resource in RESOURCES:
            return ok(store.create(resource, _data(request), owner_id=user_id), 201)
        case "GET", [resource, record_id] if resource in RESOURCES:
            return ok(store.get(resource, record_id))
        case "PUT", [resource, record_id] if resource in RESOURCES:
            return ok(store.update(resource, record_id, _data(request)))
        case "GET", ["custom_fields"]:
            return _list(request, "custom_fields", catalog.fields)
        case "POST", ["custom_fields"]:
            return ok(catalog.create_field(_data(request)), 201)
        case "GET", ["custom_fields", field_id]:
            return ok(catalog.field(field_id))
        case "PUT", ["custom_fields", field_id]:
            return ok(catalog.update_field(field_id, _data(request)))
        case "DELETE", ["custom_fields", field_id]:
            catalog.delete_field(field_id)
            return NO_CONTENT
        case "GET", [kind] if kind in REFERENCE_KINDS:
            entries = store.reference.lists[kind]
            slugs = _slugs(catalog, "product") if kind == "products" else ()
            return _list(request, kind, lambda match: [e for e in entries if match(e)], slugs)
        case "GET", [kind, entry_id] if kind in REFERENCE_KINDS:
            entry = store.reference.ids[kind].get(entry_id)
            if entry is None:
                raise NotFound(entry_id)
            return ok(public(kind, entry))
        case "GET", ["pipelines", pipeline_id, "stages", *rest] if len(rest) <= 1:
            stages = store.reference.stages.get(pipeline_id)
            if stages is None:
                raise NotFound(pipeline_id)
            if not rest:
                return _list(request, "stages", lambda match: [s for s in stages if match(s)])
            stage = next((s for s in stages if s["id"] == rest[0]), None)
            if stage is None:
                raise NotFound(rest[0])
            return ok(stage)
        case "GET", ["deals", deal_id, "products"]:
            return _list(request, "deal_products", lambda m: catalog.deal_products(deal_id, m))
        case "POST", ["deals", deal_id, "products"]:
            return ok(catalog.add_deal_product(deal_id, _data(request)), 201)
        case "PUT", ["deals", deal_id, "products", item_id]:
            return ok(catalog.update_deal_product(deal_id, item_id, _data(request)))
        case "DELETE", ["deals", deal_id, "products", item_id]:
            catalog.delete_deal_product(deal_id, item_id)
            return NO_CONTENT
        case "GET", ["webhooks"]:
            return _list(request, "webhooks", catalog.webhooks)
        case "POST", ["webhooks"]:
            return ok(catalog.create_webhook(_data(request)), 201)
        case "GET", ["webhooks", webhook_id]:
            return ok(catalog.webhook(webhook_id))
        case "PUT", ["webhooks", webhook_id]:
            return ok(catalog.update_webhook(webhook_id, _data(request)))
        case "DELETE", ["webhooks", webhook_id]:
            catalog.delete_webhook(webhook_id)
            return NO_CONTENT
    return gateway_not_found()


def _records(store: Store, catalog: Catalog, resource: str, request: Request) -> Response:
    products = catalog.all_product_ids() if resource == "deals" else {}

    def values(record: Record, field: str) -> list[Any]:
        if field == "product_ids":
            return list(products.get(record["id"], []))
        return field_values(resource, record, field)

    def flag(record: Record, name: str) -> bool:  # deals: has:product
        return bool(products.get(record["id"]))

    select: Select = lambda match: store.select(resource, match)  # noqa: E731
    slugs = _slugs(catalog, ENTITIES[resource])
    return _list(request, resource, select, slugs, values, flag)


def _slugs(catalog: Catalog, entity: str) -> list[str]:
    return [d["slug"] for d in catalog.fields(lambda d: d["entity"] == entity)]


def _list(
    request: Request,
    kind: str,
    select: Select,
    slugs: Collection[str] = (),
    values: Callable[[Record, str], list[Any]] | None = None,
    flag: Callable[[Record, str], bool] | None = None,
) -> Response:
    query = parse_list_query(request.query)

    def kind_flag(record: Record, name: str) -> bool:
        return _FLAGS[f"{kind}:{name}"](record)

    matches = compile_filter(
        query.filter,
        kind,
        slugs,
        values or (lambda record, field: field_values(kind, record, field)),
        flag or kind_flag,
    )
    records = sort_records(select(matches), query.sort, SORTS.get(kind, frozenset()))
    base = link_base(request.host, request.path.removeprefix("/crm/v2"))
    body = page_body(records, query, base)
    body["data"] = [public(kind, record) for record in body["data"]]
    return json_response(200, body)


def field_values(resource: str, record: Record, field: str) -> list[Any]:
    """The values a filter on ``field`` looks at (empty when the field is unset): a contact's
    ``email``/``phone`` look at every address and phone; custom fields are ``@slug``."""
    if field.startswith("@"):
        value = (record.get("custom_fields") or {}).get(field[1:])
    elif resource == "contacts" and field in ("email", "phone"):
        return [item.get(field) for item in record.get(f"{field}s") or []]
    else:
        value = record.get(field)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _data(request: Request) -> dict[str, Any]:
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
