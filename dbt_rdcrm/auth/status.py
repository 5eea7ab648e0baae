"""``auth status``: where the credentials come from, how long they last, and whether the CRM
accepts them (one ``GET /users?page[size]=1`` through the CRM client). Never shows a token."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

import requests

from dbt_rdcrm.auth.ci import NOT_PERSISTED, EnvCredentials, ci_provider
from dbt_rdcrm.auth.credentials import NO_CREDENTIALS, stored_login_provider
from dbt_rdcrm.auth.oauth import REFRESH_TOKEN_IDLE_LIFETIME, TIMEOUT, TokenSet, fingerprint
from dbt_rdcrm.auth.provider import StaticTokenProvider, TokenProvider
from dbt_rdcrm.auth.refreshing import LoginRevoked
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.auth.urls import normalize_base_url, require_secure_url
from dbt_rdcrm.errors import AuthError


@dataclass
class StatusReport:
    """What ``auth status`` prints, one fact per line; ``reachable`` is False if the CRM
    could not be asked."""

    base_url: str
    lines: list[str] = field(default_factory=list)
    reachable: bool = True

    def add(self, label: str, text: str) -> None:
        self.lines.append(f"  {label + ':':<15} {text}")

    def render(self) -> str:
        return "\n".join([f"RD Station CRM credentials for {self.base_url}", *self.lines])


def collect_status(
    base_url: str,
    env: Mapping[str, str],
    session: requests.Session,
    *,
    clock: Callable[[], float] = time.time,
) -> StatusReport:
    base_url = normalize_base_url(base_url)
    require_secure_url(base_url, "the CRM base URL")
    report = StatusReport(base_url)
    creds = EnvCredentials.from_env(env)
    store = TokenStore.default(env)
    provider: TokenProvider | None
    if creds.refresh_token is not None:
        provider = _ci_status(report, base_url, creds, session, clock)
    elif creds.access_token is not None:
        report.add("source", "RDCRM_ACCESS_TOKEN (environment); it cannot be renewed")
        provider = StaticTokenProvider(creds.access_token)
    else:
        provider = stored_login_provider(base_url, env, session, clock=clock)
        if provider is None:
            raise AuthError(f"not logged in to {base_url}: {NO_CREDENTIALS}")
        report.add("source", provider.describe())
        login = store.get(base_url)
        if login is not None and login.client_id:
            report.add("client id", login.client_id)
    check = _check_crm(report, base_url, provider, session) if provider is not None else None
    tokens = _stored_tokens(base_url, creds, store)
    if tokens is not None:
        _token_lines(report, tokens, clock())
    if check is not None:
        report.add("CRM check", check)
    others = sorted(url for url in store.logins() if url != base_url)
    if others:
        report.add("other logins", ", ".join(others))
    return report


def _stored_tokens(base_url: str, creds: EnvCredentials, store: TokenStore) -> TokenSet | None:
    """The tokens whose lifetimes are worth showing (read after the CRM check renewed them)."""
    if creds.refresh_token is not None:
        if creds.token_file is None:
            return None
        login = TokenStore(creds.token_file).get(base_url)
        lineage = fingerprint(creds.refresh_token)
        return login.tokens if login and login.tokens.lineage == lineage else None
    if creds.access_token is not None:
        return None
    login = store.get(base_url)
    return login.tokens if login else None


def _ci_status(
    report: StatusReport,
    base_url: str,
    creds: EnvCredentials,
    session: requests.Session,
    clock: Callable[[], float],
) -> TokenProvider | None:
    """CI credentials; checked against the CRM only where a refresh cannot lose the token."""
    report.add("source", "RDCRM_CLIENT_ID, RDCRM_CLIENT_SECRET, RDCRM_REFRESH_TOKEN (environment)")
    creds.ci_client()
    if creds.token_file is not None:
        report.add("rotations", f"kept in RDCRM_TOKEN_FILE {creds.token_file}")
        return ci_provider(base_url, creds, session, clock=clock)
    if creds.state_key is not None:
        report.add("rotations", "kept encrypted in the warehouse state schema (RDCRM_STATE_KEY)")
    else:
        report.add("warning", NOT_PERSISTED)
    if creds.access_token is not None:
        return StaticTokenProvider(creds.access_token)
    report.add(
        "CRM check",
        "skipped: refreshing here would rotate the CI refresh token outside `dbt-rdcrm sync`",
    )
    return None


def _token_lines(report: StatusReport, tokens: TokenSet, now: float) -> None:
    if tokens.access_token is not None and tokens.issued_at is not None:
        left = tokens.expires_at - now
        when = _utc(tokens.expires_at)
        if left > 0:
            report.add("access token", f"valid until {when} (in {_span(left)})")
        else:
            report.add("access token", f"expired at {when}; renewed on next use")
    if tokens.issued_at is not None:
        age = now - tokens.issued_at
        dies = _utc(tokens.issued_at + REFRESH_TOKEN_IDLE_LIFETIME)
        issued = "just now" if age < 60 else f"{_span(age)} ago"
        report.add("refresh token", f"issued {issued}; expires if unused by {dies}")


def _check_crm(
    report: StatusReport, base_url: str, provider: TokenProvider, session: requests.Session
) -> str:
    """One cheap authenticated call through the CRM client (which refreshes once after a
    401, as in a sync); the line to show."""
    from dbt_rdcrm.crm.client import CrmClient, CrmError, Timeouts
    from dbt_rdcrm.crm.limiter import RateLimiter

    client = CrmClient(
        base_url,
        provider,
        RateLimiter(0),
        session=session,
        timeouts=Timeouts(*TIMEOUT, sum(TIMEOUT)),
        max_attempts=1,
    )
    try:
        client.request("GET", "/users?" + urlencode({"page[size]": "1"}))
    except AuthError as exc:
        if isinstance(exc, LoginRevoked) or "(401)" not in str(exc):
            raise
        raise AuthError(
            f"the CRM at {base_url} refuses these credentials (401, {provider.describe()}). "
            "Run `dbt-rdcrm auth login` again."
        ) from None
    except CrmError as exc:
        report.reachable = False
        if exc.status:
            return f"the CRM answered {exc.status}"
        return f"could not reach {base_url}"
    return "credentials accepted"


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def _span(seconds: float) -> str:
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"
