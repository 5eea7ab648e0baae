"""Custom field definitions as ``crm-v2-create-custom-field`` documents them, the values each
type takes, and when a field is required.

A definition: ``id, name, slug, type (text|date|option|multiple_choice), entity
(deal|contact|organization|product), options, unique, allow_new_option, order, required_rules,
display_rules, created_at, updated_at``. A rule is ``{"property", "value", "always"}``.

Values (the reference shows them as strings): text → a string (a JSON number is kept as sent);
date → ``YYYY-MM-DD``; option → one of ``options``; multiple_choice → a list of ``options``.
With ``allow_new_option`` an unknown option is accepted and added to ``options``.

Required: a rule with ``always: true`` makes the field required on every record of its entity;
``{"property": "deal_stage_id", "value": <stage id>}`` (or ``deal_pipeline_id``) only on deals in
that stage (pipeline). Other properties are not enforced. ``is:required`` lists fields with an
``always`` rule; ``is:visible`` those without display rules or with an ``always`` one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dbt_rdcrm.emulator.schemas import FieldError, is_date, is_number, is_object_id, problem

TYPES = ("text", "date", "option", "multiple_choice")
ENTITIES = ("deal", "contact", "organization", "product")
OPTION_TYPES = ("option", "multiple_choice")
RULE_PROPERTIES = {"deal_stage_id": "stage_id", "deal_pipeline_id": "pipeline_id"}
# fixtures written for earlier emulator versions: their types, read as the closest v2 type
LEGACY_TYPES = {"number": "text", "boolean": "text", "multiple_option": "multiple_choice"}
FIXTURE_KEYS = (
    "id", "name", "slug", "type", "entity", "options", "unique", "allow_new_option", "order",
    "required_rules", "display_rules", "label", "required",
)  # fmt: skip
_SLUG = re.compile(r"[a-z0-9_]+")


def from_fixture(entry: Mapping[str, Any], order: int, stamp: str) -> dict[str, Any]:
    """A full definition from a fixtures entry (also the older ``label``/``required`` form)."""
    rules = entry.get("required_rules")
    if rules is None:
        rules = [_always()] if entry.get("required") else []
    kind = entry.get("type", "text")
    return {
        "id": entry["id"],
        "name": entry.get("name") or entry.get("label") or entry["slug"],
        "slug": entry["slug"],
        "type": LEGACY_TYPES.get(kind, kind),
        "entity": entry["entity"],
        "options": list(entry.get("options") or []),
        "unique": bool(entry.get("unique", False)),
        "allow_new_option": bool(entry.get("allow_new_option", False)),
        "order": entry.get("order", order),
        "required_rules": [_rule(r) for r in rules],
        "display_rules": [_rule(r) for r in entry.get("display_rules") or []],
        "created_at": stamp,
        "updated_at": stamp,
    }


def _always() -> dict[str, Any]:
    return {"property": None, "value": None, "always": True}


def _rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "property": rule.get("property"),
        "value": rule.get("value"),
        "always": bool(rule.get("always", False)),
    }


def definition_problems(
    payload: Mapping[str, Any], current: Mapping[str, Any] | None, taken: set[tuple[str, str]]
) -> list[FieldError]:
    """Problems of a ``POST``/``PUT /custom_fields`` body; ``current`` is None on create and
    ``taken`` holds the (entity, slug) pairs of the other fields."""
    merged = {**(current or {}), **payload}
    errors: list[FieldError] = []
    for key in ("name", "entity", "type"):
        value = merged.get(key)
        if not (isinstance(value, str) and value.strip()):
            errors += problem(key, "REQUIRED", f"{key} can't be blank")
    if current is not None:
        for key in ("entity", "type"):
            if key in payload and payload[key] != current[key]:
                errors += problem(key, "INVALID_VALUE", f"{key} cannot be changed")
    if isinstance(merged.get("entity"), str) and merged["entity"] not in ENTITIES:
        errors += problem("entity", "INVALID_VALUE", f"entity must be one of {', '.join(ENTITIES)}")
    if isinstance(merged.get("type"), str) and merged["type"] not in TYPES:
        errors += problem("type", "INVALID_VALUE", f"type must be one of {', '.join(TYPES)}")
    slug = merged.get("slug")
    if slug is not None and not (isinstance(slug, str) and _SLUG.fullmatch(slug)):
        errors += problem("slug", "INVALID_FORMAT", "slug must be lowercase letters, digits and _")
    elif (merged.get("entity"), slug or slugify(merged.get("name"))) in taken:
        errors += problem("slug", "TAKEN", "slug is already used by a field of this entity")
    options = merged.get("options", [])
    if not (isinstance(options, list) and all(isinstance(o, str) and o for o in options)):
        errors += problem("options", "INVALID_TYPE", "options must be a list of strings")
    elif merged.get("type") in OPTION_TYPES and not options and not merged.get("allow_new_option"):
        errors += problem("options", "REQUIRED", "options can't be empty for this type")
    for key in ("unique", "allow_new_option"):
        if not isinstance(merged.get(key, False), bool):
            errors += problem(key, "INVALID_TYPE", f"{key} must be true or false")
    order = merged.get("order", 0)
    if not isinstance(order, int) or isinstance(order, bool):
        errors += problem("order", "INVALID_TYPE", "order must be an integer")
    for key in ("required_rules", "display_rules"):
        errors += _rules_problems(key, merged.get(key, []))
    return errors


def _rules_problems(key: str, rules: Any) -> list[FieldError]:
    if not isinstance(rules, list):
        return problem(key, "INVALID_TYPE", f"{key} must be a list of rules")
    errors: list[FieldError] = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            errors += problem(f"{key}/{i}", "INVALID_TYPE", f"{key}[{i}] must be an object")
            continue
        if not isinstance(rule.get("always", False), bool):
            errors += problem(f"{key}/{i}/always", "INVALID_TYPE", "always must be true or false")
        for part in ("property", "value"):
            if rule.get(part) is not None and not isinstance(rule[part], str):
                errors += problem(f"{key}/{i}/{part}", "INVALID_TYPE", f"{part} must be a string")
    return errors


def slugify(name: Any) -> str:
    """The slug a field gets when none is given: its name, lowercased, ``_`` for the rest."""
    if not isinstance(name, str):
        return ""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def new_definition(
    payload: Mapping[str, Any], field_id: str, order: int, stamp: str
) -> dict[str, Any]:
    entry = {**payload, "id": field_id, "slug": payload.get("slug") or slugify(payload["name"])}
    entry.setdefault("order", order)
    return from_fixture(entry, order, stamp)


def value_problem(definition: Mapping[str, Any], value: Any) -> str | None:
    """What is wrong with ``value`` for this field, or None."""
    kind, options = definition["type"], definition["options"]
    if kind == "text":
        ok = isinstance(value, str) or is_number(value)
        return None if ok else "must be a string"
    if kind == "date":
        return None if is_date(value) else "must be a date written YYYY-MM-DD"
    if kind == "option":
        if not isinstance(value, str):
            return "must be one of the options, as a string"
        ok = value in options or definition["allow_new_option"]
        return None if ok else f"must be one of: {', '.join(options)}"
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return "must be a list of the options"
    unknown = [v for v in value if v not in options]
    if unknown and not definition["allow_new_option"]:
        return f"must be a list of: {', '.join(options)}"
    return None


def new_options(definition: Mapping[str, Any], value: Any) -> list[str]:
    """Options a valid value adds to a field that allows new ones."""
    if definition["type"] not in OPTION_TYPES or not definition["allow_new_option"]:
        return []
    given = value if isinstance(value, list) else [value]
    return [v for v in dict.fromkeys(given) if v not in definition["options"]]


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def required_for(definition: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Whether a required rule of the field applies to ``record`` (as it would be stored)."""
    for rule in definition["required_rules"]:
        if rule["always"]:
            return True
        key = RULE_PROPERTIES.get(rule["property"] or "")
        if key and definition["entity"] == "deal" and record.get(key) == rule["value"]:
            return True
    return False


