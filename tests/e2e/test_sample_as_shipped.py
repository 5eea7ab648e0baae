"""The sample project exactly as shipped (its keyless model included), as `make demo` runs it.
The shared ``sample`` fixture leaves the keyless model out: its tests pin the other models'
counts and output."""

from __future__ import annotations

import pytest
from conftest import EMULATOR_ENV
from support import KEYLESS_MODEL, build_sample


@pytest.fixture
def shipped(tmp_path, emulator):
    project = build_sample(tmp_path / "sample_project", shipped=True)
    project.env.update(EMULATOR_ENV | {"RDCRM_BASE_URL": emulator.base_url})
    return project


def test_a_model_without_key_creates_each_distinct_row_once_and_then_sends_nothing(
    shipped, emulator
):
    validate = shipped.cli("validate")
    assert validate.exit_code == 0, validate.output
    assert (
        f"warning models.{KEYLESS_MODEL}.config.meta.rdcrm.key: no key: each distinct row is "
        "created once and identified by its content"
    ) in validate.output
    plan = shipped.cli("plan")
    assert plan.exit_code == 0, plan.output
    assert (
        f"{KEYLESS_MODEL} declares no key: each distinct row is created once and a changed row "
        "becomes a new record"
    ) in plan.output

    first = shipped.sync()
    assert first.exit_code == 0, first.output
    assert first.counts(KEYLESS_MODEL)["created"] == 3
    leads = {c["name"]: c for c in emulator.state()["contacts"] if "job_title" in c}
    assert leads["Ana Luíza Prado"]["emails"] == [{"email": "ana.prado@example.com"}]
    assert leads["Ana Luíza Prado"]["job_title"] == "Diretora Financeira"
    assert len(emulator.state()["contacts"]) == 5  # the 2 customers and the 3 leads

    emulator.clear_requests()
    again = shipped.sync()
    assert again.exit_code == 0, again.output
    assert again.counts(KEYLESS_MODEL)["unchanged"] == 3
    assert [r for r in emulator.requests() if r["method"] != "GET"] == []
