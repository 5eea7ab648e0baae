"""Fixtures for the auth tests: the emulator on a fake clock, an isolated config dir, a test
"browser" that clicks through the emulator's consent page, and a fresh-process CI runner."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from dbt_rdcrm.auth import oauth
from dbt_rdcrm.auth.login import LoginRequest, run_login
from dbt_rdcrm.auth.oauth import ClientCredentials, TokenSet
from dbt_rdcrm.auth.store import StoredLogin, TokenStore
from dbt_rdcrm.auth.urls import authorize_url_for, token_url_for
from dbt_rdcrm.redaction import Secret

CLIENT_ID = "emulator-client"
CLIENT_SECRET = "emulator-secret"
ACCESS_TTL = 900.0  # 15 minutes: "refresh when < 5 min remain" is reachable by moving the clock
REFRESH_TTL = 3600.0
REPO = Path(__file__).resolve().parents[2]


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, start: float = 1_750_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emulator(clock: FakeClock) -> Iterator[object]:
    """The CRM emulator over real HTTP, on the test's fake clock, with short token lifetimes."""
    from dbt_rdcrm.emulator import Emulator

    with Emulator(
        rate_limit=0, access_token_ttl=ACCESS_TTL, refresh_token_ttl=REFRESH_TTL, clock=clock
    ) as emu:
        yield emu


