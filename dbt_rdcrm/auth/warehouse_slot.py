"""CI tokens kept in the warehouse state schema, encrypted under ``RDCRM_STATE_KEY``.

Table ``rdcrm_credentials`` holds one row per CRM base URL: the Fernet ciphertext (AES-128-CBC
+ HMAC-SHA256, authenticated) of the token pair, and the sha256 fingerprint of the
``RDCRM_REFRESH_TOKEN`` its rotation chain started from. Nothing else about the tokens is
stored. The row is replaced by delete + insert in one transaction (portable: no MERGE).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from dbt_rdcrm.auth.oauth import TokenSet
from dbt_rdcrm.dbt.warehouse import WarehouseError
from dbt_rdcrm.errors import AuthError
from dbt_rdcrm.redaction import Secret, redact

if TYPE_CHECKING:  # cryptography is the optional extra dbt-rdcrm[ci], imported when used
    from cryptography.fernet import Fernet

TABLE = "rdcrm_credentials"
MIN_KEY_LENGTH = 32
_KDF_INFO = b"dbt-rdcrm rdcrm_credentials v1"


class CredentialsUnreadable(AuthError):
    """The stored row exists but does not decrypt under the current key."""

    def __init__(self, table: str):
        super().__init__(
            f"the credentials stored in {table} do not decrypt with RDCRM_STATE_KEY "
            "(was the key changed?)"
        )
        self.table = table

    def message_for_refused_seed(self) -> str:
        """When RDCRM_REFRESH_TOKEN was spent by earlier runs, the stored row is the live login."""
        return (
            f"the stored credentials in {self.table} do not decrypt with this key "
            "(RDCRM_STATE_KEY), and RDCRM_REFRESH_TOKEN was already spent by an earlier run: "
            "set RDCRM_STATE_KEY back to the key the earlier runs used, or put a new refresh "
            "token in RDCRM_REFRESH_TOKEN (`dbt-rdcrm auth login --ci`)"
        )


def cipher_from_key(state_key: Secret) -> Fernet:
    """Derive the Fernet key from ``RDCRM_STATE_KEY`` (any string of at least 32 characters)."""
    raw = state_key.reveal().encode()
    if len(raw) < MIN_KEY_LENGTH:
        raise AuthError(
            f"RDCRM_STATE_KEY is too short ({len(raw)} characters, at least {MIN_KEY_LENGTH}): "
            "generate one with `openssl rand -base64 32`"
        )
    try:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    except ImportError:
        raise AuthError(
            "RDCRM_STATE_KEY keeps CI credentials encrypted in the warehouse, which needs the "
            "cryptography package: pip install 'dbt-rdcrm[ci]' (or set RDCRM_TOKEN_FILE instead)"
        ) from None
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(raw)
    return Fernet(base64.urlsafe_b64encode(derived))


class WarehouseSlot:
    """The rotated tokens of one base URL, encrypted in ``<state schema>.rdcrm_credentials``.

    There is no portable row lock, so :meth:`locked` is a no-op: a process that loses a
    refresh race gets ``invalid_grant`` and re-reads the row (``race_rereads``).
    """

    race_rereads = 3

    def __init__(
        self,
        warehouse: Any,
        *,
        database: str | None,
        schema: str,
        base_url: str,
        cipher: Fernet,
    ):
        self._wh = warehouse
        self._database = database
        self._schema = schema
        self._base_url = base_url
        self._cipher = cipher
        self._ready = False
        self.table = warehouse.relation(database, schema, TABLE)

    def locked(self) -> AbstractContextManager[None]:
        return nullcontext()

    def load(self) -> TokenSet | None:
        b = self._wh.binding_char
        sql = f"select {self._col('ciphertext')} from {self.table} where {self._col('crm_scope')} = {b}"
        try:
            self._ensure()
            rows = self._wh.query(sql, [self._base_url])
        except WarehouseError as exc:
            raise AuthError(
                f"cannot read the stored CI credentials from {self.table}: {redact(str(exc))}"
            ) from None
        if not rows:
            return None
        from cryptography.fernet import InvalidToken

        try:
            plain = self._cipher.decrypt(str(rows[0][0]).encode())
            data = json.loads(plain)
        except (InvalidToken, ValueError):
            raise CredentialsUnreadable(self.table) from None
        if not isinstance(data, dict) or data.get("crm_scope") != self._base_url:
            raise CredentialsUnreadable(self.table)
        try:
            return TokenSet.from_json(data["tokens"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CredentialsUnreadable(self.table) from None

    def save(self, tokens: TokenSet) -> None:
        plain = json.dumps({"crm_scope": self._base_url, "tokens": tokens.to_json()})
        ciphertext = self._cipher.encrypt(plain.encode()).decode()
        b = self._wh.binding_char
        scope = self._col("crm_scope")
        columns = ", ".join(
            self._col(c) for c in ("crm_scope", "lineage", "ciphertext", "updated_at")
        )
        try:
            self._ensure()
            self._wh.execute(f"delete from {self.table} where {scope} = {b}", [self._base_url])
            self._wh.execute(
                f"insert into {self.table} ({columns}) values ({b}, {b}, {b}, {b})",
                [self._base_url, tokens.lineage, ciphertext, _utcnow()],
            )
            self._wh.commit()
        except WarehouseError as exc:
            raise AuthError(
                f"RD Station rotated the refresh token but it could not be saved to {self.table} "
                f"({redact(str(exc))}); the previous one is already dead. Fix the warehouse, run "
                "`dbt-rdcrm auth login` locally and update RDCRM_REFRESH_TOKEN in CI."
            ) from None

    def describe(self) -> str:
        return f"warehouse table {self.table} (encrypted with RDCRM_STATE_KEY)"

    def _ensure(self) -> None:
        if self._ready:
            return
        s, t = self._wh.string_type, self._wh.timestamp_type
        columns = f"{self._col('crm_scope')} {s}, {self._col('lineage')} {s}, "
        columns += f"{self._col('ciphertext')} {s}, {self._col('updated_at')} {t}"
        self._wh.create_schema(self._database, self._schema)
        self._wh.execute(f"create table if not exists {self.table} ({columns})", [])
        self._wh.commit()
        self._ready = True

    def _col(self, name: str) -> str:
        quote = getattr(self._wh, "quote", None)
        return quote(name) if quote else name


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
