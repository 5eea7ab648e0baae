"""Selection through dbt's own selector, over the same manifest the sync reads.

``-s``/``--exclude``/``--selector`` (and a ``default: true`` selector of ``selectors.yml``) pick
exactly the models ``dbt ls --resource-type model`` picks with the same words: dbt's graph
selector runs over ``target/manifest.json``. On top, ``mode:<mode>`` (ours) keeps the models
whose ``meta.rdcrm`` syncs that mode; it may appear alone or in an intersection (``a,mode:x``).

dbt is imported only when a selection is given (or ``selectors.yml`` names a default).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_rdcrm.dbt.manifest import Manifest
from dbt_rdcrm.errors import SelectionError, UsageError

MODE_METHOD = "mode:"


@dataclass(frozen=True)
class Selection:
    """The selection flags as typed: each ``-s``/``--exclude`` value may hold several words."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    selector: str | None = None

    @property
    def given(self) -> bool:
        return bool(self.include or self.exclude or self.selector)

    def words(self) -> list[str]:
        return [word for arg in self.include for word in arg.split()]


def _words(args: tuple[str, ...]) -> list[str]:
    return [word for arg in args for word in arg.split() if word]


def _has_default_selector(project_dir: Path) -> bool:
    path = project_dir / "selectors.yml"
    return path.is_file() and "default" in path.read_text(encoding="utf-8", errors="replace")


def select_models(
    manifest: Manifest,
    manifest_path: Path,
    project_dir: Path,
    selection: Selection,
    cli_vars: Mapping[str, Any] | None = None,
) -> set[str] | None:
    """unique_ids of the enabled models the selection picks; None when nothing narrows it
    (no flags and no default selector): every model."""
    if not selection.given and not _has_default_selector(project_dir):
        return None
    if selection.selector and (selection.include or selection.exclude):
        raise SelectionError(
            "--selector cannot be combined with -s/--select or --exclude: dbt would silently "
            "ignore them; put the whole selection in selectors.yml, or use -s/--exclude only"
        )
    with _dbt_selector(manifest_path, project_dir) as (select, all_models):
        if selection.selector or not selection.given:
            spec = _yaml_selector(project_dir, selection.selector, dict(cli_vars or {}))
            return None if spec is None else select(spec)
        include, exclude = _words(selection.include), _words(selection.exclude)
        if not any(MODE_METHOD in word for word in include + exclude):
            from dbt.graph.cli import parse_difference

            return select(parse_difference(include or None, exclude or None))
        modes = {m.unique_id: _mode_of(m.rdcrm) for m in manifest.enabled}
        chosen = (
            set().union(*(_word(w, select, all_models, modes) for w in include))
            if include
            else set(all_models)
        )
        for word in exclude:
            chosen -= _word(word, select, all_models, modes)
        return chosen


def _mode_of(block: object) -> str | None:
    return block.get("mode") if isinstance(block, Mapping) else None


def _word(word: str, select, all_models: set[str], modes: Mapping[str, str | None]) -> set[str]:
    """One space-separated word: dbt's intersection of its parts, filtered by its modes."""
    from dbt.graph.cli import parse_union

    parts = word.split(",")
    wanted = {p[len(MODE_METHOD) :] for p in parts if p.startswith(MODE_METHOD)}
    others = [p for p in parts if p and not p.startswith(MODE_METHOD)]
    found = select(parse_union([",".join(others)], True)) if others else set(all_models)
    return {uid for uid in found if not wanted or modes.get(uid) in wanted}


