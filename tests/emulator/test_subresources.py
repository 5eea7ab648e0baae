"""Products on a deal and webhooks: create, list, update, delete, and the deal filters that
look at products.

Reference pages: crm-v2-list-products-from-deal, crm-v2-create-product-to-deal,
crm-v2-update-product-from-deal, crm-v2-delete-product-from-deal, crm-v2-list-deals
(product_ids, has:product), crm-v2-create-webhook, crm-v2-list-webhooks,
crm-v2-delete-webhook; crm-v2-introduction (204 for DELETE).
"""

from __future__ import annotations

import pytest

from dbt_rdcrm.emulator.fixtures import DEFAULT_FIXTURES

PRODUCT = DEFAULT_FIXTURES["products"][0]
ITEM_FIELDS = [
    "id", "price", "quantity", "discount_type", "discount", "total_price", "billing_frequency",
    "product_id", "created_at", "updated_at",
]  # fmt: skip
WEBHOOK_FIELDS = [
    "id", "name", "event_name", "http_method", "url", "status", "created_at", "updated_at",
]  # fmt: skip


@pytest.fixture
def deal(api):
    return api.create("deals", {"name": "Venda com produto"})


def delete(api, path):
    return api.session.delete(api.emulator.base_url + path, timeout=5)


def test_a_product_is_added_to_a_deal_in_the_documented_shape(api, deal):
    response = api.post(
        f"/deals/{deal['id']}/products", {"product_id": PRODUCT["id"], "quantity": 2}
    )
    assert response.status_code == 201, response.text
    item = response.json()["data"]
    assert list(item) == ITEM_FIELDS
    assert (item["price"], item["total_price"], item["billing_frequency"]) == (
        PRODUCT["price"],
        2 * PRODUCT["price"],
        "one-time",
    )


@pytest.mark.parametrize(
    ("payload", "total"),
    [
        pytest.param({"price": 100, "quantity": 3, "discount": 50}, 250, id="amount-discount"),
        pytest.param({"price": 100, "quantity": 2, "discount_type": "percentage", "discount": 10}, 180, id="percentage-discount"),
    ],
)  # fmt: skip
def test_the_item_total_applies_the_discount(api, deal, payload, total):
    body = {"product_id": PRODUCT["id"], **payload}
    assert api.post(f"/deals/{deal['id']}/products", body).json()["data"]["total_price"] == total


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        pytest.param({}, "/data/product_id", id="product-id-required-422"),
        pytest.param({"product_id": "0123456789abcdef01234567"}, "/data/product_id", id="unknown-product-422"),
        pytest.param({"product_id": PRODUCT["id"], "billing_frequency": "weekly"}, "/data/billing_frequency", id="billing-frequency-enum-422"),
        pytest.param({"product_id": PRODUCT["id"], "discount_type": "free"}, "/data/discount_type", id="discount-type-enum-422"),
    ],
)  # fmt: skip
def test_a_bad_item_is_422_naming_the_field(api, deal, payload, pointer):
    response = api.post(f"/deals/{deal['id']}/products", payload)
    assert response.status_code == 422
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


def test_items_are_listed_updated_and_deleted(api, deal):
    path = f"/deals/{deal['id']}/products"
    item = api.create(path.lstrip("/"), {"product_id": PRODUCT["id"]})
    updated = api.put(f"{path}/{item['id']}", {"quantity": 5}).json()["data"]
    assert (updated["quantity"], updated["total_price"]) == (5, 5 * PRODUCT["price"])
    assert api.get(path, filter=f"product_id:{PRODUCT['id']}").json()["data"] == [updated]
    response = delete(api, f"{path}/{item['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert api.get(path).json()["data"] == []
    assert delete(api, f"{path}/{item['id']}").status_code == 404


def test_products_of_an_unknown_deal_is_404(api):
    assert api.get("/deals/0123456789abcdef01234567/products").status_code == 404


def test_deals_are_filtered_by_their_products(api, deal):
    bare = api.create("deals", {"name": "Sem produto"})
    api.post(f"/deals/{deal['id']}/products", {"product_id": PRODUCT["id"]})

    def names(rdql):
        return [d["name"] for d in api.get("/deals", filter=rdql).json()["data"]]

    assert names("has:product") == [deal["name"]]
    assert names("-has:product") == [bare["name"]]
    assert names(f"product_ids:{PRODUCT['id']}") == [deal["name"]]


def test_a_webhook_is_created_listed_read_and_deleted(api):
    payload = {
        "name": "Novos contatos",
        "event_name": "crm_contact_created",
        "url": "https://hooks.example.com/rd",
    }
    response = api.post("/webhooks", payload)
    assert response.status_code == 201, response.text
    webhook = response.json()["data"]
    assert list(webhook) == WEBHOOK_FIELDS
    assert (webhook["http_method"], webhook["status"]) == ("POST", "active")
    assert api.get("/webhooks").json()["data"] == [webhook]
    assert api.get(f"/webhooks/{webhook['id']}").json()["data"] == webhook
    paused = api.put(f"/webhooks/{webhook['id']}", {"status": "inactive"}).json()["data"]
    assert paused["status"] == "inactive"
    assert delete(api, f"/webhooks/{webhook['id']}").status_code == 204
    assert api.get(f"/webhooks/{webhook['id']}").status_code == 404


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        pytest.param({"name": "W", "url": "https://x.com"}, "/data/event_name", id="event-name-required-422"),
        pytest.param({"name": "W", "event_name": "crm_contact_merged", "url": "https://x.com"}, "/data/event_name", id="event-name-enum-422"),
        pytest.param({"name": "W", "event_name": "crm_deal_updated", "url": "https://x.com", "http_method": "GET"}, "/data/http_method", id="only-post-422"),
        pytest.param({"name": "W", "event_name": "crm_deal_updated"}, "/data/url", id="url-required-422"),
    ],
)  # fmt: skip
def test_a_bad_webhook_is_422_naming_the_field(api, payload, pointer):
    response = api.post("/webhooks", payload)
    assert response.status_code == 422
    assert pointer in [e["source"]["pointer"] for e in response.json()["errors"]]


def test_contacts_deals_and_organizations_have_no_delete(api, deal):
    response = delete(api, f"/deals/{deal['id']}")
    assert response.status_code == 404
    assert response.json() == {"message": "no Route matched with those values"}
