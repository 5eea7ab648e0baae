"""Routes: anything the CRM does not serve answers like the public gateway.

Reference pages: no contacts, deals or organizations page documents DELETE or PATCH
(crm-v2-contacts, crm-v2-deals, crm-v2-organizations); stages exist only under
/pipelines/{pipeline_id}/stages (crm-v2-list-stages-from-pipeline). The gateway body was seen on
the real API (rdcrm-api.md, [live]).
"""

from __future__ import annotations

import pytest
import requests

GATEWAY_BODY = {"message": "no Route matched with those values"}
ORG_ID = "6621a1b2c3d4e5f678905678"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/crm/v2/tasks", id="unknown-resource"),
        pytest.param("GET", "/crm/v2/stages", id="no-top-level-stages"),
        pytest.param(
            "DELETE", "/crm/v2/contacts/6621a1b2c3d4e5f678905678", id="contacts-have-no-delete"
        ),
        pytest.param("GET", "/crm/v2", id="api-root"),
        pytest.param("DELETE", f"/crm/v2/organizations/{ORG_ID}", id="delete-is-not-served"),
        pytest.param("PATCH", f"/crm/v2/organizations/{ORG_ID}", id="patch-is-not-served"),
        pytest.param("POST", "/crm/v2/users", id="reference-data-is-read-only"),
        pytest.param("GET", "/api/v2/organizations", id="internal-api-v2-prefix"),
        pytest.param("GET", f"/api/v2/organizations/{ORG_ID}", id="internal-api-v2-record"),
        pytest.param("GET", "/api/v1/deals", id="legacy-v1"),
        pytest.param("GET", "/", id="host-root"),
    ],
)
def test_unrouted_path_is_404_with_the_gateway_body(emu, method, path):
    response = requests.request(
        method, emu.url + path, headers={"Authorization": "Bearer emulator-token"}, timeout=5
    )
    assert response.status_code == 404
    assert response.json() == GATEWAY_BODY
