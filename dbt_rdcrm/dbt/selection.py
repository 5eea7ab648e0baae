"""dbt-style node selection over declared syncs: names, wildcards, ``tag:``, ``path:``, ``fqn``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.errors import UsageError

METHODS = ("tag", "path", "fqn", "mode")


def _matches(spec: SyncSpec, selector: str) -> bool:
    method, _, value = selector.partition(":") if ":" in selector else ("", "", selector)
    if method == "tag":
        return any(fnmatch.fnmatchcase(tag, value) for tag in spec.tags)
    if method == "path":
        path = spec.original_file_path
        return fnmatch.fnmatchcase(path, value) or path.startswith(value.rstrip("/") + "/")
    if method == "mode":
        return spec.mode.value == value
    if method == "fqn" or (not method and "." in value):
        dotted = ".".join(spec.fqn)
        return fnmatch.fnmatchcase(dotted, value) or dotted.startswith(value + ".")
    if method:
        raise UsageError(
            f"unsupported selector method {method!r} in {selector!r}: "
            f"use a model name (wildcards allowed) or one of "
            f"{', '.join(m + ':' for m in METHODS)}"
        )
    return fnmatch.fnmatchcase(spec.model, value)


def _split(selectors: Iterable[str]) -> list[str]:
    return [part for selector in selectors for part in selector.split() if part]


def _selected(spec: SyncSpec, selector: str) -> bool:
    # a,b is an intersection in dbt's syntax; spaces and repeated flags are unions.
    return all(_matches(spec, part) for part in selector.split(",") if part)


def select(
    specs: Iterable[SyncSpec], include: Iterable[str] = (), exclude: Iterable[str] = ()
) -> list[SyncSpec]:
    """The specs picked by ``include`` (all when empty) minus those picked by ``exclude``."""
    include, exclude = _split(include), _split(exclude)
    chosen = [s for s in specs if not include or any(_selected(s, sel) for sel in include)]
    return [s for s in chosen if not any(_selected(s, sel) for sel in exclude)]
