"""Whether ``target/manifest.json`` is older than the project files that shape it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

EXPOSURES_MARK = "# Written by `dbt-rdcrm exposures`"


def newer_project_files(project_dir: Path, project_file: Mapping, manifest_path: Path) -> list[str]:
    """Files that shape the manifest (models, their YAML, macros, snapshots) changed after it
    was written: the manifest is stale, or the last ``dbt parse`` failed. Paths relative to
    the project. dbt_project.yml is not compared: its ``vars`` are read live; nor is the file
    ``dbt-rdcrm exposures`` writes (it changes no model)."""
    written = manifest_path.stat().st_mtime
    newer = []
    for key, default in (("model-paths", ["models"]), ("macro-paths", ["macros"])):
        for folder in project_file.get(key) or default:
            root = project_dir / str(folder)
            if not root.is_dir():
                continue
            for path in root.rglob("*"):
                shapes = path.suffix in (".sql", ".yml", ".yaml", ".py") and path.is_file()
                if shapes and path.stat().st_mtime > written and not _ours(path):
                    newer.append(str(path.relative_to(project_dir)))
    return sorted(newer)


def _ours(path: Path) -> bool:
    with path.open(encoding="utf-8", errors="replace") as file:
        return file.readline().startswith(EXPOSURES_MARK)