@pytest.fixture
def live_emulator() -> Iterator[object]:
    """The emulator on the real clock, for tests whose other processes use the real clock."""
    from dbt_rdcrm.emulator import Emulator

    with Emulator(rate_limit=0, access_token_ttl=7200, refresh_token_ttl=14 * 86400) as emu:
        yield emu


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment with a private config dir and no RDCRM credentials."""
    return {"RDCRM_CONFIG_DIR": str(tmp_path / "config"), "HOME": str(tmp_path / "home")}


@pytest.fixture
def store(env: dict[str, str]) -> TokenStore:
    return TokenStore.default(env)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def client() -> ClientCredentials:
    return ClientCredentials(CLIENT_ID, Secret(CLIENT_SECRET))


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method = "get"
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}  # value -> (name, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
            self.method = values.get("method", "get").lower()
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and values.get("name"):
            self.buttons[values.get("value", "")] = (values["name"], values.get("value", ""))


@dataclass
class Browser:
    """Plays the user's browser: opens the consent page, submits its form."""

    session: requests.Session

    def approve(self, authorize_url: str, *, follow: bool = True) -> requests.Response:
        return self.submit(authorize_url, "approve", follow=follow)

    def submit(self, authorize_url: str, button: str, *, follow: bool = True) -> requests.Response:
        """Open the consent page and press the submit button whose value is ``button``."""
        page = self.session.get(authorize_url, timeout=10)
        page.raise_for_status()
        form = _FormParser()
        form.feed(page.text)
        assert form.action is not None and form.method == "post", page.text[:300]
        data = dict(form.fields)
        if button in form.buttons:
            name, value = form.buttons[button]
            data[name] = value
        return self.session.post(
            urljoin(page.url, form.action), data=data, allow_redirects=follow, timeout=10
        )

    def redirect_location(self, authorize_url: str) -> str:
        """Approve, but stop at the redirect: the address the user would copy."""
        response = self.approve(authorize_url, follow=False)
        assert response.status_code in (302, 303), response.status_code
        return response.headers["Location"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    with requests.Session() as s:
        yield Browser(s)


@pytest.fixture
def login(emulator, env, store, session, client, clock, browser) -> Callable[[], StoredLogin]:
    """Log in to the emulator (paste flavour, no receiver) and return what was stored."""

    def do_login() -> StoredLogin:
        shown: list[str] = []
        request = LoginRequest(
            base_url=emulator.base_url,
            client=client,
            authorize_url=authorize_url_for(emulator.base_url),
            redirect_uri="http://127.0.0.1:8976/callback",
            open_browser=False,
            paste=True,
        )
        return run_login(
            request,
            session=session,
            store=store,
            show=shown.append,
            open_url=lambda url: False,
            read_paste=lambda: browser.redirect_location(_url_in(shown)),
            clock=clock,
        )

    return do_login


@pytest.fixture
def mint_tokens(browser, client) -> Callable[..., TokenSet]:
    """A fresh token pair from an emulator's code flow (the user's first login, done by hand)."""

    def mint(emulator, now: float) -> TokenSet:
        redirect_uri = "http://127.0.0.1:8976/callback"
        url = oauth.build_authorize_url(
            authorize_url_for(emulator.base_url), CLIENT_ID, redirect_uri, "mint-state"
        )
        code = parse_qs(urlsplit(browser.redirect_location(url)).query)["code"][0]
        with requests.Session() as s:
            return oauth.exchange_code(
                s, token_url_for(emulator.base_url), client, Secret(code), redirect_uri, now
            )

    return mint


def _url_in(lines: list[str]) -> str:
    for line in lines:
        for word in line.split():
            if "/oauth2/authorize?" in word:
                return word
    raise AssertionError(f"no authorize URL shown: {lines}")


@pytest.fixture
def url_in() -> Callable[[list[str]], str]:
    return _url_in


@pytest.fixture
def requests_log(emulator_url: str) -> Callable[[], list[dict]]:
    def read() -> list[dict]:
        return requests.get(f"{emulator_url}/_emulator/requests", timeout=10).json()["data"]

    return read


@pytest.fixture
def emulator_url(request: pytest.FixtureRequest) -> str:
    """The URL of whichever emulator fixture the test uses."""
    for name in ("emulator", "live_emulator"):
        if name in request.fixturenames:
            return request.getfixturevalue(name).url
    raise AssertionError("the test uses no emulator")


@pytest.fixture
def token_calls(requests_log) -> Callable[[], int]:
    """How many times the token endpoint was called so far."""

    def count() -> int:
        return sum(1 for r in requests_log() if r["path"] == "/oauth2/token")

    return count


@pytest.fixture
def control(emulator_url: str) -> Callable[[str, dict], None]:
    """POST to the emulator's /_emulator/oauth/<action> control endpoint."""

    def post(action: str, body: dict) -> None:
        response = requests.post(f"{emulator_url}/_emulator/oauth/{action}", json=body, timeout=10)
        response.raise_for_status()

    return post


@pytest.fixture
def run_python(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a Python snippet in a fresh interpreter with exactly ``env`` (plus PATH)."""

    def run(
        code: str, env: dict[str, str], *args: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), **env}
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=full_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@dataclass(frozen=True)
class DuckDBProject:
    """A minimal dbt project whose target is a DuckDB file: the CI runs' shared warehouse."""

    project_dir: Path
    profiles_dir: Path
    database_file: Path


@pytest.fixture
def duckdb_project(tmp_path: Path) -> DuckDBProject:
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text(
        "name: ci_auth\nversion: '1.0'\nconfig-version: 2\nprofile: ci_auth\n"
    )
    database = tmp_path / "warehouse.duckdb"
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "ci_auth:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: '{database}'\n      schema: main\n      threads: 1\n"
    )
    return DuckDBProject(project, profiles, database)


@pytest.fixture
def ci_runner(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a command like an ephemeral CI runner: fresh process, fresh HOME each time, only the
    given environment (the CI secrets) plus PATH. Reusable with any argv, e.g. a full sync."""
    runs = iter(range(1, 1000))

    def run(
        argv: list[str], secrets: dict[str, str], *, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        home = tmp_path / f"runner-{next(runs)}"
        home.mkdir()
        run_env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO),
            "HOME": str(home),
            "CI": "true",
            **secrets,
        }
        return subprocess.run(
            argv, env=run_env, cwd=home, capture_output=True, text=True, timeout=timeout
        )

    return run
