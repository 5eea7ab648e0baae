"""``meta.rdcrm`` parsed into a :class:`~dbt_rdcrm.config.specs.SyncSpec`.

``parse_sync(model, raw, path)`` is pure: it returns a frozen spec or the list of every problem
found, each naming its YAML path and what would be accepted. The block's own keys (mode, key,
match, identity, mass_change, ...) are checked here, its sources in
:mod:`dbt_rdcrm.config.source_parsing`.
"""

from __future__ import annotations

from collections.abc import Mapping

from dbt_rdcrm.config.fields import MATCHABLE, RECORD_ID, SLUG_PATTERN, Mode
from dbt_rdcrm.config.source_parsing import comma_list, parse_sources, string_list
from dbt_rdcrm.config.specs import MassChangeGuard, Source, SyncSpec
from dbt_rdcrm.errors import Problem

TOP_LEVEL_KEYS = (
    "identity",
    "key",
    "links",
    "mapping",
    "mass_change",
    "match",
    "mode",
    "partial_success",
    "status_on_create",
    "values",
)


def parse_sync(
    model: str, unique_id: str, raw: object, path: str, **node_facts
) -> tuple[SyncSpec | None, list[Problem]]:
    """Validate one ``meta.rdcrm`` block; return the spec, or None and every problem found."""
    problems: list[Problem] = []
    if raw is None:
        return None, [
            Problem(
                path,
                "is empty: declare the sync (a mapping with keys "
                f"{comma_list(TOP_LEVEL_KEYS)}) or remove `rdcrm:`",
            )
        ]
    if not isinstance(raw, Mapping):
        return None, [
            Problem(
                path,
                f"got {type(raw).__name__}, expected a mapping with keys "
                f"{comma_list(TOP_LEVEL_KEYS)}",
            )
        ]
    for unknown in sorted(set(raw) - set(TOP_LEVEL_KEYS), key=str):
        problems.append(
            Problem(
                f"{path}.{unknown}", f"unknown key, expected one of {comma_list(TOP_LEVEL_KEYS)}"
            )
        )

    modes = [m.value for m in Mode]
    mode_value = raw.get("mode")
    mode = Mode(mode_value) if mode_value in modes else None
    if mode is None:
        got = "nothing" if mode_value is None else repr(mode_value)
        problems.append(Problem(f"{path}.mode", f"got {got}, expected one of {comma_list(modes)}"))

    partial = raw.get("partial_success", False)
    if not isinstance(partial, bool):
        problems.append(
            Problem(f"{path}.partial_success", f"got {partial!r}, expected true or false")
        )
        partial = False

    # With an unknown mode the fields are still checked (against every mode), so one run
    # reports every problem.
    sources = parse_sources(mode, raw, path, problems)

    key: tuple[str, ...] = ()
    if "key" in raw:
        key = string_list(
            raw["key"], f"{path}.key", "a column name or a list of column names", problems
        )
    else:
        record_id = next((s for s in sources if s.field == RECORD_ID and s.column), None)
        if record_id is not None:
            key = (record_id.column,)
        # else: no key, as the original product's configuration: rows are identified by content

    guard = _parse_guard(raw.get("mass_change", True), f"{path}.mass_change", problems)

    status_on_create = raw.get("status_on_create", "reject")
    if status_on_create not in ("reject", "two_step") or (
        status_on_create == "two_step" and mode not in (None, Mode.DEALS)
    ):
        problems.append(
            Problem(
                f"{path}.status_on_create",
                f"got {status_on_create!r}, expected reject (a deal that is not ongoing is "
                "rejected, as the CRM refuses it on create) or two_step (deals only: create it "
                "ongoing, then set its status in a second request)",
            )
        )

    identity = raw.get("identity")
    if identity is not None:
        identity = _check_identity(identity, sources, f"{path}.identity", problems)

    match = raw.get("match")
    if match is not None and mode is not None:
        match = _check_match(mode, match, sources, f"{path}.match", problems)

    if problems or mode is None:
        return None, problems
    return SyncSpec(
        model=model,
        unique_id=unique_id,
        path=path,
        mode=mode,
        key=key,
        partial_success=partial,
        sources=tuple(sources),
        match=match,
        identity=identity,
        mass_change=guard,
        two_step_status=status_on_create == "two_step",
        **node_facts,
    ), []


def _check_match(
    mode: Mode, match: object, sources: list[Source], where: str, problems: list[Problem]
) -> str | None:
    allowed = [*MATCHABLE[mode], "@<custom_field_slug>"]
    if not isinstance(match, str) or not (match in MATCHABLE[mode] or SLUG_PATTERN.match(match)):
        problems.append(Problem(where, f"got {match!r}, expected one of {comma_list(allowed)}"))
        return None
    if not any(s.field == match for s in sources):
        problems.append(
            Problem(
                where, f"matches on {match!r}, but no column, value or template fills that field"
            )
        )
        return None
    return match


def _check_identity(
    identity: object, sources: list[Source], where: str, problems: list[Problem]
) -> str | None:
    if not isinstance(identity, str) or not SLUG_PATTERN.match(identity):
        problems.append(
            Problem(
                where,
                f'got {identity!r}, expected a custom field written @slug (e.g. "@dbt_key") '
                "that holds each row's key in the CRM",
            )
        )
        return None
    taken = next((s.path for s in sources if s.field == identity), None)
    if taken is not None:
        problems.append(
            Problem(
                where, f"{identity} is also filled by {taken}: the identity field holds the key"
            )
        )
        return None
    return identity


def _parse_guard(raw: object, where: str, problems: list[Problem]) -> MassChangeGuard | None:
    if raw is True:
        return MassChangeGuard()
    if raw is False:
        return None
    if not isinstance(raw, Mapping):
        problems.append(
            Problem(where, f"got {raw!r}, expected false or {{max_fraction: 0.5, min_rows: 100}}")
        )
        return MassChangeGuard()
    for unknown in sorted(set(raw) - {"max_fraction", "min_rows"}, key=str):
        problems.append(
            Problem(f"{where}.{unknown}", "unknown key, expected one of max_fraction, min_rows")
        )
    fraction, rows = raw.get("max_fraction", 0.5), raw.get("min_rows", 100)
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction <= 1
    ):
        problems.append(
            Problem(f"{where}.max_fraction", f"got {fraction!r}, expected a number in (0, 1]")
        )
        fraction = 0.5
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        problems.append(Problem(f"{where}.min_rows", f"got {rows!r}, expected a whole number"))
        rows = 100
    return MassChangeGuard(float(fraction), rows)
