"""A run stopped by an error still ends with its results, and says whether it sent anything."""

from types import SimpleNamespace

from dbt_rdcrm.dbt.warehouse import WarehouseError
from dbt_rdcrm.errors import FailedAfterSending
from dbt_rdcrm.report.events import ModelStarted, RowDone, RunFinished, RunStarted
from dbt_rdcrm.report.results import Outcome
from dbt_rdcrm.report.tracker import RunTracker


def tracker_with(events: list, writes: int = 0) -> RunTracker:
    tracker = RunTracker(events.append, "sync", dry_run=False)
    limiter = SimpleNamespace(waited=0.0)
    tracker.client = SimpleNamespace(
        maybe_written=writes, waited=0.0, answer_wait=0.0, backoff_wait=0.0, limiter=limiter
    )
    return tracker


def test_a_run_cut_short_keeps_the_rows_it_counted_and_reaches_the_reporters():
    events: list = []
    tracker = tracker_with(events, writes=2)
    tracker(RunStarted(("crm_contacts",), dry_run=False))
    tracker(ModelStarted("crm_contacts", "contacts", 5, 0))
    tracker(RowDone("crm_contacts", Outcome.CREATED))
    tracker(RowDone("crm_contacts", Outcome.UPDATED))
    result = tracker.stopped(WarehouseError("target dev: writing state failed: disk full"))
    assert isinstance(events[-1], RunFinished) and events[-1].result is result
    (model,) = result.models
    assert (model.status, model.rows_read) == ("error", 2)
    assert result.error == {
        "type": "WarehouseError",
        "message": "target dev: writing state failed: disk full",
        "writes_sent": 2,
    }
    assert result.success is False and result.to_dict()["error"]["writes_sent"] == 2


def test_after_writes_the_run_fails_with_exit_3_and_says_so():
    tracker = tracker_with([], writes=1)
    error = tracker.error_for(WarehouseError("target dev: writing state failed"))
    assert isinstance(error, FailedAfterSending) and error.exit_code == 3
    assert "the run stopped after 1 write request reached the CRM" in str(error)


def test_before_any_write_the_error_is_kept_as_it_is():
    tracker = tracker_with([], writes=0)
    original = WarehouseError("x")
    assert tracker.error_for(original) is original
    interrupted = KeyboardInterrupt()
    assert tracker_with([], writes=3).error_for(interrupted) is interrupted


def test_a_run_that_never_started_is_not_rendered():
    events: list = []
    tracker = tracker_with(events)
    tracker.stopped(ValueError("boom"))
    assert events == []