def _yaml_selector(project_dir: Path, name: str | None, cli_vars: dict):
    """A selector of ``selectors.yml`` (rendered as dbt does, with ``--vars``); with no name,
    its ``default: true`` selector, or None."""
    from dbt.config.renderer import DbtProjectYamlRenderer
    from dbt.config.selectors import SelectorConfig, selector_data_from_root

    data = selector_data_from_root(str(project_dir))
    if not data:
        if name:
            raise SelectionError(f"--selector {name}: no selectors.yml in {project_dir}")
        return None
    selectors = SelectorConfig.render_from_dict(data, DbtProjectYamlRenderer(None, cli_vars))
    if name is None:
        name = next((n for n, s in selectors.items() if s.get("default")), None)
        if name is None:
            return None
    if name not in selectors:
        raise SelectionError(
            f"Could not find selector named {name}, expected one of {sorted(selectors)}"
        )
    return selectors[name]["definition"]


@contextlib.contextmanager
def _dbt_selector(manifest_path: Path, project_dir: Path) -> Iterator[tuple[Any, set[str]]]:
    """dbt's model selector over the manifest at ``manifest_path``: ``select(spec)`` returns the
    selected models' unique_ids. dbt's errors become UsageError with dbt's own reason."""
    from dbt.cli.flags import Flags, args_to_context
    from dbt.flags import set_flags
    from dbt.graph.selector import ResourceTypeSelector
    from dbt.node_types import NodeType
    from dbt_common.events.contextvars import task_contextvars
    from dbt_common.events.event_manager_client import cleanup_event_logger
    from dbt_common.exceptions import DbtBaseException

    from dbt_rdcrm.dbt.project import load_dbt_manifest

    cleanup_event_logger()  # dbt's "does not match any nodes" and friends: not on our output
    set_flags(Flags(args_to_context(["ls", "--resource-type", "model"])))
    try:
        manifest = load_dbt_manifest(manifest_path)
        graph = _graph(manifest)
    except (DbtBaseException, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UsageError(
            f"dbt cannot read {manifest_path} for selection ({_reason(exc)}): run `dbt parse`"
        ) from None
    selector = ResourceTypeSelector(
        graph, manifest, None, [NodeType.Model], include_empty_nodes=True
    )
    all_models = {uid for uid, node in manifest.nodes.items() if node.resource_type == "model"}
    # dbt >= 1.9 can skip its "matches no node" warning (silenced here anyway); 1.8 cannot.
    quiet = (
        {"warn_on_no_nodes": False}
        if "warn_on_no_nodes" in inspect.signature(selector.get_selected).parameters
        else {}
    )

    def select(spec) -> set[str]:
        try:
            return set(selector.get_selected(spec, **quiet))
        except DbtBaseException as exc:
            raise SelectionError(f"invalid selection: {_reason(exc)}") from None

    previous = Path.cwd()
    try:
        os.chdir(project_dir)  # dbt < 1.9 resolves path: selectors against the working dir
        with task_contextvars(project_root=str(project_dir)):
            try:
                yield select, all_models
            except DbtBaseException as exc:
                raise SelectionError(f"invalid selection: {_reason(exc)}") from None
    finally:
        os.chdir(previous)


GRAPH_MEMBERS = (
    "sources", "nodes", "semantic_models", "exposures", "functions", "metrics", "unit_tests",
    "saved_queries",
)  # fmt: skip


def _graph(manifest):
    """dbt's DAG of the manifest, as ``dbt ls`` builds it (``Linker.link_graph``), except that
    a dependency missing from the manifest is left out instead of failing the whole graph."""
    from dbt.compilation import Linker
    from dbt.graph import Graph

    linker = Linker()
    members = [getattr(manifest, name, None) or {} for name in GRAPH_MEMBERS]
    for source in manifest.sources.values():
        linker.add_node(source.unique_id)
    for collection in members[1:]:
        for node in collection.values():
            linker.add_node(node.unique_id)
            for dependency in node.depends_on_nodes:
                if any(dependency in known for known in members):
                    linker.dependency(node.unique_id, dependency)
    return Graph(linker.graph)


def _reason(exc: BaseException) -> str:
    message = getattr(exc, "msg", None)
    text = message if isinstance(message, str) else str(exc)
    text = text.removeprefix("Runtime Error").strip()
    return " ".join(text.split())
