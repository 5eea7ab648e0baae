"""Errors, named after what the caller must do.

    RdcrmError                 base; ``str()`` is one clear line, never a secret
    ├── ConfigError            abort before any network call; carries every problem (exit 2)
    ├── UsageError             bad flags, missing manifest, unbuilt model (exit 2)
    │   └── SelectionError     dbt refused the selection, or it names an unreadable model
    ├── AuthError              no usable credentials, revoked or expired login (exit 2)
    ├── AbortModel             stop one model's sync; other models go on (exit 1)
    └── FailedAfterSending     the run stopped on an error after writes reached the CRM (exit 3)

Exit codes: 0 ok, 1 some model failed, 2 nothing was sent (usage, config, auth), 3 the run
stopped on an error after sending (state is committed up to the last checkpoint).

Request-level errors (retry the request, reject the row) live in :mod:`dbt_rdcrm.crm.client`.
"""

from __future__ import annotations

from dataclasses import dataclass


class RdcrmError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One configuration problem: where it is (a YAML-like path) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(RdcrmError):
    """The declared syncs are invalid; ``problems`` lists all of them at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = [f"invalid rdcrm configuration ({len(self.problems)} {noun}):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))


class UsageError(RdcrmError):
    """The command cannot run as asked (missing manifest, unbuilt model, bad flag)."""


class SelectionError(UsageError):
    """dbt refused the selection, or it names a model that cannot be synced."""


class AuthError(RdcrmError):
    """No usable CRM credentials; the message says how to fix it."""


class AbortModel(RdcrmError):
    """Stop syncing the current model (partial_success is off and a row failed)."""

    exit_code = 1


class FailedAfterSending(RdcrmError):
    """The run stopped on an error after write requests reached the CRM."""

    exit_code = 3
