"""The deterministic subset of the chaos campaign (`make chaos` runs all of it): 30 rows per
model, one scenario per delivery risk of issue 9. Each must end with no duplicate, no missing
row, no row adopted wrongly and every row in step after two clean syncs."""

from __future__ import annotations

import sys

import pytest
from support import REPO

sys.path.insert(0, str(REPO / "scripts"))

from chaos.campaign import (  # noqa: E402
    InProcessRunner,
    Scenario,
    Workbench,
    cli_commands,
    crm_side,
    crm_side_check,
    fault,
    kill_at,
    lost_state,
    overlapping,
    run_scenario,
    two_marias,
)
from chaos.project import Shape  # noqa: E402

pytestmark = pytest.mark.chaos

SHAPE = Shape(organizations=30, contacts=30, deals=30, seed=9)
SCENARIOS = [
    Scenario("two Maria Silva, one 503", two_marias(change_email=False)),
    Scenario(
        "drop after commit on 20% of POSTs",
        fault({"method": "POST", "action": "drop_after_commit", "probability": 0.2, "seed": 1}),
    ),
    Scenario(
        "504 on every POST /deals",
        fault({"method": "POST", "path": "/deals", "action": "status", "status": 504}),
    ),
    # the CRM processes the killed run's POST 1.5 s after the kill: the next run must not look
    # for it (and create it again) before it can no longer land
    Scenario("kill -9 during a contact create", kill_at("in-flight write")),
    Scenario("two syncs together", overlapping(2)),
    Scenario("id map emptied", lost_state("emptied")),
    Scenario("records deleted in the CRM", crm_side("deleted"), check=crm_side_check("deleted")),
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Workbench:
    return Workbench(SHAPE, tmp_path_factory.mktemp("chaos"))


@pytest.fixture(scope="module")
def commands() -> set[str]:
    return cli_commands(in_process=True)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_every_row_ends_as_exactly_one_record_in_step(scenario, bench, commands):
    outcome = run_scenario(scenario, bench, InProcessRunner(), commands)
    report = "\n".join(
        [
            f"exits: {' '.join(outcome.exits)}",
            *outcome.problems,
            *(outcome.figures.details if outcome.figures else []),
            *outcome.notes,
        ]
    )
    assert outcome.not_applicable is None, f"{outcome.not_applicable}\n{report}"
    assert outcome.problems == [], report
    assert outcome.figures.as_tuple() == (0, 0, 0, 0), report
