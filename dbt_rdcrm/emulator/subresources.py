"""Products on a deal (``crm-v2-create-product-to-deal``) and webhooks
(``crm-v2-create-webhook``): payload checks and stored shapes.

A deal product: ``id, price, quantity, discount_type (amount|percentage), discount,
total_price, billing_frequency (one-time|monthly|annually), product_id, created_at,
updated_at``. The reference does not give the total's formula; the emulator uses
``price × quantity − discount`` (``amount``) or ``price × quantity × (1 − discount / 100)``
(``percentage``). Price defaults to the catalog product's price, quantity to 1.

A webhook: ``id`` (a UUID), ``name, event_name, http_method (POST), url, status
(active|suspended|inactive)``. The emulator stores webhooks but never calls them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from dbt_rdcrm.emulator.schemas import FieldError, is_number, is_object_id, problem

DISCOUNT_TYPES = ("amount", "percentage")
BILLING = ("one-time", "monthly", "annually")
EVENTS = tuple(
    f"crm_{entity}_{change}"
    for entity in ("campaign", "contact", "deal", "lost_reason", "organization", "product")
    + ("source", "task")
    for change in ("created", "deleted", "updated")
)
WEBHOOK_STATUSES = ("active", "suspended", "inactive")
# documented order of the stored shapes
ITEM_KEYS = (
    "id", "price", "quantity", "discount_type", "discount", "total_price", "billing_frequency",
    "product_id", "created_at", "updated_at",
)  # fmt: skip
WEBHOOK_KEYS = (
    "id", "name", "event_name", "http_method", "url", "status", "created_at", "updated_at",
)  # fmt: skip


def deal_product_problems(
    payload: Mapping[str, Any], products: Mapping[str, Any], *, create: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    product_id = payload.get("product_id")
    if create or "product_id" in payload:
        if not is_object_id(product_id):
            detail = "product_id must be BSON::ObjectId or is in invalid format"
            errors += problem("product_id", "INVALID_FORMAT", detail)
        elif product_id not in products:
            errors += problem("product_id", "NOT_FOUND", f"product_id {product_id} does not exist")
    for key in ("price", "quantity", "discount"):
        value = payload.get(key)
        if value is not None and not (is_number(value) and value >= 0):
            errors += problem(key, "INVALID_VALUE", f"{key} must be a number of at least 0")
    for key, choices in (("discount_type", DISCOUNT_TYPES), ("billing_frequency", BILLING)):
        if key in payload and payload[key] not in choices:
            errors += problem(key, "INVALID_VALUE", f"{key} must be one of {', '.join(choices)}")
    return errors


def deal_product(
    payload: Mapping[str, Any], current: Mapping[str, Any] | None, catalog_price: Any
) -> dict[str, Any]:
    """The stored item: ``current`` (None on create) with the payload's documented keys."""
    item = (
        dict(current)
        if current
        else {
            "price": catalog_price if is_number(catalog_price) else 0,
            "quantity": 1,
            "discount_type": "amount",
            "discount": 0,
            "billing_frequency": "one-time",
        }
    )
    for key in (
        "product_id",
        "price",
        "quantity",
        "discount_type",
        "discount",
        "billing_frequency",
    ):
        if payload.get(key) is not None:
            item[key] = payload[key]
    gross = item["price"] * item["quantity"]
    if item["discount_type"] == "percentage":
        total = gross * (1 - item["discount"] / 100)
    else:
        total = gross - item["discount"]
    item["total_price"] = round(max(total, 0), 2)
    return in_order(item, ITEM_KEYS)


def webhook_problems(payload: Mapping[str, Any], *, create: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in ("name", "url"):
        value = payload.get(key)
        if (create or key in payload) and not (isinstance(value, str) and value.strip()):
            errors += problem(key, "REQUIRED", f"{key} can't be blank")
    url = payload.get("url")
    if isinstance(url, str) and url.strip() and not url.startswith(("https://", "http://")):
        errors += problem("url", "INVALID_FORMAT", "url must be an http(s) URL")
    for key, choices in (
        ("event_name", EVENTS),
        ("http_method", ("POST",)),
        ("status", WEBHOOK_STATUSES),
    ):
        wanted = (create and key == "event_name") or key in payload
        if wanted and payload.get(key) not in choices:
            errors += problem(key, "INVALID_VALUE", f"{key} must be one of {', '.join(choices)}")
    return errors


def webhook(payload: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    item = dict(current) if current else {"id": str(uuid.uuid4()), "http_method": "POST"}
    item.setdefault("status", "active")
    for key in ("name", "event_name", "http_method", "url", "status"):
        if key in payload:
            item[key] = payload[key]
    return in_order(item, WEBHOOK_KEYS)


def in_order(item: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``item`` with its keys in the documented order."""
    return {key: item[key] for key in keys if key in item}
