"""Shared fixtures: a real CRM emulator over HTTP and built copies of the sample dbt project."""

from __future__ import annotations

import pytest
from support import Project, build_sample, copy_project

from dbt_rdcrm.emulator import Emulator


@pytest.fixture
def emulator():
    """A fresh emulator on a free loopback port, rate limit off (tests count requests)."""
    with Emulator(rate_limit=0) as emu:
        yield emu


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory) -> Project:
    """The sample project, built once per session; tests get their own copy."""
    return build_sample(tmp_path_factory.mktemp("template") / "sample_project")


@pytest.fixture
def sample(sample_template, tmp_path, emulator) -> Project:
    """A private, built copy of the sample project, pointed at this test's emulator."""
    project = copy_project(sample_template, tmp_path / "sample_project")
    project.env.update({"RDCRM_BASE_URL": emulator.base_url,
                        "RDCRM_ACCESS_TOKEN": "emulator-token"})
    return project
