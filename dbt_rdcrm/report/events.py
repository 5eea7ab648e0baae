"""Events the engine emits; reporters render them. The engine itself never prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dbt_rdcrm.report.results import ModelResult, Outcome, RunResult


@dataclass(frozen=True)
class RunStarted:
    models: tuple[str, ...]
    dry_run: bool
    rate_limit: int = 0  # requests per minute (0: none), for ETAs before rows have a pace


@dataclass(frozen=True)
class ModelStarted:
    model: str
    mode: str
    to_process: int  # rows that need a decision this run
    unchanged: int


@dataclass(frozen=True)
class RowDone:
    model: str
    outcome: Outcome


@dataclass(frozen=True)
class RateLimitWait:
    """The shared rate limiter holds the next request back for ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Notice:
    message: str
    model: str | None = None


@dataclass(frozen=True)
class ModelFinished:
    result: ModelResult


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


Event = RunStarted | ModelStarted | RowDone | RateLimitWait | Notice | ModelFinished | RunFinished
Emit = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An event sink that drops everything."""
