"""The emulator's account: reference data (users, pipelines and stages, campaigns, segments,
sources, lost reasons, products, custom field definitions) and pre-seeded records.

A fixtures file is JSON of the same shape as :data:`DEFAULT_FIXTURES` and replaces it whole.
:func:`load_fixtures` checks the reference sections (custom field definitions in the API's form
or the earlier ``label``/``required`` one, see :mod:`.custom_fields`); records are checked by
the store, with the same rules as the API.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

from dbt_rdcrm.emulator.custom_fields import fixture_problems
from dbt_rdcrm.emulator.schemas import is_number, is_object_id

DEFAULT_FIXTURES: dict[str, Any] = {
    "users": [
        {
            "id": "6621a1b2c3d4e5f678901001",
            "name": "Usuária Emulador",
            "email": "owner@emulator.test",
        },
    ],
    "pipelines": [
        {
            "id": "6621a1b2c3d4e5f678902001",
            "name": "Funil de Vendas",
            "stages": [
                {"id": "6621a1b2c3d4e5f678900001", "name": "Sem contato"},
                {"id": "6621a1b2c3d4e5f678900002", "name": "Contato feito"},
                {"id": "6621a1b2c3d4e5f678900003", "name": "Proposta enviada"},
                {"id": "6621a1b2c3d4e5f678900004", "name": "Negociação"},
            ],
        },
        {
            "id": "6621a1b2c3d4e5f678902002",
            "name": "Parcerias",
            "stages": [
                {"id": "6621a1b2c3d4e5f678900101", "name": "Prospecção"},
                {"id": "6621a1b2c3d4e5f678900102", "name": "Contrato"},
            ],
        },
    ],
    "campaigns": [{"id": "6621a1b2c3d4e5f678903001", "name": "Campanha Padrão"}],
    "sources": [{"id": "6621a1b2c3d4e5f678907001", "name": "Site"}],
    "lost_reasons": [
        {"id": "6621a1b2c3d4e5f678908001", "name": "Preço"},
        {"id": "6621a1b2c3d4e5f678908002", "name": "Concorrente"},
    ],
    "products": [
        {"id": "6621a1b2c3d4e5f678909001", "name": "Consultoria", "price": 1500.0, "visible": True}
    ],
    "segments": [
        {"id": "6621a1b2c3d4e5f678904001", "name": "Varejo"},
        {"id": "6621a1b2c3d4e5f678904002", "name": "Indústria"},
    ],
    "custom_fields": [
        {
            "id": "6621a1b2c3d4e5f678906001",
            "slug": "cpf",
            "name": "CPF",
            "entity": "contact",
            "type": "text",
        },
        {
            "id": "6621a1b2c3d4e5f678906002",
            "slug": "erp_id",
            "name": "ERP ID",
            "entity": "contact",
            "type": "text",
        },
        {
            "id": "6621a1b2c3d4e5f678906003",
            "slug": "cnpj",
            "name": "CNPJ",
            "entity": "organization",
            "type": "text",
        },
        {
            "id": "6621a1b2c3d4e5f678906004",
            "slug": "erp_id",
            "name": "ERP ID",
            "entity": "organization",
            "type": "text",
        },
        {
            "id": "6621a1b2c3d4e5f678906005",
            "slug": "valor_credito",
            "name": "Valor do crédito",
            "entity": "deal",
            "type": "text",
        },
        {
            "id": "6621a1b2c3d4e5f678906006",
            "slug": "erp_id",
            "name": "ERP ID",
            "entity": "deal",
            "type": "text",
        },
    ],
    "organizations": [
        {
            "id": "6621a1b2c3d4e5f678905678",
            "name": "Empresa Exemplo Ltda",
            "url": "https://exemplo.com.br",
        },
        {"id": "6621a1b2c3d4e5f678905679", "name": "Outra Empresa SA"},
    ],
    "contacts": [],
    "deals": [],
}

REFERENCE_SECTIONS = (
    "users",
    "pipelines",
    "campaigns",
    "segments",
    "sources",
    "lost_reasons",
    "products",
    "custom_fields",
)
RECORD_SECTIONS = ("organizations", "contacts", "deals")  # seeding order: references first


class FixtureError(ValueError):
    """The fixtures are unusable; ``problems`` lists every one, each naming its path."""

    def __init__(self, problems: list[str], source: str = "fixtures"):
        self.problems = problems
        self.source = source
        super().__init__(f"invalid {source}: " + "; ".join(problems))


def load_fixtures(source: dict[str, Any] | str | os.PathLike[str] | None) -> dict[str, Any]:
    """A checked, private copy of ``source`` (a dict, a JSON file path, or None for defaults)."""
    if source is None:
        return copy.deepcopy(DEFAULT_FIXTURES)
    if isinstance(source, dict):
        data, label = copy.deepcopy(source), "fixtures"
    elif isinstance(source, (str, os.PathLike)):
        label = f"fixtures file {os.fspath(source)}"
        data = _read_json(source, label)
    else:
        raise TypeError(
            f"fixtures must be a dict, a file path or None, not {type(source).__name__}"
        )
    problems = check_fixtures(data)
    if problems:
        raise FixtureError(problems, label)
    return data


def _read_json(path: str | os.PathLike[str], label: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise FixtureError([exc.strerror or str(exc)], label) from None
    except UnicodeDecodeError:
        raise FixtureError(["not UTF-8 text"], label) from None
    except json.JSONDecodeError as exc:
        raise FixtureError(
            [f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"], label
        ) from None


def check_fixtures(data: Any) -> list[str]:
    """Problems in the top level and the reference sections; fills absent sections with ``[]``."""
    if not isinstance(data, dict):
        return ["the top level must be a JSON object"]
    sections = REFERENCE_SECTIONS + RECORD_SECTIONS
    problems = [
        f"{key}: unknown section (expected one of {', '.join(sections)})"
        for key in data
        if key not in sections
    ]
    malformed = [
        f"{section}: must be a list of objects"
        for section in sections
        if not _list_of_objects(data.setdefault(section, []))
    ]
    if malformed:
        return problems + malformed
    for section in ("users", "pipelines"):
        if not data[section]:
            problems.append(f"{section}: at least one is required (the first one is the default)")
    for section, spec in _SPECS.items():
        for i, entry in enumerate(data[section]):
            problems += _check_entry(f"{section}[{i}]", entry, spec)
    for i, entry in enumerate(data["custom_fields"]):
        problems += fixture_problems(f"custom_fields[{i}]", entry)
    for i, pipeline in enumerate(data["pipelines"]):
        stages = pipeline.get("stages")
        if isinstance(stages, list) and stages:
            for j, stage in enumerate(stages):
                where = f"pipelines[{i}].stages[{j}]"
                if isinstance(stage, dict):
                    problems += _check_entry(where, stage, _STAGE)
                else:
                    problems.append(f"{where}: must be an object")
        else:
            problems.append(f"pipelines[{i}].stages: must be a non-empty list of stages")
    return problems or _duplicates(data)


def _list_of_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(entry, dict) for entry in value)


Spec = dict[str, tuple[Callable[[Any], bool], str, bool]]  # key: (check, expected, required)

_ID = (is_object_id, "a 24-character lowercase hex id", True)
_NAME = (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string", True)
_TEXT = (lambda v: v is None or isinstance(v, str), "a string", False)
_FLAG = (lambda v: isinstance(v, bool), "true or false", False)
_STAGE: Spec = {"id": _ID, "name": _NAME, "description": _TEXT, "objective": _TEXT}
_SPECS: dict[str, Spec] = {
    "users": {
        "id": _ID, "name": _NAME, "email": _NAME, "phone": _TEXT, "active": _FLAG,
        "visible": _FLAG,
    },
    "pipelines": {"id": _ID, "name": _NAME, "stages": (lambda v: True, "", False)},
    "campaigns": {"id": _ID, "name": _NAME, "description": _TEXT},
    "segments": {"id": _ID, "name": _NAME},
    "sources": {"id": _ID, "name": _NAME, "description": _TEXT},
    "lost_reasons": {"id": _ID, "name": _NAME},
    "products": {
        "id": _ID, "name": _NAME, "description": _TEXT, "visible": _FLAG,
        "price": (lambda v: v is None or is_number(v), "a number", False),
        "custom_fields": (lambda v: isinstance(v, dict), "an object", False),
    },
}  # fmt: skip


def _check_entry(where: str, entry: dict[str, Any], spec: Spec) -> list[str]:
    problems = [
        f"{where}.{key}: unknown key (expected one of {', '.join(spec)})"
        for key in entry
        if key not in spec
    ]
    for key, (check, expected, required) in spec.items():
        if key not in entry:
            if required:
                problems.append(f"{where}.{key}: required")
        elif not check(entry[key]):
            problems.append(f"{where}.{key}: must be {expected}, got {entry[key]!r}")
    return problems


def _duplicates(data: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    stages = [stage for pipeline in data["pipelines"] for stage in pipeline.get("stages") or []]
    groups = {section: data[section] for section in REFERENCE_SECTIONS} | {"stages": stages}
    for section, entries in groups.items():
        seen: set[Any] = set()
        for entry in entries:
            if entry.get("id") in seen:
                problems.append(f"{section}: duplicate id {entry['id']}")
            seen.add(entry.get("id"))
    slugs: set[tuple[Any, Any]] = set()
    for field in data["custom_fields"]:
        key = (field.get("entity"), field.get("slug"))
        if key in slugs:
            problems.append(f"custom_fields: duplicate slug {key[1]} for {key[0]}")
        slugs.add(key)
    return problems
