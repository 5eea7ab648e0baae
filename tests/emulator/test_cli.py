"""The `emulator` command as a subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

import pytest
import requests

LAUNCH = "from dbt_rdcrm.emulator.cli import emulator_command; emulator_command()"
LINE = re.compile(r"RD Station CRM emulator listening on (http://127\.0\.0\.1:\d+/crm/v2)")


def run(*args: str) -> subprocess.Popen:
    """The command as a terminal would start it: a suite started in the background of a shell
    (``pytest &``) hands its children Ctrl-C ignored, and Python then installs no handler."""
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.fixture
def server():
    process = run("--port", "0", "--rate-limit", "0")
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


def base_url(process: subprocess.Popen) -> str:
    match = LINE.fullmatch(process.stdout.readline().strip())
    assert match, "the first line announces the URL"
    return match.group(1)


def test_prints_its_url_and_serves(server):
    url = base_url(server)
    headers = {"Authorization": "Bearer emulator-token"}
    assert requests.get(url + "/users", headers=headers, timeout=5).status_code == 200


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_stops_cleanly_with_exit_code_zero(server, signum):
    base_url(server)
    server.send_signal(signum)
    stdout, stderr = server.communicate(timeout=10)
    assert server.returncode == 0
    assert (stdout, stderr) == ("", "")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{broken", id="invalid-json"),
        pytest.param(json.dumps({"users": []}), id="invalid-fixtures"),
    ],
)
def test_bad_fixtures_file_is_one_error_line_and_exit_2(tmp_path, content):
    path = tmp_path / "fixtures.json"
    path.write_text(content, encoding="utf-8")
    process = run("--port", "0", "--fixtures", str(path))
    stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1
    assert stderr.startswith("Error: invalid fixtures file") and str(path) in stderr


def test_missing_fixtures_file_is_exit_2(tmp_path):
    process = run("--port", "0", "--fixtures", str(tmp_path / "absent.json"))
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert "No such file" in stderr


def test_port_in_use_is_one_error_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = run("--port", str(taken.getsockname()[1]))
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 2
    assert stderr.startswith("Error: cannot listen on 127.0.0.1:")
    assert len(stderr.strip().splitlines()) == 1
