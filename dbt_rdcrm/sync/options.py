"""What a sync or plan was asked to do (:class:`SyncOptions`), shared by the run and each model."""

from __future__ import annotations

from dataclasses import dataclass

BUDGET_SPENT = "request budget (--max-requests) spent: continues on the next run"


@dataclass(frozen=True)
class SyncOptions:
    dry_run: bool = False
    full_refresh: bool = False
    retry_failed: bool = False
    max_requests: int | None = None
    show: int = 0  # dry run: keep the first N payloads per operation for `plan --show`
    checkpoint_rows: int = 50
    checkpoint_seconds: float = 5.0
    allow_mass_change: bool = False
    concurrency: int | None = None  # writes in flight at once (1: one at a time; None: 4)
    settle_seconds: float = 0.0  # how long an unanswered create may still land in the CRM
