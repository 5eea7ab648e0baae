"""From an invocation to a :class:`Project`: parse (if asked), read the manifest once into
its model, refuse a stale one, select with dbt's selector, choose one version per model, and
parse the declared syncs. The rule for a selected model that cannot be read lives here, once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from dbt_rdcrm.config.catalog import Catalog, build_catalog, sync_order
from dbt_rdcrm.config.settings import ProjectPaths, read_project_file
from dbt_rdcrm.config.specs import SyncSpec
from dbt_rdcrm.dbt.manifest import Manifest, ModelNode
from dbt_rdcrm.dbt.manifest_reader import load_manifest, manifest_from_dict
from dbt_rdcrm.dbt.selection import select_models
from dbt_rdcrm.dbt.staleness import newer_project_files
from dbt_rdcrm.errors import SelectionError, UsageError
from dbt_rdcrm.invocation import Invocation


class StaleManifest(UsageError):
    """The manifest does not describe the project as it is on disk."""


class TargetMismatch(UsageError):
    """The manifest was built for another target than the one requested."""


@dataclass(frozen=True)
class Project:
    """A project as every command sees it: the manifest, the syncs, and what is selected."""

    paths: ProjectPaths
    manifest: Manifest
    catalog: Catalog
    selected: list[SyncSpec]  # in sync order (parents first)
    unreadable_selected: dict[str, str]  # selected models that cannot be read -> why
    notices: list[str]

    @property
    def manifest_path(self) -> Path:
        return self.paths.target_path / "manifest.json"


# --- from flags to a project ------------------------------------------------------------------


def parse_first(invocation: Invocation) -> None:
    """``--parse``: run dbt's parser in this process so the manifest matches the project."""
    from dbt_rdcrm.dbt import project as dbt_project

    paths = invocation.paths
    args = dbt_project.dbt_args(
        paths.project_dir, paths.profiles_dir, paths.target, invocation.dbt.vars,
        invocation.dbt.profile,
    )  # fmt: skip
    args += ["--target-path", str(paths.target_path)]
    try:
        dbt_project.parse_project(args)
    except RuntimeError as exc:
        raise UsageError(f"dbt parse failed: {exc}") from None


def cli_vars(invocation: Invocation) -> dict:
    """``--vars`` as dbt reads it (YAML or JSON); a bad value is a usage error."""
    if not invocation.dbt.vars:
        return {}
    try:
        value = yaml.safe_load(invocation.dbt.vars)
    except yaml.YAMLError as exc:
        raise UsageError(f"--vars is not valid YAML: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--vars must be a YAML dictionary, got {invocation.dbt.vars!r}")
    return value


def read_manifest(invocation: Invocation) -> Manifest:
    """The manifest model, refused when project files changed after it was written."""
    paths = invocation.paths
    if invocation.dbt.parse:
        parse_first(invocation)
    path = paths.target_path / "manifest.json"
    data = load_manifest(path)
    project_file = read_project_file(paths.project_dir)
    newer = newer_project_files(paths.project_dir, project_file, path)
    if newer:
        more = f" (and {len(newer) - 1} more)" if len(newer) > 1 else ""
        raise StaleManifest(
            f"{path} is older than {newer[0]}{more}: dbt has not parsed the project since it "
            "changed (or the last `dbt parse` failed); run `dbt parse` (or `dbt build`) first, "
            "or pass --parse"
        )
    return manifest_from_dict(data, project_file)


def choose_versions(manifest: Manifest, selected: set[str] | None) -> dict[str, ModelNode]:
    """The one version of each selected model to sync: the latest (as ``ref()`` resolves it)
    when the selection picks it, else the only version it picks. Never two of one model."""
    if selected is None:
        return {}
    chosen: dict[str, ModelNode] = {}
    for name, nodes in manifest.versions().items():
        picked = [n for n in nodes if n.unique_id in selected]
        latest = manifest.latest(name)
        if not picked:
            continue
        if latest in picked:
            chosen[name] = latest
        elif len(picked) == 1:
            chosen[name] = picked[0]
        else:
            versions = ", ".join(f"v{n.version}" for n in picked)
            raise SelectionError(
                f"the selection picks versions {versions} of {name} but not its latest "
                f"(v{latest.version}): one sync per model, name one version "
                f"(e.g. -s {name}.v{picked[-1].version})"
            )
    return chosen


def open_project(invocation: Invocation, manifest: Manifest | None = None) -> Project:
    """Read, select and parse. Config problems are kept in ``catalog.problems`` (the caller
    decides when to raise them); a bad selection or a stale manifest raises UsageError."""
    paths = invocation.paths
    manifest = manifest or read_manifest(invocation)
    selection = invocation.selection
    selected_ids = select_models(
        manifest, paths.target_path / "manifest.json", paths.project_dir, selection,
        cli_vars(invocation),
    )  # fmt: skip
    chosen = choose_versions(manifest, selected_ids)
    catalog = build_catalog(manifest, chosen)
    names = set(catalog.declared) if selected_ids is None else set(chosen) & catalog.declared
    unreadable = {n: why for n, why in catalog.unreadable.items() if n in names}
    # dbt never selects a disabled model: naming it is still a mistake worth a clear reason.
    named = {word.strip("+@") for word in selection.words()}
    unreadable.update({n: why for n, why in catalog.unreadable.items() if n in named})
    if selected_ids is None:
        unreadable = {}  # nothing was asked for by name; ls and validate list them apart
    specs = [spec for spec in catalog.specs if spec.model in names]
    notices = []
    if not specs:
        if selected_ids is None or not selection.given:
            notices.append("nothing selected: no model with meta.rdcrm matched")
        elif selected_ids:
            notices.append(
                f"nothing selected: the selection picks {len(selected_ids)} model(s), "
                "none of which declares meta.rdcrm"
            )
        else:
            notices.append("nothing selected: the selection matches no model (as in dbt ls)")
    return Project(paths, manifest, catalog, specs, unreadable, notices)


def ordered(project: Project) -> list[SyncSpec]:
    """The selected syncs, parents first; a link cycle is a config error."""
    return sync_order(project.selected)


def require_readable(project: Project) -> None:
    """Selecting a model that cannot be read (disabled, ephemeral) is an error."""
    for _, why in sorted(project.unreadable_selected.items()):
        raise SelectionError(why)
