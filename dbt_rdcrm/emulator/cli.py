"""``dbt-rdcrm emulator``: run the local RD Station CRM v2 emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from dbt_rdcrm.emulator.app import Emulator
from dbt_rdcrm.emulator.fixtures import FixtureError


class StartupError(click.ClickException):
    """The emulator cannot start: one line on stderr, exit code 2."""

    exit_code = 2


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="0 picks a free port.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    default=120,
    show_default=True,
    help="CRM requests per minute for the account; 0 disables the limit.",
)
@click.option(
    "--fixtures",
    "fixtures_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON file that replaces the default users, pipelines, custom fields and records.",
)
@click.option(
    "--access-token-ttl",
    type=click.IntRange(min=1),
    default=7200,
    show_default=True,
    help="Lifetime of issued access tokens, in seconds.",
)
@click.option(
    "--refresh-token-ttl",
    type=click.IntRange(min=1),
    default=14 * 86400,
    show_default=True,
    help="Lifetime of an unused refresh token, in seconds.",
)
def emulator_command(
    host: str,
    port: int,
    rate_limit: int,
    fixtures_file: Path | None,
    access_token_ttl: int,
    refresh_token_ttl: int,
) -> None:
    """Run a local RD Station CRM v2 emulator (fixed access token: emulator-token)."""
    try:
        emulator = Emulator(
            host=host,
            port=port,
            rate_limit=rate_limit,
            fixtures=fixtures_file,
            access_token_ttl=access_token_ttl,
            refresh_token_ttl=refresh_token_ttl,
        )
    except FixtureError as exc:
        raise StartupError(str(exc)) from None
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            base_url = emulator.base_url
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        click.echo(f"RD Station CRM emulator listening on {base_url}")
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM stops the server like Ctrl-C does."""
    raise KeyboardInterrupt
