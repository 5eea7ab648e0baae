"""What the account holds besides contacts, organizations and deals, and may change: custom
field definitions (``crm-v2-create-custom-field``, ``crm-v2-update-custom-field``,
``crm-v2-delete-custom-field``), products on deals and webhooks. Shares the store's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dbt_rdcrm.emulator import custom_fields as cf
from dbt_rdcrm.emulator import subresources as sub
from dbt_rdcrm.emulator.schemas import problem
from dbt_rdcrm.emulator.store import NotFound, Store
from dbt_rdcrm.emulator.validation import ValidationFailed

Predicate = Callable[[dict[str, Any]], bool]


class Catalog:
    def __init__(self, store: Store):
        self._store = store
        self._deal_products: dict[str, dict[str, dict[str, Any]]] = {}  # deal id -> items
        self._webhooks: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        with self._store.lock:
            self._deal_products.clear()
            self._webhooks.clear()

    # --- custom fields ------------------------------------------------------------------------

    def fields(self, predicate: Predicate) -> list[dict[str, Any]]:
        with self._store.lock:
            return [d for d in self._store.fields.values() if predicate(d)]

    def field(self, field_id: str) -> dict[str, Any]:
        with self._store.lock:
            return _found(self._store.fields.get(field_id), field_id)

    def create_field(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        store = self._store
        with store.lock:
            taken = {(d["entity"], d["slug"]) for d in store.fields.values()}
            _raise(cf.definition_problems(payload, None, taken))
            order = len(store.fields)
            definition = cf.new_definition(payload, store.new_id(), order, store.now())
            store.fields[definition["id"]] = definition
            return definition

    def update_field(self, field_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        store = self._store
        with store.lock:
            current = _found(store.fields.get(field_id), field_id)
            others = (d for d in store.fields.values() if d["id"] != field_id)
            taken = {(d["entity"], d["slug"]) for d in others}
            if "slug" in payload and payload["slug"] != current["slug"]:
                _raise(problem("slug", "INVALID_VALUE", "slug cannot be changed"))
            _raise(cf.definition_problems(payload, current, taken))
            merged = {**current, **{k: v for k, v in payload.items() if k in current}}
            merged.pop("id")
            updated = cf.new_definition(merged, field_id, current["order"], current["created_at"])
            updated["updated_at"] = store.now()
            store.fields[field_id] = updated
            return updated

    def delete_field(self, field_id: str) -> None:
        store = self._store
        with store.lock:
            definition = _found(store.fields.pop(field_id, None), field_id)
            store.drop_custom_field(definition)

    # --- products on a deal -------------------------------------------------------------------

    def deal_products(self, deal_id: str, predicate: Predicate) -> list[dict[str, Any]]:
        self._store.get("deals", deal_id)  # NotFound for an unknown deal
        with self._store.lock:
            return [i for i in self._deal_products.get(deal_id, {}).values() if predicate(i)]

    def all_product_ids(self) -> dict[str, list[str]]:
        """Deal id → the catalog products on it (for ``product_ids:`` and ``has:product``)."""
        with self._store.lock:
            return {
                deal_id: [item["product_id"] for item in items.values()]
                for deal_id, items in self._deal_products.items()
                if items
            }

    def add_deal_product(self, deal_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        self._store.get("deals", deal_id)
        products = self._store.reference.ids["products"]
        _raise(sub.deal_product_problems(payload, products, create=True))
        store = self._store
        with store.lock:
            item = sub.deal_product(payload, None, products[payload["product_id"]]["price"])
            now = store.now()
            stamps = {"id": store.new_id(), "created_at": now, "updated_at": now}
            item = sub.in_order({**item, **stamps}, sub.ITEM_KEYS)
            self._deal_products.setdefault(deal_id, {})[item["id"]] = item
            return item

    def update_deal_product(
        self, deal_id: str, item_id: str, payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        self._store.get("deals", deal_id)
        products = self._store.reference.ids["products"]
        _raise(sub.deal_product_problems(payload, products, create=False))
        store = self._store
        with store.lock:
            items = self._deal_products.get(deal_id, {})
            current = _found(items.get(item_id), item_id)
            item = {**sub.deal_product(payload, current, None), "updated_at": store.now()}
            items[item_id] = item
            return item

    def delete_deal_product(self, deal_id: str, item_id: str) -> None:
        self._store.get("deals", deal_id)
        with self._store.lock:
            _found(self._deal_products.get(deal_id, {}).pop(item_id, None), item_id)

    # --- webhooks -----------------------------------------------------------------------------

    def webhooks(self, predicate: Predicate) -> list[dict[str, Any]]:
        with self._store.lock:
            return [w for w in self._webhooks.values() if predicate(w)]

    def webhook(self, webhook_id: str) -> dict[str, Any]:
        with self._store.lock:
            return _found(self._webhooks.get(webhook_id), webhook_id)

    def create_webhook(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        _raise(sub.webhook_problems(payload, create=True))
        with self._store.lock:
            now = self._store.now()
            stamps = {"created_at": now, "updated_at": now}
            item = sub.in_order({**sub.webhook(payload, None), **stamps}, sub.WEBHOOK_KEYS)
            self._webhooks[item["id"]] = item
            return item

    def update_webhook(self, webhook_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        _raise(sub.webhook_problems(payload, create=False))
        with self._store.lock:
            current = _found(self._webhooks.get(webhook_id), webhook_id)
            item = {**sub.webhook(payload, current), "updated_at": self._store.now()}
            self._webhooks[webhook_id] = item
            return item

    def delete_webhook(self, webhook_id: str) -> None:
        with self._store.lock:
            _found(self._webhooks.pop(webhook_id, None), webhook_id)


def _found(item: dict[str, Any] | None, item_id: str) -> dict[str, Any]:
    if item is None:
        raise NotFound(item_id)
    return item


def _raise(errors: list[Any]) -> None:
    if errors:
        raise ValidationFailed(errors)