def is_required(definition: Mapping[str, Any]) -> bool:
    return any(rule["always"] for rule in definition["required_rules"])


def is_visible(definition: Mapping[str, Any]) -> bool:
    rules = definition["display_rules"]
    return not rules or any(rule["always"] for rule in rules)


def fixture_problems(where: str, entry: Mapping[str, Any]) -> list[str]:
    """Problems of a fixtures entry, in either form."""
    legacy = {"label", "required"}
    problems = [
        f"{where}.{key}: unknown key (expected one of {', '.join(FIXTURE_KEYS)})"
        for key in entry
        if key not in FIXTURE_KEYS
    ]
    payload = {k: v for k, v in entry.items() if k not in legacy | {"id"}}
    payload.setdefault("name", entry.get("label"))
    if isinstance(payload.get("type"), str):
        payload["type"] = LEGACY_TYPES.get(payload["type"], payload["type"])
    problems += [
        f"{where}.{error.path.replace('/', '.')}: {error.detail}"
        for error in definition_problems(payload, None, set())
    ]
    if not is_object_id(entry.get("id")):
        problems.append(f"{where}.id: must be a 24-character lowercase hex id")
    if not entry.get("slug"):
        problems.append(f"{where}.slug: required")
    if "required" in entry and not isinstance(entry["required"], bool):
        problems.append(f"{where}.required: must be true or false")
    return problems
