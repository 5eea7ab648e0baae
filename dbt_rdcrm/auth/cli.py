"""``dbt-rdcrm auth login | status | logout``: flags in, messages and exit codes out."""

from __future__ import annotations

import functools
import os
import sys
import webbrowser
from collections.abc import Callable
from typing import Any, TypeVar

import click
import requests

from dbt_rdcrm.auth.login import (
    DEFAULT_REDIRECT_PORT,
    LOGIN_TIMEOUT,
    LoginRequest,
    loopback_redirect_uri,
    run_login,
)
from dbt_rdcrm.auth.oauth import ClientCredentials
from dbt_rdcrm.auth.status import collect_status
from dbt_rdcrm.auth.store import TokenStore
from dbt_rdcrm.auth.urls import DEFAULT_BASE_URL, authorize_url_for, normalize_base_url
from dbt_rdcrm.errors import RdcrmError, UsageError
from dbt_rdcrm.redaction import Secret, redact
from dbt_rdcrm.report.terminal import printable

F = TypeVar("F", bound=Callable[..., Any])
ENV_OVERRIDES = ("RDCRM_ACCESS_TOKEN", "RDCRM_REFRESH_TOKEN")


def base_url_option(command: F) -> F:
    """``--base-url`` and the dbt project flags: the base URL is resolved exactly as ``sync``
    resolves it (flag, RDCRM_BASE_URL, the project's ``vars.rdcrm.base_url``, default)."""
    for option in reversed(
        [
            click.option(
                "--base-url",
                help=f"CRM API base URL (default: $RDCRM_BASE_URL, the project's "
                f"vars.rdcrm.base_url, {DEFAULT_BASE_URL}).",
            ),
            click.option("--project-dir", help="dbt project whose vars.rdcrm to read."),
            click.option("--profiles-dir", help="Directory holding profiles.yml."),
            click.option("-t", "--target", help="dbt target from profiles.yml."),
        ]
    ):
        command = option(command)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dbt_rdcrm.invocation import project_base_url

        kwargs["base_url"] = project_base_url(
            kwargs.pop("base_url"),
            kwargs.pop("project_dir"),
            kwargs.pop("profiles_dir"),
            kwargs.pop("target"),
        )
        return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _say(text: str) -> None:
    click.echo(_lines(text))


def _tell(text: str) -> None:
    """Messages of ``login --ci``, whose standard output carries only the token."""
    click.echo(_lines(text), err=True)


def _lines(text: str) -> str:
    """Our message, secrets masked and each line's control characters escaped."""
    return "\n".join(printable(redact(line)) for line in str(text).split("\n"))


def _clean_exit(command: F) -> F:
    """Our errors become one redacted line on stderr and their exit code (2 for auth)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RdcrmError as exc:
            click.echo(f"error: {printable(redact(str(exc)))}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def _session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = "dbt-rdcrm"
    return session


@click.group("auth")
def auth_group() -> None:
    """Log in to RD Station CRM, check and remove stored credentials."""


@auth_group.command("login")
@click.option("--client-id", envvar="RDCRM_CLIENT_ID", help="RD Station app client id.")
@click.option(
    "--client-secret-stdin",
    is_flag=True,
    help="Read the client secret from standard input (else RDCRM_CLIENT_SECRET or a prompt).",
)
@click.option(
    "--redirect-port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_REDIRECT_PORT,
    show_default=True,
    help="Port of the redirect URI http://127.0.0.1:PORT/callback.",
)
@click.option("--redirect-uri", help="Redirect URI registered in the RD Station app.")
@click.option(
    "--authorize-url", help="Authorization page (default: <API origin>/oauth2/authorize)."
)
@click.option(
    "--no-browser", is_flag=True, help="Print the authorization URL instead of opening it."
)
@click.option("--paste", is_flag=True, help="Paste the redirect address (or code) instead.")
@click.option(
    "--ci",
    is_flag=True,
    help="Make a separate login for CI: print its refresh token (for RDCRM_REFRESH_TOKEN) "
    "on standard output, messages on standard error; store nothing.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=LOGIN_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the redirect.",
)
@_clean_exit
@base_url_option
def login_command(
    base_url: str,
    client_id: str | None,
    client_secret_stdin: bool,
    redirect_port: int,
    redirect_uri: str | None,
    authorize_url: str | None,
    no_browser: bool,
    paste: bool,
    ci: bool,
    timeout: float,
) -> None:
    """Authorize dbt-rdcrm in the browser and store the tokens (0600, in your config dir)."""
    base_url = normalize_base_url(base_url)
    client_id = (client_id or "").strip() or click.prompt(
        "RD Station app client id", err=True
    ).strip()
    secret = _client_secret(client_secret_stdin)
    request = LoginRequest(
        base_url=base_url,
        client=ClientCredentials(client_id, secret),
        authorize_url=authorize_url or authorize_url_for(base_url),
        redirect_uri=redirect_uri or loopback_redirect_uri(redirect_port),
        open_browser=not no_browser,
        paste=paste,
        timeout=timeout,
    )
    store = None if ci else TokenStore.default(os.environ)
    login = run_login(
        request,
        session=_session(),
        store=store,
        show=_tell if ci else _say,
        open_url=webbrowser.open,
        read_paste=lambda: click.prompt("Redirect address or code", err=True),
    )
    if store is None:
        _tell(
            "Set the line below as the CI secret RDCRM_REFRESH_TOKEN (with RDCRM_CLIENT_ID and "
            "RDCRM_CLIENT_SECRET). It is shown once and not stored here; keep this login for "
            "CI only."
        )
        click.echo(login.tokens.refresh_token.reveal())
        return
    _say(f"Logged in to {base_url}; credentials stored in {store.path}.")
    stored_only = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    _say(collect_status(base_url, stored_only, _session()).render())
    if any(os.environ.get(name) for name in ENV_OVERRIDES):
        _say("Note: RDCRM_ACCESS_TOKEN/RDCRM_REFRESH_TOKEN in the environment take precedence.")


def _client_secret(from_stdin: bool) -> Secret:
    """From standard input, RDCRM_CLIENT_SECRET or a hidden prompt: never a flag's value,
    which would land in shell history and process listings."""
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise UsageError("--client-secret-stdin: standard input was empty")
        return Secret(value)
    value = os.environ.get("RDCRM_CLIENT_SECRET", "").strip()
    if value:
        return Secret(value)
    return Secret(click.prompt("RD Station app client secret", hide_input=True, err=True).strip())


@auth_group.command("status")
@_clean_exit
@base_url_option
def status_command(base_url: str) -> None:
    """Show where credentials come from and whether the CRM accepts them (never a token)."""
    report = collect_status(base_url, os.environ, _session())
    _say(report.render())
    if not report.reachable:
        sys.exit(1)


@auth_group.command("logout")
@click.option("--all", "everything", is_flag=True, help="Remove every stored login.")
@_clean_exit
@base_url_option
def logout_command(base_url: str, everything: bool) -> None:
    """Delete stored credentials (for --base-url, or all of them)."""
    store = TokenStore.default(os.environ)
    if everything:
        removed = store.delete_all()
        _say(f"Removed {store.path}." if removed else f"No stored logins ({store.path}).")
        return
    base_url = normalize_base_url(base_url)
    if store.delete(base_url):
        _say(f"Logged out of {base_url} (removed from {store.path}).")
    else:
        _say(f"No stored login for {base_url} in {store.path}.")
    if any(os.environ.get(name) for name in ENV_OVERRIDES):
        _say("Note: RDCRM_ACCESS_TOKEN/RDCRM_REFRESH_TOKEN in the environment still apply.")
