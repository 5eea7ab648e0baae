"""Control endpoints for tests under ``/_emulator/`` (not part of RD's API): no auth, not rate
limited, not written to the request log."""

from __future__ import annotations

import json
from typing import Any, Protocol

from dbt_rdcrm.emulator.faults import FaultError
from dbt_rdcrm.emulator.server import (
    BadRequest,
    Request,
    Response,
    gateway_not_found,
    json_response,
)

CONTROL_PREFIX = "/_emulator/"


class Controls(Protocol):
    def state(self) -> dict[str, list[dict[str, Any]]]: ...

    def reset(self) -> None: ...

    def delete_record(self, resource: str, record_id: str) -> None: ...

    def requests(self) -> list[dict[str, Any]]: ...

    def clear_requests(self) -> None: ...

    def faults(self) -> list[dict[str, Any]]: ...

    def set_faults(self, rules: list[dict[str, Any]]) -> None: ...

    def clear_faults(self) -> None: ...

    def revoke_refresh_tokens(self, token: str | None = None) -> int: ...

    def expire_access_tokens(self, token: str | None = None) -> int: ...


def handle(controls: Controls, request: Request) -> Response:
    try:
        return _route(controls, request)
    except BadRequest as exc:
        return exc.response()


def _route(controls: Controls, request: Request) -> Response:
    path = request.path.removeprefix(CONTROL_PREFIX).rstrip("/")
    if request.method == "DELETE" and path.startswith("records/"):
        return _delete_record(controls, path.removeprefix("records/"))
    match request.method, path:
        case "GET", "state":
            return json_response(200, controls.state())
        case "POST", "reset":
            controls.reset()
            return json_response(200, {"reset": True})
        case "GET", "requests":
            return json_response(200, {"data": controls.requests()})
        case "DELETE", "requests":
            controls.clear_requests()
            return json_response(200, {"data": []})
        case "GET", "faults":
            return json_response(200, {"faults": controls.faults()})
        case "POST", "faults":
            return _set_faults(controls, _json_object(request))
        case "DELETE", "faults":
            controls.clear_faults()
            return json_response(200, {"faults": []})
        case "POST", "oauth/revoke":
            token = _token_or_all(_json_object(request), "refresh_token")
            return json_response(200, {"revoked": controls.revoke_refresh_tokens(token)})
        case "POST", "oauth/expire":
            token = _token_or_all(_json_object(request), "access_token")
            return json_response(200, {"expired": controls.expire_access_tokens(token)})
    return gateway_not_found()


def _delete_record(controls: Controls, rest: str) -> Response:
    resource, _, record_id = rest.partition("/")
    try:
        controls.delete_record(resource, record_id)
    except KeyError:
        detail = f"no {resource} record with id {record_id}"
        errors = [{"status": "404", "code": "RESOURCE_NOT_FOUND", "detail": detail}]
        return json_response(404, {"errors": errors})
    return json_response(200, {"deleted": record_id})


def _set_faults(controls: Controls, body: dict[str, Any]) -> Response:
    if "faults" not in body:
        raise BadRequest('the body must be {"faults": [rule, ...]}')
    try:
        controls.set_faults(body["faults"])
    except FaultError as exc:
        errors = [{"status": "400", "code": "INVALID_FAULT", "detail": p} for p in exc.problems]
        return json_response(400, {"errors": errors})
    return json_response(200, {"faults": controls.faults()})


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _token_or_all(body: dict[str, Any], key: str) -> str | None:
    """``{"<key>": "..."}`` → that token; ``{"all": true}`` → None (every token)."""
    if body.get("all") is True:
        return None
    token = body.get(key)
    if not isinstance(token, str) or not token:
        raise BadRequest(f'the body must be {{"{key}": "..."}} or {{"all": true}}')
    return token
