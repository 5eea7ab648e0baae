"""Injected faults: scripted or random 5xx, 429 bursts, latency, dropped connections, and writes
that silently do not keep a field (``ignore_field``, as the CRM does with a field it lacks).

A rule (JSON, every key but ``action`` optional)::

    {"method": "POST", "path": "/contacts/*", "action": "drop_after_commit",
     "after": 0, "count": 1, "probability": 1.0, "seed": 7}

``path`` is a glob relative to ``/crm/v2``. Rules are checked in order and the first applicable
one wins: a matching request counts towards the rule's ``after`` (requests let through first),
then the rule applies to the next ``count`` requests (unlimited when absent), each with
``probability``.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from dbt_rdcrm.emulator.server import (
    Request,
    Response,
    error_response,
    rate_limited,
    status_phrase,
)

ACTIONS = (
    "status",
    "rate_limit",
    "latency",
    "drop_before_commit",
    "drop_after_commit",
    "ignore_field",
)
DROPS = ("drop_before_commit", "drop_after_commit")
_KEYS = (
    "method",
    "path",
    "action",
    "status",
    "body",
    "retry_after",
    "seconds",
    "after",
    "count",
    "probability",
    "seed",
    "field",
)


class FaultError(ValueError):
    """Rules that cannot be used; ``problems`` names every bad key."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class FaultRule:
    action: str
    method: str = "*"
    path: str = "*"
    status: int | None = None
    body: str | None = None
    retry_after: int = 1
    seconds: float = 0.0
    after: int = 0
    count: int | None = None
    probability: float = 1.0
    seed: int | None = None
    ignored: str | None = None  # ignore_field: the payload key a write does not keep (``field``)
    seen: int = 0
    applied: int = 0
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method.upper()) and fnmatchcase(path, self.path)

    def response(self) -> Response:
        """The answer of a ``status`` or ``rate_limit`` rule."""
        if self.action == "rate_limit":
            return rate_limited(self.retry_after, "rate limit exceeded (injected fault)")
        status = self.status or 500
        if self.body is not None:
            return Response(status, self.body.encode("utf-8"), "text/plain; charset=utf-8")
        if status >= 500:
            html = f"<html><body><h1>{status} {status_phrase(status)}</h1></body></html>"
            return Response(status, html.encode("utf-8"), "text/html; charset=utf-8")
        return error_response(
            status, "INJECTED_FAULT", f"{status} {status_phrase(status)} (injected fault)"
        )

    def without_field(self, request: Request) -> Request:
        """The request of an ``ignore_field`` rule: its ``data`` without the ignored key."""
        try:
            body = json.loads(request.body)
        except ValueError:
            return request
        if isinstance(body, dict) and isinstance(body.get("data"), dict):
            body["data"].pop(self.ignored, None)
        return replace(request, body=json.dumps(body).encode("utf-8"))

    def as_json(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "action": self.action,
        }
        if self.action == "status":
            described.update(status=self.status, body=self.body)
        elif self.action == "rate_limit":
            described["retry_after"] = self.retry_after
        elif self.action == "latency":
            described["seconds"] = self.seconds
        elif self.action == "ignore_field":
            described["field"] = self.ignored
        described.update(
            after=self.after, count=self.count, probability=self.probability, seed=self.seed
        )
        described.update(seen=self.seen, applied=self.applied)
        return described


def parse_rules(raw: Any) -> list[FaultRule]:
    """Rules from their JSON form; raises FaultError naming every problem."""
    if not isinstance(raw, list):
        raise FaultError(["faults must be a list of rules"])
    problems: list[str] = []
    rules = []
    for i, item in enumerate(raw):
        found = _problems(item, f"faults[{i}]")
        problems += found
        if not found:
            known = {key: value for key, value in item.items() if key in _KEYS}
            known["method"] = known.get("method", "*").upper()
            if "field" in known:
                known["ignored"] = known.pop("field")
            rules.append(FaultRule(**known))
    if problems:
        raise FaultError(problems)
    return rules


def _problems(item: Any, where: str) -> list[str]:
    if not isinstance(item, dict):
        return [f"{where}: must be an object"]
    problems = [
        f"{where}.{key}: unknown key (expected one of {', '.join(_KEYS)})"
        for key in item
        if key not in _KEYS
    ]
    action = item.get("action")
    if action not in ACTIONS:
        problems.append(f"{where}.action: must be one of {', '.join(ACTIONS)}, got {action!r}")
    checks = {
        "method": (lambda v: isinstance(v, str) and bool(v), "an HTTP method or *"),
        "path": (
            lambda v: isinstance(v, str) and (v == "*" or v.startswith("/")),
            "a glob like /contacts/* or *",
        ),
        "status": (lambda v: _int(v) and 400 <= v <= 599, "an HTTP status from 400 to 599"),
        "body": (lambda v: isinstance(v, str), "a string"),
        "retry_after": (lambda v: _int(v) and v >= 0, "an integer of at least 0"),
        "seconds": (lambda v: _number(v) and 0 <= v <= 60, "a number of seconds from 0 to 60"),
        "after": (lambda v: _int(v) and v >= 0, "an integer of at least 0"),
        "count": (lambda v: v is None or (_int(v) and v >= 1), "an integer of at least 1"),
        "probability": (lambda v: _number(v) and 0 <= v <= 1, "a number from 0 to 1"),
        "seed": (lambda v: v is None or _int(v), "an integer"),
        "field": (lambda v: isinstance(v, str) and bool(v), "a payload key like phones"),
    }
    for key, (check, expected) in checks.items():
        if key in item and not check(item[key]):
            problems.append(f"{where}.{key}: must be {expected}, got {item[key]!r}")
    if action == "status" and "status" not in item:
        problems.append(f"{where}.status: required for action status")
    if action == "latency" and "seconds" not in item:
        problems.append(f"{where}.seconds: required for action latency")
    if action == "ignore_field" and "field" not in item:
        problems.append(f"{where}.field: required for action ignore_field")
    return problems


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Faults:
    """The active rule list, shared by every request thread."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def replace(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = list(rules)

    def clear(self) -> None:
        self.replace([])

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.as_json() for rule in self._rules]

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule that applies to this request, if any (counting it as applied)."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.after:
                    continue
                if rule.count is not None and rule.applied >= rule.count:
                    continue
                if rule.probability < 1 and rule.rng.random() >= rule.probability:
                    continue
                rule.applied += 1
                return rule
        return None
