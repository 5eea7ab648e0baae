"""How counts, durations and model statuses read in the run's report (tables and lines alike)."""

from __future__ import annotations

import math

from dbt_rdcrm.report.results import ModelResult


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def duration_text(seconds: float) -> str:
    """A time taken: ``4.2s``, ``1m30s``, ``2h05m00s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def eta_text(seconds: float) -> str:
    """An ETA rounded up to whole seconds: ``6s``, ``1m30s``, ``14h00m00s``."""
    whole = math.ceil(round(seconds, 3))
    return duration_text(whole) if seconds >= 60 else f"{whole}s"


def clock_text(seconds: float) -> str:
    """A time left as a progress bar shows it: ``0:01:30``."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def status_word(m: ModelResult) -> str:
    """``ok``, ``warn`` (done, but some rows failed or were rejected), ``failed`` or ``error``."""
    if m.status == "success":
        return "warn" if m.problems else "ok"
    return m.status
