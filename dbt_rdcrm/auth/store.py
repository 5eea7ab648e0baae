"""The token store: one JSON file, mode 0600, logins keyed by CRM base URL.

The file is only ever replaced whole (temp file + fsync + rename), so a reader sees the old or
the new content, never half of each. Writers hold a lock (:mod:`dbt_rdcrm.auth.filelock`: flock,
msvcrt, or an ``O_EXCL`` lock file) on a sibling ``.lock`` file
(the data file's inode changes on every rename, so it cannot carry the lock); the refreshing
provider holds the same lock across "read refresh token, spend it, save the new one", which is
what keeps two processes from spending the same refresh token.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dbt_rdcrm.auth.filelock import FileLock, LockTimeout
from dbt_rdcrm.auth.oauth import TokenSet
from dbt_rdcrm.auth.urls import normalize_base_url
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret

STORE_FILENAME = "credentials.json"
FORMAT_VERSION = 1


def default_config_dir(env: Mapping[str, str]) -> Path:
    """``$RDCRM_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/dbt-rdcrm``, else ``~/.config/dbt-rdcrm``."""
    if env.get("RDCRM_CONFIG_DIR"):
        return Path(env["RDCRM_CONFIG_DIR"]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]).expanduser() / "dbt-rdcrm"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".config" / "dbt-rdcrm"


@dataclass(frozen=True)
class StoredLogin:
    """What ``auth login`` leaves behind for one base URL (client fields absent in CI files)."""

    tokens: TokenSet
    token_url: str
    client_id: str | None = None
    client_secret: Secret | None = None
    logged_in_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret.reveal() if self.client_secret else None,
            "token_url": self.token_url,
            "logged_in_at": self.logged_in_at,
            "tokens": self.tokens.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredLogin:
        secret = data.get("client_secret")
        return cls(
            tokens=TokenSet.from_json(data["tokens"]),
            token_url=str(data["token_url"]),
            client_id=data.get("client_id"),
            client_secret=Secret(secret) if secret else None,
            logged_in_at=data.get("logged_in_at"),
        )


class TokenStore:
    """Logins in a 0600 JSON file; :meth:`lock` serializes writers across processes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._mutex = threading.RLock()
        self._depth = 0
        self._file_lock: FileLock | None = None

    @classmethod
    def default(cls, env: Mapping[str, str]) -> TokenStore:
        return cls(default_config_dir(env) / STORE_FILENAME)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across processes and threads; re-entrant within one thread."""
        with self._mutex:
            if self._depth == 0:
                self._ensure_dir()
                file_lock = FileLock(self._lock_path)
                try:
                    file_lock.acquire()
                except LockTimeout:
                    raise AuthError(
                        f"the token store {self.path} stayed locked by another dbt-rdcrm "
                        f"process for {file_lock.timeout:.0f}s: let it finish, then try again"
                    ) from None
                self._file_lock = file_lock
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._file_lock is not None:
                    self._file_lock.release()
                    self._file_lock = None

    def get(self, base_url: str) -> StoredLogin | None:
        entry = self._read().get(normalize_base_url(base_url))
        return None if entry is None else self._parse(entry)

    def logins(self) -> dict[str, StoredLogin]:
        return {url: self._parse(entry) for url, entry in self._read().items()}

    def put(self, base_url: str, login: StoredLogin) -> None:
        with self.lock():
            logins = self._read()
            logins[normalize_base_url(base_url)] = login.to_json()
            self._write(logins)

    def update_tokens(self, base_url: str, tokens: TokenSet, token_url: str) -> None:
        """Replace the tokens of a login, keeping its client fields (creates it if absent)."""
        with self.lock():
            current = self.get(base_url)
            login = (
                replace(current, tokens=tokens)
                if current
                else StoredLogin(tokens=tokens, token_url=token_url)
            )
            self.put(base_url, login)

    def delete(self, base_url: str) -> bool:
        with self.lock():
            logins = self._read()
            found = logins.pop(normalize_base_url(base_url), None) is not None
            if found:
                self._write(logins)
            return found

    def delete_all(self) -> bool:
        """Remove the store file whatever its content; True if there was one."""
        with self.lock():
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            return True

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._unreadable(exc.strerror or type(exc).__name__) from None
        except UnicodeDecodeError:
            raise self._unreadable("not text: binary data") from None
        self._tighten_permissions()
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._unreadable("not valid JSON") from None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            raise self._unreadable(f"expected a version {FORMAT_VERSION} token store")
        logins = data.get("logins")
        if not isinstance(logins, dict):
            raise self._unreadable("no 'logins' object")
        return logins

    def _parse(self, entry: dict[str, Any]) -> StoredLogin:
        try:
            return StoredLogin.from_json(entry)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise self._unreadable("an entry has missing or invalid fields") from None

    def _write(self, logins: dict[str, dict[str, Any]]) -> None:
        self._ensure_dir()
        content = json.dumps({"version": FORMAT_VERSION, "logins": logins}, indent=2)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            if hasattr(os, "fchmod"):  # not on Windows, where mkstemp's file is private
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._fsync_dir()

    def _ensure_dir(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _fsync_dir(self) -> None:
        if os.name == "nt":  # directories cannot be opened there; the rename is durable
            return
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _tighten_permissions(self) -> None:
        """A store copied in with loose permissions is made private again on first read."""
        mode = self.path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(self.path, 0o600)

    def _unreadable(self, reason: str) -> AuthError:
        return AuthError(
            f"the token store {self.path} is unreadable ({reason}): run "
            "`dbt-rdcrm auth logout --all` and `dbt-rdcrm auth login` again"
        )
