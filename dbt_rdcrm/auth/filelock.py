"""An exclusive lock between processes, on a lock file next to the data it protects.

Three backends, chosen when a lock is first taken (never at import, so importing the package
needs neither ``fcntl`` nor ``msvcrt``):

- ``fcntl.flock`` (Linux, macOS): released by the kernel when the holder dies.
- ``msvcrt.locking`` (Windows): the same, on the lock file's first byte.
- elsewhere, a lock file created with ``O_EXCL`` that holds the owner's pid and host; a lock
  whose owner is gone (same host, dead pid) or that is older than ``stale_after`` seconds is
  broken, so a crash never leaves the store locked for good.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

POLL = 0.05


class LockTimeout(OSError):
    """The lock was not free within the timeout."""


class FileLock:
    """Not re-entrant and not for threads: callers serialise threads themselves."""

    def __init__(
        self,
        path: Path,
        *,
        timeout: float = 60.0,
        stale_after: float = 300.0,
        backend: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.path = Path(path)
        self.timeout = timeout
        self.stale_after = stale_after
        self.backend = backend or _default_backend()
        self._clock = clock
        self._sleep = sleep
        self._fd: int | None = None

    def acquire(self) -> None:
        deadline = self._clock() + self.timeout
        while not self._try():
            if self._clock() >= deadline:
                raise LockTimeout(f"{self.path} is held by another process")
            self._sleep(POLL)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if self.backend == "fcntl":
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
        elif self.backend == "msvcrt":
            import msvcrt

            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        os.close(fd)
        if self.backend == "exclusive":
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- backends ------------------------------------------------------------------------
    def _try(self) -> bool:
        if self.backend == "exclusive":
            return self._try_exclusive()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if self.backend == "fcntl":
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            else:
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def _try_exclusive(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if self._stale():
                self.path.unlink(missing_ok=True)
            return False
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        os.write(fd, json.dumps(owner).encode())
        os.fsync(fd)
        self._fd = fd
        return True

    def _stale(self) -> bool:
        """The lock file's owner is gone, or it is older than ``stale_after``."""
        try:
            age = time.time() - self.path.stat().st_mtime
            owner = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            owner = {}
        if age > self.stale_after:
            return True
        if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
            return False
        pid = owner.get("pid")
        return isinstance(pid, int) and not _alive(pid)


def _default_backend() -> str:
    try:
        import fcntl  # noqa: F401
    except ImportError:
        pass
    else:
        return "fcntl"
    try:
        import msvcrt  # noqa: F401
    except ImportError:
        return "exclusive"
    return "msvcrt"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there: rely on the age instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM), or no way to ask: assume alive
        return True
    return True
