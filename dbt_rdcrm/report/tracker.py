"""What a run did so far, so that a run stopped by an error still ends with its results.

:class:`RunTracker` sits between the engine and the reporters: it forwards every event and
keeps the model results (a model cut short keeps the rows counted so far). When an error ends
the run early, :meth:`RunTracker.stopped` gives the run results with the error in them (and
lets the reporters render them, so ``--output json`` still prints its document), and
:meth:`RunTracker.error_for` says how the run ends: the error itself when nothing may have
been written to the CRM yet (exit 2), else :class:`~dbt_rdcrm.errors.FailedAfterSending`
(exit 3).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from dbt_rdcrm.errors import FailedAfterSending, RdcrmError
from dbt_rdcrm.redaction import redact
from dbt_rdcrm.report.events import (
    Emit,
    Event,
    ModelFinished,
    ModelStarted,
    RowDone,
    RunFinished,
    RunStarted,
)
from dbt_rdcrm.report.results import ModelResult, RunResult

WAIT_SHOWN_FROM = 0.1  # seconds: below this, waiting is not worth a line


class RunTracker:
    """An event sink that forwards to ``emit`` and remembers the run's progress."""

    def __init__(self, emit: Emit, command: str, dry_run: bool):
        self.emit = emit
        self.command = command
        self.dry_run = dry_run
        self.base_url = ""
        self.rate_limit = 0
        self.client: Any = None  # the CRM client, once the run has one
        self.started = False
        self.finished = False
        self.models: list[ModelResult] = []
        self._current: ModelResult | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.started = True
        elif isinstance(event, ModelStarted):
            self._current = ModelResult(event.model, "", event.mode)
        elif isinstance(event, RowDone) and self._current is not None:
            self._current.count(event.outcome)
        elif isinstance(event, ModelFinished):
            self._current = None
            self.models.append(event.result)
        elif isinstance(event, RunFinished):
            self.finished = True
            wait = self.wait_line()
            if wait and wait not in event.result.notices:
                event.result.notices.append(wait)
        self.emit(event)

    @property
    def writes(self) -> int:
        """Write requests that may have changed something in the CRM."""
        return getattr(self.client, "maybe_written", 0) if self.client is not None else 0

    def wait_line(self) -> str | None:
        """How long the run waited on the CRM, when it is worth saying."""
        client = self.client
        if client is None or client.waited < WAIT_SHOWN_FROM:
            return None
        return (
            f"waited {client.waited:.1f}s on the CRM: {client.answer_wait:.1f}s for answers, "
            f"{client.backoff_wait:.1f}s backing off before retries, "
            f"{client.limiter.stats().waited_s:.1f}s at the rate limit"
        )

    def stopped(self, exc: BaseException) -> RunResult:
        """The results of a run that ``exc`` ended early; reporters get them if they saw it
        start."""
        message = _message(exc)
        models = list(self.models)
        if self._current is not None:
            self._current.status = "error"
            self._current.error = message
            models.append(self._current)
            self._current = None
        result = RunResult(
            run_id=str(uuid.uuid4()),
            command=self.command,
            invocation_id=None,
            generated_at=dt.datetime.now(dt.timezone.utc).isoformat(),
            base_url=self.base_url,
            rate_limit=self.rate_limit,
            dry_run=self.dry_run,
            models=models,
            error={"type": type(exc).__name__, "message": message, "writes_sent": self.writes},
        )
        if self.writes:
            result.notices.append(_after_sending(self.writes))
        if self.started and not self.finished:
            self(RunFinished(result))
        return result

    def error_for(self, exc: BaseException) -> BaseException:
        """The error the run ends with: ``exc``, or FailedAfterSending once writes went out
        (an interruption stays one)."""
        if not self.writes or isinstance(exc, KeyboardInterrupt):
            return exc
        return FailedAfterSending(f"{_message(exc)}; {_after_sending(self.writes)}")


def _message(exc: BaseException) -> str:
    if isinstance(exc, RdcrmError):
        return redact(str(exc))
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return redact(f"{type(exc).__name__}: {exc}")[:500]


def _after_sending(writes: int) -> str:
    noun = "request" if writes == 1 else "requests"
    return (
        f"the run stopped after {writes} write {noun} reached the CRM: state is committed up "
        "to the last checkpoint and the next run resolves the rest"
    )
